"""Seeds read ahead for Postgres (adapters/seedread.py, issue 14): the rows a task loads
are the rows its file holds when the task runs, read ahead or not."""

from __future__ import annotations

import os
import threading

import pytest

from pipe.adapters.duckdb import duckdb
from pipe.adapters.seedread import SeedReader


def _csv(path, rows):
    path.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in rows))
    return path


def test_a_seed_read_ahead_is_the_seed_read_now(tmp_path):
    a = _csv(tmp_path / "a.csv", [(1, "x"), (2, "y")])
    b = _csv(tmp_path / "b.csv", [(3, "z")])
    reader = SeedReader()
    try:
        fresh = SeedReader()
        expected = [fresh.read(a, {}), fresh.read(b, {"id": "VARCHAR"})]
        fresh.close()
        reader.prefetch([(a, {}), (b, {"id": "VARCHAR"})])
        got = [reader.read(a, {}), reader.read(b, {"id": "VARCHAR"})]
    finally:
        reader.close()
    assert got == expected
    assert got[0] == ([("id", "BIGINT"), ("name", "VARCHAR")], [(1, "x"), (2, "y")])
    assert got[1][0][0] == ("id", "VARCHAR")


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path):
    a = _csv(tmp_path / "a.csv", [(1, "x")])
    reader = SeedReader()
    try:
        reader.prefetch([(a, {})])
        reader._thread is None or reader._thread.join()
        _csv(a, [(1, "x"), (2, "changed")])
        st = os.stat(a)
        os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        assert reader.read(a, {})[1] == [(1, "x"), (2, "changed")]
    finally:
        reader.close()


def test_workers_reading_while_the_thread_reads_ahead_get_each_seed_once(tmp_path):
    files = [_csv(tmp_path / f"s{i}.csv", [(i, f"n{i}")]) for i in range(8)]
    reader = SeedReader()
    got: dict[int, list] = {}
    try:
        reader.prefetch([(f, {}) for f in files])

        def work(indexes):
            for i in indexes:
                got[i] = reader.read(files[i], {})[1]

        threads = [threading.Thread(target=work, args=(r,)) for r in (range(0, 8, 2), [7, 5, 3, 1])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        reader.close()
    assert got == {i: [(i, f"n{i}")] for i in range(8)}


def test_a_seed_that_cannot_be_read_ahead_fails_when_its_task_reads_it(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,x\n")
    reader = SeedReader()
    try:
        reader.prefetch([(bad, {"id": "DATE"})])
        with pytest.raises(duckdb.Error):
            reader.read(bad, {"id": "DATE"})
    finally:
        reader.close()


def test_closing_stops_reading_ahead(tmp_path):
    files = [_csv(tmp_path / f"s{i}.csv", [(i, "x")]) for i in range(20)]
    reader = SeedReader()
    reader.prefetch([(f, {}) for f in files])
    reader.close()
    assert reader._thread is None
    assert [t for t in threading.enumerate() if t.name == "pipe-seeds"] == []
