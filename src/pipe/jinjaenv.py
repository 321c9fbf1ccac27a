"""The Jinja environment pieces of model rendering: the sandboxed Environment class, the
loader of model and macro sources, and the bytecode cache (compiled templates in one
.pipe/cache store). jinja2 is imported on first use only: a compile served from the
caches renders nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .cache import Store

BYTECODE_VERSION = "2"  # 2: compiled for the sandbox (calls go through it)


@cache
def loader_class():
    import jinja2

    class _Loader(jinja2.BaseLoader):
        def __init__(self, sources: dict[str, str]):
            self.sources = sources

        def get_source(self, environment, template):
            if template not in self.sources:
                raise jinja2.TemplateNotFound(template)
            return self.sources[template], template, lambda: True

    return _Loader


@cache
def bytecode_cache_class():
    import jinja2

    class DictBytecodeCache(jinja2.BytecodeCache):
        """Compiled templates in one dict, persisted as one pickle file (one write per
        compile, where jinja2's FileSystemBytecodeCache writes a file per template)."""

        def __init__(self, path: Path, readonly: bool):
            self.store = Store(path, BYTECODE_VERSION, readonly)
            self.data: dict[str, bytes] = self.store.data
            self.fresh: dict[str, bytes] = {}  # compiled since the last take_compiled

        def load_bytecode(self, bucket) -> None:
            code = self.data.get(bucket.key)
            if code is not None:
                bucket.bytecode_from_string(code)

        def dump_bytecode(self, bucket) -> None:
            self.data[bucket.key] = self.fresh[bucket.key] = bucket.bytecode_to_string()
            self.store.dirty = True

        def save(self) -> None:
            self.store.save()

    return DictBytecodeCache


@cache
def sandbox_class():
    """jinja2's SandboxedEnvironment, as dbt uses: no attribute that starts with '_' (so no
    `''.__class__.__mro__`, no `cycler.__init__.__globals__`), no unsafe callables, no
    mutation of built-in lists and dicts' internals; the context holds no module, so a
    template reaches neither `os`, the environment nor the file system."""
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment
