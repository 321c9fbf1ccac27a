"""The one cache of pipe: versioned stores under .pipe/cache, one pickle file each, read
on first use; a save appends what changed (see Store), or replaces the file atomically.
Generic: keys and values are whatever the owner keeps; this module knows no project type.
A store that is missing, corrupt, or of another version reads as empty, and one that
cannot be written stays unwritten: a cache only ever makes a command faster.

    parse = store(root, "parse.pickle", version="5")
    parse.data.get(key)  /  parse.put(key, value)  /  parse.save()

Each owner names its file and version (compilestate: the compiled project and the plan
records; recompile: what each model found; modelsql: parses; jinjaenv: compiled
templates; runview: what a run needs to skip loading; plansplice: how each plan file was
made). `FileCache` is the loader's, on 16 Stores: per project file its stat, content
hash and the value read from it, so an unchanged file is neither read nor parsed again.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import os
import pickle
import sys
import time
import zlib
from pathlib import Path

from . import __version__

# A file changed this close (in ns) before the scan that cached it may change again
# within the same timestamp tick; it is read again next time (git's "racy" files).
RACY_NS = 3_000_000_000


def cache_dir(root: Path) -> Path:
    return root / ".pipe" / "cache"


def read_pickle(path: Path):
    """A cache file's value, or None when it is missing or unreadable."""
    with _no_gc():
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except Exception:  # noqa: BLE001 - a corrupt cache is only a slower command
            return None


class _no_gc:
    """Loading a large cache allocates objects that are never garbage: no collection."""

    def __enter__(self):
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.enabled:
            gc.enable()


def write_pickle(path: Path, value) -> None:
    """Replace a cache file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        pickle.dump(value, f, protocol=5)
    os.replace(tmp, path)


_MISSING = object()


class Store:
    """A dict persisted in one file: {"version", "entries", "id"} and, appended after it,
    the changes of later saves ("deltas"), so that a save that changed a few entries of a
    large store writes those, not the store. `path` None keeps it in memory only;
    `readonly` reads the file but never writes it (a dry run, `--check`). A file that
    cannot be written is left as it was.

    Owners change entries by assigning them (`put`, `data[key] = value`, `replace`) and
    set `dirty`; a save compares the entries with those read, two levels deep (a value
    that is a dict is compared entry by entry), so a value below that must not be changed
    in place. A delta names the base it applies to and the offset it was written at, so
    one appended by a process that read an older state of the file (another process
    saved in between) is not applied: reading stops there and the next save writes the
    whole store. When the deltas outgrow half of the base, the next save writes it whole.
    """

    def __init__(self, path: Path | None, version: str, readonly: bool = False):
        self.path = path
        self.version = version
        self.readonly = readonly
        self._data: dict | None = None
        self.dirty = False
        self._read: dict = {}  # the entries as read (or last saved)
        self._copies: dict = {}  # a copy of each of those that is a dict
        self._base: str | None = None  # the id of the file's base, None: write it whole
        self._size = 0  # the file's length as read: where the next delta goes
        self._base_size = 0

    @property
    def data(self) -> dict:
        if self._data is None:
            self._data = {}
            if self.path is not None:
                self._load()
        return self._data

    def _load(self) -> None:
        with _no_gc():
            try:
                with open(self.path, "rb") as f:
                    stored = pickle.load(f)
                    if not (isinstance(stored, dict) and stored.get("version") == self.version):
                        return
                    self._data = stored["entries"]
                    self._base = stored.get("id")
                    self._base_size = self._size = f.tell()
                    self._apply_deltas(f)
            except Exception:  # noqa: BLE001 - a corrupt cache is only a slower command
                self._data, self._base = {}, None
                return
            self._remember_read()

    def _apply_deltas(self, f) -> None:
        while True:
            at = f.tell()
            try:
                delta = pickle.load(f)
            except EOFError:
                return
            except Exception:  # noqa: BLE001 - a torn append: write it whole next time
                self._base = None
                return
            if not (type(delta) is tuple and delta[:3] == ("delta", self._base, at)):
                self._base = None  # appended by a process that read an older state
                return
            _apply(self._data, delta[3])
            self._size = f.tell()

    def put(self, key, value) -> None:
        data = self.data
        if key not in data or data[key] != value:
            data[key] = value
            self.dirty = True

    def replace(self, entries: dict) -> None:
        """All entries at once (they are written on `save`; compared with those read if
        the store was read, else written whole)."""
        self._data = entries
        self.dirty = True

    def save(self) -> None:
        if self.path is None or self.readonly or not self.dirty:
            return
        try:
            appended = self._append()
        except OSError:  # the file or its folder is gone: written whole
            appended = False
        try:
            if not appended:
                self._write_whole()
        except OSError:  # a read-only or full disk: the next command is only slower
            return
        self._remember_read()
        self.dirty = False

    def _remember_read(self) -> None:
        """What a save compares the entries with: each value, and a copy of each dict."""
        data = self._data or {}
        self._read = dict(data)
        self._copies = {k: dict(v) for k, v in data.items() if type(v) is dict}

    def _write_whole(self) -> None:
        base = os.urandom(8).hex()
        blob = pickle.dumps({"version": self.version, "entries": self.data, "id": base}, protocol=5)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, self.path)
        self._base, self._base_size, self._size = base, len(blob), len(blob)

    def _append(self) -> bool:
        """Append the changes since the read as a delta; False: write the store whole."""
        if self._base is None:
            return False
        changes = _changes(self._read, self._copies, self.data)
        blob = pickle.dumps(("delta", self._base, self._size, changes), protocol=5)
        if self._size + len(blob) - self._base_size > self._base_size // 2:
            return False
        with open(self.path, "ab") as f:
            if f.tell() != self._size:  # another process wrote it since: ours wins whole
                return False
            f.write(blob)
        self._size += len(blob)
        return True


def _changes(read: dict, copies: dict, data: dict) -> tuple[dict, list, dict]:
    """(entries set, keys dropped, {key: (entries set, keys dropped)} within dict values)
    that turn `read` (`copies`: a copy of each dict value) into `data`."""
    put, merge = {}, {}
    for k, v in data.items():
        old = read.get(k, _MISSING)
        if type(v) is dict and k in copies:
            inner = _dict_changes(copies[k], v)
            if inner[0] or inner[1]:
                merge[k] = inner
        elif not _same(old, v):
            put[k] = v
    return put, [k for k in read if k not in data], merge


def _dict_changes(old: dict, new: dict) -> tuple[dict, list]:
    put = {k: v for k, v in new.items() if not _same(old.get(k, _MISSING), v)}
    return put, [k for k in old if k not in new]


def _same(a, b) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def _apply(data: dict, changes: tuple[dict, list, dict]) -> None:
    put, dropped, merge = changes
    data.update(put)
    for k in dropped:
        data.pop(k, None)
    for k, (inner, gone) in merge.items():
        value = data[k] = dict(data.get(k, {}))
        value.update(inner)
        for g in gone:
            value.pop(g, None)


def store(root: Path, name: str, version: str, enabled: bool = True, readonly: bool = False):
    """The store .pipe/cache/`name` of the project in `root` (in memory only when not
    `enabled`)."""
    return Store(cache_dir(root) / name if enabled else None, version, readonly)


@functools.cache
def code_version() -> str:
    """What else than the project decides a compile's output: this pipe (its files' sizes
    and times, so an edited checkout counts), its check templates, Python, and the
    versions of sqlglot, jinja2 and PyYAML (their files, found without importing them)."""
    import importlib.util

    h = hashlib.sha256(f"{__version__}\0{sys.version}".encode())
    here = Path(__file__).parent
    folders = [here]
    templates = importlib.util.find_spec("pipe.templates")
    if templates and templates.submodule_search_locations:
        folders += [Path(p) / "checks" for p in templates.submodule_search_locations]
    for name in ("sqlglot", "jinja2", "yaml"):
        _library_version(h, name)
    for folder in folders:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            if e.name.endswith((".py", ".sql")) and e.is_file():
                st = e.stat()
                h.update(f"{e.path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _library_version(h, name: str) -> None:
    """Hash a library's main file and its installed distributions' names."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    origin = Path(spec.origin) if spec and spec.origin else None
    if origin is None:
        return
    st = origin.stat()
    h.update(f"{origin}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    site = origin.parent.parent
    try:  # the installed versions: sqlglot-30.30.0.dist-info, sqlglotc-...
        found = sorted(
            n
            for n in os.listdir(site)
            if n.lower().startswith((name, "sqlglotc", "pyyaml", "markupsafe"))
        )
        h.update(repr(found).encode())
    except OSError:
        pass


class FileCache:
    """What reading each file gave last time, so an unchanged file is neither read nor
    parsed again: per relative path its stat (size, mtime, ctime, inode), its content
    hash and the value read from it (`kind` says what sort of value). The owner saves it
    only after a read without errors, so every entry had none.

    The entries are spread over SHARDS stores by a hash of the path (`path` names them:
    files.pickle -> files-0.pickle ... files-15.pickle), and `save` writes only the ones
    whose entries changed: an edit of one file of 10,000 rewrites a sixteenth of it."""

    VERSION = "3"  # 2: kept in a Store; 3: in SHARDS stores
    SHARDS = 16

    def __init__(self, path: Path | None, readonly: bool = False):
        version = f"{self.VERSION}\0{code_version()}" if path else ""
        self.stores = [
            Store(_shard(path, i) if path else None, version, readonly) for i in range(self.SHARDS)
        ]
        self.old: list[dict[str, tuple]] = []
        self.new: list[dict[str, tuple]] = [{} for _ in self.stores]
        self.trusted: list[int] = []  # per shard: entries with a ctime from this on are re-read
        self.scan_ns = time.time_ns()
        self.dirty = [False] * self.SHARDS
        self.shard: dict[str, int] = {}  # the shard of each path found there
        self.unsharded = path  # what an older pipe kept in one file
        for i, st in enumerate(self.stores):
            stored = st.data  # missing or corrupt: its files are read
            self.old.append(stored.get("files", {}))
            self.trusted.append(stored["scan_ns"] - RACY_NS if "files" in stored else 0)
            self.shard.update(dict.fromkeys(self.old[-1], i))

    @property
    def path(self) -> Path | None:
        return self.stores[0].path

    def fresh(self, rel: str, st: os.stat_result | None, kind: str) -> bool:
        """Whether `get` would find `rel` (without noting anything)."""
        i = self.shard.get(rel)
        entry = self.old[i].get(rel) if st is not None and i is not None else None
        return (
            entry is not None
            and entry[0] == kind
            and entry[1] == stat_key(st)
            and st.st_ctime_ns < self.trusted[i]
        )

    def get(self, rel: str, st: os.stat_result | None, kind: str):
        """(content hash, value) cached for `rel` if its stat is unchanged, else None."""
        if st is None:
            return None
        i = self.shard.get(rel)
        if i is None:
            self.dirty[_shard_of(rel)] = True
            return None
        entry = self.old[i].get(rel)
        if entry is None or entry[0] != kind or entry[1] != stat_key(st):
            self.dirty[i] = True
            return None
        if st.st_ctime_ns >= self.trusted[i]:
            self.dirty[i] = True  # save again, with a later scan time, so it is trusted then
            return None
        self.new[i][rel] = entry
        return entry[2], entry[3]

    def put(self, rel: str, st: os.stat_result | None, kind: str, digest: str, value) -> None:
        if st is not None:
            i = self.shard.get(rel)
            if i is None:
                i = self.shard[rel] = _shard_of(rel)
            self.new[i][rel] = (kind, stat_key(st), digest, value)
            self.dirty[i] = True

    def save(self) -> None:
        saved = False
        for i, store_ in enumerate(self.stores):
            if not (self.dirty[i] or len(self.new[i]) != len(self.old[i])):
                continue
            saved = True
            store_.replace({"scan_ns": self.scan_ns, "files": self.new[i]})
            store_.save()
            if not store_.dirty:
                self.old[i], self.dirty[i] = self.new[i], False
                self.trusted[i] = self.scan_ns - RACY_NS
        if saved and self.unsharded is not None:
            _forget(self.unsharded)


def _forget(path: Path) -> None:
    """Remove the one-file cache (`files.pickle`) an older pipe kept before the shards:
    nothing reads it any more, and at 10,000 models it holds 12 MB."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be tidied is still a cache


def _shard(path: Path, i: int) -> Path:
    return path.with_name(f"{path.stem}-{i}{path.suffix}")


def _shard_of(rel: str) -> int:
    """A path's shard: crc32's bits mixed (alone they cluster for names like m1, m2)."""
    return (zlib.crc32(rel.encode()) * 2654435761 >> 20) % FileCache.SHARDS


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
