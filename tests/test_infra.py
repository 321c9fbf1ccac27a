"""The generic infrastructure of the compile: cache.Store and parallel.fan_out."""

from __future__ import annotations

import os
import pickle
import shutil
import threading

import pytest

from pipe import parallel
from pipe.cache import Store


def test_a_store_round_trips_and_ignores_what_is_not_its_own(tmp_path):
    path = tmp_path / "cache" / "s.pickle"
    store = Store(path, "1")
    assert store.data == {}  # missing: empty
    store.put("k", (1, "v"))
    store.save()
    assert Store(path, "1").data == {"k": (1, "v")}
    assert Store(path, "2").data == {}  # another version
    path.write_bytes(b"not a pickle")
    assert Store(path, "1").data == {}  # corrupt: only a slower command
    path.write_bytes(pickle.dumps(["a list"]))
    assert Store(path, "1").data == {}
    assert not list(path.parent.glob("*.tmp*"))  # replaced atomically


def test_a_store_that_cannot_be_written_is_only_a_slower_command(tmp_path):
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    store = Store(tmp_path / "cache" / "s.pickle", "1")
    store.put("k", 1)
    store.save()  # no OSError: the command's own result stands
    assert store.dirty  # tried again by the next save


def test_the_file_cache_keeps_what_each_file_gave_in_a_store(tmp_path):
    from pipe.cache import FileCache

    f = tmp_path / "a.sql"
    f.write_text("select 1")
    path = tmp_path / "files.pickle"
    first = FileCache(path)
    first.scan_ns += 10**12  # as if scanned long after the file was written
    assert first.get("a.sql", f.stat(), "sql") is None
    first.put("a.sql", f.stat(), "sql", "d", "value")
    first.save()
    again = FileCache(path)
    assert again.get("a.sql", f.stat(), "sql") == ("d", "value")
    assert again.get("a.sql", f.stat(), "yaml") is None  # another kind of value
    assert Store(path, "1").data == {}  # another store's version reads as empty


def test_a_readonly_or_unchanged_store_writes_nothing(tmp_path):
    path = tmp_path / "s.pickle"
    readonly = Store(path, "1", readonly=True)
    readonly.put("k", 1)
    readonly.save()
    assert not path.exists()
    store = Store(path, "1")
    store.put("k", 1)
    store.save()
    mtime = path.stat().st_mtime_ns
    again = Store(path, "1")
    again.put("k", 1)  # the same value: nothing to write
    again.save()
    assert path.stat().st_mtime_ns == mtime
    memory = Store(None, "1")
    memory.put("k", 2)
    memory.save()
    assert memory.data == {"k": 2}


def _square_plus(shared, job):
    offset, _lock = shared
    return [(i, i * i + offset, os.getpid()) for i in range(*job)]


@pytest.mark.skipif(parallel.workers() < 2, reason="no fork pool on this machine")
def test_fan_out_gives_the_shared_input_to_forked_workers_without_pickling_it():
    """A threading.Lock cannot be pickled: it reaches the workers through the fork."""
    shared = (1000, threading.Lock())
    got = {}
    pids = set()
    for part in parallel.fan_out(_square_plus, shared, [(0, 50), (50, 100), (100, 120)]):
        for i, value, pid in part:
            got[i] = value
            pids.add(pid)
    assert got == {i: i * i + 1000 for i in range(120)}
    assert os.getpid() not in pids
    assert parallel._WORKER == []  # the parent keeps nothing between calls


def _dies_on_first(shared, job):
    if job == 0:
        os._exit(1)
    return job


@pytest.mark.skipif(parallel.workers() < 2, reason="no fork pool on this machine")
def test_a_worker_that_dies_ends_the_fan_out_early_without_raising():
    got = list(parallel.fan_out(_dies_on_first, None, [0, 1, 2, 3]))
    assert 0 not in got and set(got) <= {1, 2, 3}  # the caller does what is left


def test_the_file_cache_rewrites_only_the_shard_of_a_changed_file(tmp_path):
    from pipe.cache import FileCache

    files = {f"m{i}.sql": tmp_path / f"m{i}.sql" for i in range(40)}
    for f in files.values():
        f.write_text("select 1")
    path = tmp_path / "cache" / "files.pickle"
    first = FileCache(path)
    first.scan_ns += 10**12  # as if scanned long after the files were written
    for rel, f in files.items():
        assert first.get(rel, f.stat(), "sql") is None
        first.put(rel, f.stat(), "sql", "d", rel)
    first.save()
    shards = sorted(path.parent.glob("files-*.pickle"))
    # the shard files' times below must differ from these whatever the clock's tick
    for p in shards:
        os.utime(p, ns=(1, 1))
    assert len(shards) > 1  # the shards that hold entries
    written = {p: p.stat().st_mtime_ns for p in shards}
    os.utime(files["m7.sql"], ns=(1, 1))  # another stat: read again
    second = FileCache(path)
    second.scan_ns += 10**12
    for rel, f in files.items():
        found = second.get(rel, f.stat(), "sql")
        if found is None:
            second.put(rel, f.stat(), "sql", "d2", rel)
    second.save()
    changed = [p for p in shards if p.stat().st_mtime_ns != written[p]]
    assert len(changed) == 1
    third = FileCache(path)
    assert third.get("m7.sql", files["m7.sql"].stat(), "sql") == ("d2", "m7.sql")
    assert third.get("m8.sql", files["m8.sql"].stat(), "sql") == ("d", "m8.sql")


def test_a_file_as_new_as_the_scan_that_cached_it_is_read_again(tmp_path):
    from pipe.cache import FileCache

    f = tmp_path / "a.sql"
    f.write_text("select 1")
    path = tmp_path / "files.pickle"
    first = FileCache(path)  # scanned in the same clock tick as the write, for all it knows
    first.put("a.sql", f.stat(), "sql", "d", "value")
    first.save()
    # a same-size edit in the same tick would leave the stat as it is: not trusted
    assert FileCache(path).get("a.sql", f.stat(), "sql") is None


def test_a_store_appends_what_changed_and_reads_it_back(tmp_path):
    path = tmp_path / "s.pickle"
    first = Store(path, "1")
    first.replace({"big": {f"k{i}": "x" * 100 for i in range(200)}, "n": 1, "gone": 2})
    first.save()
    size = path.stat().st_size
    second = Store(path, "1")
    data = second.data
    data["big"]["k7"] = "changed in place"  # a dict value's entry: compared entry by entry
    del data["gone"]
    second.put("n", 2)
    second.put("new", ("a", 1))
    second.save()
    assert size < path.stat().st_size < size + 1000  # appended, not rewritten
    third = Store(path, "1")
    expected = {f"k{i}": "x" * 100 for i in range(200)} | {"k7": "changed in place"}
    assert third.data == {"big": expected, "n": 2, "new": ("a", 1)}
    third.replace({**third.data, "big": {**expected, "k8": "y"}})  # replaced whole
    third.save()
    assert Store(path, "1").data["big"]["k8"] == "y"


def test_a_delta_from_a_stale_reader_or_torn_is_not_applied(tmp_path):
    path = tmp_path / "s.pickle"
    base = Store(path, "1")
    base.replace({f"k{i}": "x" * 100 for i in range(100)})
    base.save()
    a, b = Store(path, "1"), Store(path, "1")
    a.data, b.data  # noqa: B018 - both read the same state
    a.put("from_a", 1)
    a.save()
    b.put("from_b", 1)
    b.save()  # the file changed since b read it: b writes it whole, as it knows it
    seen = Store(path, "1").data
    assert "from_b" in seen and "from_a" not in seen  # never a mix of the two
    c = Store(path, "1")
    c.put("k1", "y")
    c.save()
    with open(path, "ab") as f:
        f.write(b"\x80\x05torn")  # an append cut short
    d = Store(path, "1")
    assert d.data["k1"] == "y"
    d.put("k2", "z")
    d.save()  # written whole: the torn bytes are gone
    assert Store(path, "1").data["k2"] == "z"
    assert b"torn" not in path.read_bytes()


def test_a_store_whose_folder_was_removed_since_it_was_read_is_written_whole(tmp_path):
    path = tmp_path / "cache" / "s.pickle"
    first = Store(path, "1")
    first.replace({"a": 1})
    first.save()
    again = Store(path, "1")
    again.put("b", 2)
    shutil.rmtree(tmp_path / "cache")  # `rm -rf .pipe` while a command runs
    again.save()
    assert Store(path, "1").data == {"a": 1, "b": 2}


def test_a_save_removes_the_one_file_cache_an_older_pipe_left(tmp_path):
    from pipe.cache import FileCache

    f = tmp_path / "a.sql"
    f.write_text("select 1")
    path = tmp_path / "files.pickle"
    path.write_bytes(b"the 12 MB an older pipe kept")
    cache = FileCache(path)
    cache.put("a.sql", f.stat(), "sql", "d", "value")
    cache.save()
    assert not path.exists()
    assert sorted(p.name for p in tmp_path.glob("files-*.pickle"))  # the shards stay
