"""What a CompiledProject keeps besides its nodes: `CompileState`, the SQL builder it
makes on first use, and the caches a compile writes
when the command succeeds (the compiled-project cache of each target, the plan records).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .cache import Store, store
from .config import Target
from .loader import RawProject
from .modelsql import SqlBuilder, parse_cache
from .names import project_names
from .parallel import young_gc_only

COMPILED_VERSION = "1"  # the compiled-project cache (see CompileState)


class CompileState:
    """What a CompiledProject keeps besides its nodes: the SQL builder (made on first use:
    a compile served from the cache builds nothing) and the caches to write when the
    command succeeds.

    The compiled-project cache, .pipe/cache/compiled-<target>.pickle, holds the nodes and
    graph of the last compile, keyed by `key`: a hash of every file the loader read (their
    contents), the target and `code_version()`. The plan records, .pipe/cache/plans.pickle,
    hold for each plan file the key of the inputs it was last built from and the sha256
    of its bytes (see workspace.known_unchanged)."""

    def __init__(
        self,
        raw: RawProject,
        target: Target,
        use_cache: bool,
        write_cache: bool,
        key: str | None,
        builder: SqlBuilder | None = None,
        by_model: Store | None = None,
        compiled: Store | None = None,
    ):
        self.raw = raw
        self.target = target
        self.use_cache = use_cache
        self.write_cache = write_cache
        self.key = key  # None: the project was not loaded from hashed files
        self._builder = builder
        # the nodes and graph of the last compile, and the plan records (see workspace.py)
        if compiled is None:  # the compile passes the one it read: saved, it appends
            compiled = compiled_store(raw.root, target.name, use_cache, not write_cache)
        self.compiled = compiled
        self.by_model = by_model  # what each model's compile found (see Before)
        self.plan_records = store(
            raw.root, "plans.pickle", COMPILED_VERSION, bool(use_cache and key), not write_cache
        )
        self._sidecars: dict[str, str] | None = None

    @property
    def builder(self) -> SqlBuilder:
        if self._builder is None:
            names, index = project_names(self.raw)
            cache = parse_cache(self.raw.root, self.use_cache, not self.write_cache)
            self._builder = SqlBuilder(self.raw, self.target, index, names, cache)
        return self._builder

    def sidecar(self, name: str) -> str | None:
        """The file a model's checks come from: its sidecar, else the model file."""
        if self._sidecars is None:
            self._sidecars = {}
            for m in self.raw.models:
                self._sidecars.setdefault(m.name, m.sidecar or m.path)
        return self._sidecars.get(name)

    # -- plan records (workspace.py keeps them)
    def records(self) -> dict:
        return self.plan_records.data

    def record(self, rel: str, value) -> None:
        self.plan_records.put(rel, value)

    def save(self) -> None:
        if not (self.use_cache and self.write_cache):
            return
        with young_gc_only():  # pickling the caches makes no garbage worth a full walk
            self._save()

    def _save(self) -> None:
        if self._builder is not None:
            self._builder.cache.save()
            self._builder.renderer.save_cache()
        files = getattr(self.raw, "files", None)
        if files is not None:
            files.save()
        self.compiled.save()
        if self.by_model is not None:
            self.by_model.save()
        self.plan_records.save()


def compiled_store(root: Path, target: str, use_cache: bool, readonly: bool) -> Store:
    """The compiled-project cache of one target: {"key", "nodes", "upstream", "order",
    "plain"} of its last compile."""
    name = f"compiled-{hashlib.sha1(target.encode()).hexdigest()[:12]}.pickle"
    return store(root, name, COMPILED_VERSION, use_cache, readonly)
