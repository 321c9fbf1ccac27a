"""What the last compile found per model, so that an edit compiles only what changed.

An edit to one model of 10,000 must not compile the other 9,999 again. The last
compile keeps, per model, what it found (its node in the compiled-project cache; its
SQL digest, plain SQL and Jinja inputs and the content hashes of the model's own files
in models-<target>.pickle); as long as nothing they all depend on changed (pipe.yml,
macros, seeds, sources, the set of model names, the target, pipe: `shared_key`), a model
whose files are unchanged is taken as it was, and so is its fingerprint when its
upstream's fingerprints are too. The changed model and everything downstream of it are
fingerprinted again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .cache import Store, code_version, store
from .config import ModelConfig, Target
from .loader import RawProject


@dataclass(frozen=True)
class Found:
    """What compiling one model found, before the graph."""

    config: ModelConfig  # checks' table names resolved
    upstream: tuple[str, ...]
    digest: str  # canonical digest of the reference rendering
    plain: str | None  # its SQL for every interval (no Jinja, no interval value), or None
    macros: str  # what its Jinja uses of macros and vars (Renderer.inputs_digest), or ""
    shape: tuple | None  # its output columns (sql.select_shape), for checks' columns
    sql: str | None = None  # its SQL for the reference interval (None: not built this time)


MODELS_VERSION = "3"


def models_store(root: Path, target: str, enabled: bool, readonly: bool) -> Store:
    name = f"models-{hashlib.sha1(target.encode()).hexdigest()[:12]}.pickle"
    return store(root, name, MODELS_VERSION, enabled, readonly)


def shared_key(raw: RawProject, target: Target) -> str | None:
    """A hash of what every model's compile depends on besides its own files."""
    if not raw.hashes:
        return None
    h = hashlib.sha256(f"{MODELS_VERSION}\0{code_version()}\0{target.name}\0".encode())
    for rel, digest in sorted((r, d) for r, d in raw.hashes.items() if r[:7] != "models/"):
        h.update(f"{rel}\0{digest}\0".encode())
    h.update("\0".join(sorted(m.name for m in raw.models)).encode())
    return h.hexdigest()


def _files_of(raw: RawProject, m) -> tuple:
    return (raw.hashes.get(m.path), raw.hashes.get(m.sidecar) if m.sidecar else None)


class Before:
    """What the last compile found for the models whose files are unchanged: its entries
    here (`entries`) and its nodes (from the compiled-project cache)."""

    def __init__(self, raw: RawProject, entries: dict, nodes: dict):
        self.found: dict[str, tuple] = {}
        self.nodes = nodes
        for m in raw.models:
            old = entries.get(m.name)
            if old is not None and old[0] == _files_of(raw, m) and m.name in nodes:
                self.found[m.name] = old

    @classmethod
    def of(cls, store: Store, shared: str | None, compiled: dict, raw: RawProject) -> Before:
        """The last compile's findings when it shared `shared` with this one; `compiled`
        is the compiled-project cache's content, written with them."""
        data = store.data if shared is not None else {}
        same = shared is not None and data.get("shared") == shared
        if not same or data.get("key") is None or data.get("key") != compiled.get("key"):
            return cls(raw, {}, {})
        return cls(raw, data["models"], compiled["nodes"])

    def __contains__(self, m) -> bool:
        return m.name in self.found

    def model(self, m) -> Found | None:
        old = self.found.get(m.name)
        if old is None:
            return None
        _, digest, plain, macros, shape = old
        node = self.nodes[m.name]
        plain = m.sql if plain is True else plain
        return Found(node.config, node.upstream, digest, plain, macros, shape)

    def fingerprint(self, name: str, ups: tuple[str, ...], nodes: dict) -> str | None:
        """The model's last fingerprint when it and its upstream's are unchanged."""
        if name not in self.found:
            return None
        old = self.nodes
        for u in ups:
            if u not in old or nodes[u].fingerprint != old[u].fingerprint:
                return None
        return old[name].fingerprint

    @staticmethod
    def entries(raw: RawProject, models: dict) -> dict:
        out = {}
        for m in raw.models:
            f = models[m.name]
            plain = True if f.plain is not None and f.plain == m.sql else f.plain
            out[m.name] = (_files_of(raw, m), f.digest, plain, f.macros, f.shape)
        return out
