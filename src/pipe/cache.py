"""The one cache of pipe: versioned stores under .pipe/cache, one pickle file each, read
on first use, replaced atomically when changed. Generic: keys and values are whatever
the owner keeps; this module knows no project type. A store that is missing, corrupt, or
of another version reads as empty, and one that cannot be written stays unwritten: a
cache only ever makes a command faster.

    parse = store(root, "parse.pickle", version="5")
    parse.data.get(key)  /  parse.put(key, value)  /  parse.save()

Each owner names its file and version (compilestate: the compiled project and the plan
records; recompile: what each model found; modelsql: parses; jinjaenv: compiled
templates; runview: what a run needs to skip loading). `FileCache` is the loader's, on
a Store: per project file its stat, content hash and the value read from it, so an
unchanged file is neither read nor parsed again.
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
    enabled = gc.isenabled()
    gc.disable()  # loading a large cache allocates objects that are never garbage
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # noqa: BLE001 - a corrupt cache is only a slower command
        return None
    finally:
        if enabled:
            gc.enable()


def write_pickle(path: Path, value) -> None:
    """Replace a cache file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        pickle.dump(value, f, protocol=5)
    os.replace(tmp, path)


class Store:
    """A dict persisted in one file as {"version": version, "entries": dict}. `path`
    None keeps it in memory only; `readonly` reads the file but never writes it (a dry
    run, `--check`). A file that cannot be written is left as it was."""

    def __init__(self, path: Path | None, version: str, readonly: bool = False):
        self.path = path
        self.version = version
        self.readonly = readonly
        self._data: dict | None = None
        self.dirty = False

    @property
    def data(self) -> dict:
        if self._data is None:
            self._data = {}
            if self.path is not None:
                stored = read_pickle(self.path)
                if isinstance(stored, dict) and stored.get("version") == self.version:
                    self._data = stored["entries"]
        return self._data

    def put(self, key, value) -> None:
        data = self.data
        if key not in data or data[key] != value:
            data[key] = value
            self.dirty = True

    def replace(self, entries: dict) -> None:
        """All entries at once (they are written on `save`)."""
        self._data = entries
        self.dirty = True

    def save(self) -> None:
        if self.path is None or self.readonly or not self.dirty:
            return
        try:
            write_pickle(self.path, {"version": self.version, "entries": self.data})
        except OSError:  # a read-only or full disk: the next command is only slower
            return
        self.dirty = False


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
        for st in self.stores:
            stored = st.data  # missing or corrupt: its files are read
            self.old.append(stored.get("files", {}))
            self.trusted.append(stored["scan_ns"] - RACY_NS if "files" in stored else 0)

    @property
    def path(self) -> Path | None:
        return self.stores[0].path

    def fresh(self, rel: str, st: os.stat_result | None, kind: str) -> bool:
        """Whether `get` would find `rel` (without noting anything)."""
        i = _shard_of(rel)
        entry = self.old[i].get(rel) if st is not None else None
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
        i = _shard_of(rel)
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
            i = _shard_of(rel)
            self.new[i][rel] = (kind, stat_key(st), digest, value)
            self.dirty[i] = True

    def save(self) -> None:
        for i, store_ in enumerate(self.stores):
            if not (self.dirty[i] or len(self.new[i]) != len(self.old[i])):
                continue
            store_.replace({"scan_ns": self.scan_ns, "files": self.new[i]})
            store_.save()
            if not store_.dirty:
                self.old[i], self.dirty[i] = self.new[i], False
                self.trusted[i] = self.scan_ns - RACY_NS


def _shard(path: Path, i: int) -> Path:
    return path.with_name(f"{path.stem}-{i}{path.suffix}")


def _shard_of(rel: str) -> int:
    """A path's shard: crc32's bits mixed (alone they cluster for names like m1, m2)."""
    return (zlib.crc32(rel.encode()) * 2654435761 >> 20) % FileCache.SHARDS


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
