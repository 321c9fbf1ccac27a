"""RawProject -> CompiledProject: names defined, dependencies inferred, graph checked,
fingerprints made.

No database and no clock here. Each model's SQL is built once for its reference
interval by modelsql.SqlBuilder (render, parse through the parse cache, resolve, write for
the target); the tables it reads, its sidecar's depends_on and the tables its checks read
are its upstream; the graph is checked for cycles; each node's fingerprint (SPEC §7)
hashes what the model means and its upstream's fingerprints. An unchanged project (the
same file contents, target and pipe) is served from the compiled-project cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from . import checks as checkmod
from . import graph as graphmod
from . import sqlprefetch
from .cache import Store, code_version
from .checkcolumns import unknown_columns
from .compilestate import COMPILED_VERSION, CompileState, compiled_store
from .config import ModelConfig, SourceConfig, Target
from .errors import SourceLocation, UnknownTable, UserError, raise_collected
from .intervals import Interval
from .intervalsql import mentions
from .loader import RawProject, RawSeed
from .modelsql import ModelSql, SqlBuilder, parse_cache, reference_interval
from .names import TableName, define
from .parallel import young_gc_only
from .recompile import Before, Found, models_store, shared_key


@dataclass(frozen=True)
class Node:
    """A model, seed or source of the graph."""

    name: str
    kind: str  # full | incremental | view | seed | source
    path: str | None  # file that defines it, relative to the project
    upstream: tuple[str, ...] = ()
    fingerprint: str = ""
    grain: str | None = None
    config: ModelConfig = field(default_factory=ModelConfig)
    seed: RawSeed | None = None
    source: SourceConfig | None = None

    @property
    def schema(self) -> str:
        return TableName.parse(self.name).schema

    @property
    def table(self) -> str:
        return TableName.parse(self.name).table


@dataclass(frozen=True)
class CompiledProject:
    """The compiled project: its nodes in a checked graph, and each model's SQL for the
    target as far as the compile made it (`plain`: the SQL of every interval its text
    does not mention; `reference`: the SQL, interval placeholders in, of its reference
    interval). Plans take their SQL through modelsql.ModelSql."""

    raw: RawProject
    target: Target
    nodes: Mapping[str, Node]
    graph: graphmod.Graph
    state: CompileState = field(repr=False, compare=False)
    plain: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    reference: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.raw.config.name

    @property
    def builder(self) -> SqlBuilder:
        return self.state.builder

    @property
    def key(self) -> str | None:
        """A hash of everything this compile was made from (None: not known)."""
        return self.state.key

    def models(self) -> list[Node]:
        return [self.nodes[n] for n in self.graph.order if self.nodes[n].kind != "source"]

    @cached_property
    def sqls(self) -> ModelSql:
        return ModelSql(self)

    def model_sql(self, name: str, interval: Interval) -> str:
        """The final SQL of a model for one interval, in the target dialect."""
        return self.sqls.sql(name, interval)

    def sidecar(self, name: str) -> str | None:
        return self.state.sidecar(name)

    def save_cache(self) -> None:
        self.state.save()


def _plain_sql(text: str, out: str, interval: Interval) -> bool:
    """Whether `out`, made from `text` for `interval`, is the model's SQL for any interval
    whose values `text` does not mention: no Jinja, no interval value, no placeholder."""
    return (
        "{" not in text
        and "__pipe_" not in text
        and "__pipe_" not in out
        and not mentions(text, interval)
    )


def _compile_key(raw: RawProject, target: Target) -> str | None:
    digest = getattr(raw, "digest", "")
    if not digest:
        return None
    return hashlib.sha256(
        f"{COMPILED_VERSION}\0{code_version()}\0{digest}\0{target.name}".encode()
    ).hexdigest()


def _from_cache(raw: RawProject, target: Target, key: str, write_cache: bool, found: dict):
    if found.get("key") != key:
        return None
    try:
        texts = {m.name: m.sql for m in raw.models}
        plain = {n: texts[n] if sql is None else sql for n, sql in found["plain"].items()}
        state = CompileState(raw, target, True, write_cache, key)
        graph = graphmod.Graph(found["upstream"], found["order"])
        return CompiledProject(raw, target, found["nodes"], graph, state, plain)
    except Exception:  # noqa: BLE001 - a cache from another pipe: compile
        return None


def compile_project(
    raw: RawProject,
    target_name: str | None = None,
    use_cache: bool = True,
    write_cache: bool = True,
) -> CompiledProject:
    """Resolve every dependency and check the graph; raise all user errors together.

    With `use_cache`, an unchanged project (the same file contents, see cache.FileCache)
    is not compiled again: its nodes come from the compiled-project cache."""
    target = raw.config.target(target_name)
    key = _compile_key(raw, target) if use_cache else None
    stored = None  # the compiled-project cache: the last compile of this target
    if key is not None:
        stored = compiled_store(raw.root, target.name, True, not write_cache)
        hit = _from_cache(raw, target, key, write_cache, stored.data)
        if hit is not None:
            return hit
    with young_gc_only():
        return _compile(raw, target, key, use_cache, write_cache, stored)


def _compile(
    raw: RawProject,
    target: Target,
    key: str | None,
    use_cache: bool,
    write_cache: bool,
    stored: Store | None,
) -> CompiledProject:
    last = stored.data if stored is not None else {}  # saved again: only what changed
    errors: list[UserError] = []
    names, index = define(raw, target, errors)
    cache = parse_cache(raw.root, use_cache, not write_cache)
    builder = SqlBuilder(raw, target, index, names, cache)
    references = _References(raw)
    builder.check_macros(errors)
    if errors:  # a broken macro file would fail every Jinja model again
        raise_collected(errors)
    shared = shared_key(raw, target) if key is not None else None
    by_model = models_store(raw.root, target.name, shared is not None, not write_cache)
    before = Before.of(by_model, shared, last, raw)
    sqlprefetch.prefetch(
        builder,
        [(m.name, m.path, m.sql, references.of(m.config)) for m in raw.models if m not in before],
    )

    upstream: dict[str, tuple[str, ...]] = {}
    models: dict[str, Found] = {}
    for m in raw.models:
        found = before.model(m) or _model(builder, m, references.of(m.config), errors)
        if found is not None:
            models[m.name] = found
            upstream[m.name] = found.upstream
    for name in [s.name for s in raw.seeds] + [s.name for s in raw.sources]:
        upstream[name] = ()
    errors += unknown_columns(
        [(m.name, models[m.name].config.checks, m.sidecar) for m in raw.models if m.name in models],
        {name: found.shape for name, found in models.items()},
        {s.name: tuple(c for c, _ in s.columns) for s in raw.sources if s.columns},
        builder.resolve,
        raw.config.dialect,
    )
    raise_collected(errors)

    graph = _graph(raw, upstream, last)
    nodes = _nodes(raw, target, graph, models, before)
    plain = {n: m.plain for n, m in models.items() if m.plain is not None}
    reference = {n: m.sql for n, m in models.items() if m.sql is not None and m.plain is None}
    state = CompileState(raw, target, use_cache, write_cache, key, builder, by_model, stored)
    if key is not None and write_cache:
        _remember(state, nodes, graph, plain, models, shared)
    return CompiledProject(raw, target, nodes, graph, state, plain, reference)


def _graph(raw: RawProject, upstream: dict[str, tuple[str, ...]], last: dict) -> graphmod.Graph:
    """The graph of `upstream`: the last compile's when its edges are the same (an edit
    that changed no dependency orders nothing again), else built and checked."""
    if last.get("upstream") == upstream:
        return graphmod.Graph(last["upstream"], last["order"])
    return graphmod.build(upstream, {m.name: SourceLocation(m.path, 1) for m in raw.models})


def _remember(
    state: CompileState,
    nodes: dict[str, Node],
    graph: graphmod.Graph,
    plain: dict[str, str],
    models: dict[str, Found],
    shared: str | None,
) -> None:
    """Put this compile in the caches the command writes when it succeeds: the
    compiled-project cache and, while the shared inputs are known, what each model found."""
    raw = state.raw
    texts = {m.name: m.sql for m in raw.models}
    state.compiled.replace(
        {
            "key": state.key,
            "nodes": nodes,
            "upstream": graph.upstream,
            "order": graph.order,
            "plain": {n: None if sql == texts[n] else sql for n, sql in plain.items()},
        }
    )
    if shared is not None:
        entries = Before.entries(raw, models)
        state.by_model.replace({"shared": shared, "key": state.key, "models": entries})


class _References:
    """The reference interval of each grain (see reference_interval), made once."""

    def __init__(self, raw: RawProject):
        self.raw = raw
        self.found: dict[str, Interval] = {}

    def of(self, config: ModelConfig) -> Interval:
        grain = config.grain or self.raw.config.schedule
        if grain not in self.found:
            self.found[grain] = reference_interval(self.raw, grain)
        return self.found[grain]


def _model(builder: SqlBuilder, m, reference: Interval, errors: list[UserError]) -> Found | None:
    """Build a model's SQL for its reference interval and resolve what it reads: its
    tables, its sidecar's depends_on, the tables its checks read. Errors go to `errors`."""
    try:
        out, reads, digest, shape = builder.build(m.name, m.path, m.sql, reference, errors)
    except UserError as exc:
        errors.append(exc)
        return None
    extra = []
    for dep, line in zip(m.config.depends_on, m.config.depends_on_lines, strict=True):
        try:
            extra.append(builder.resolve(dep, SourceLocation(m.sidecar, line)))
        except UnknownTable as exc:
            errors.append(exc)
    checks = m.config.checks
    if checks:  # the tables they read resolved, and made edges
        scope = checkmod.CheckScope(
            m.name, m.sidecar, builder.raw.config.dialect, reference, builder.resolve
        )
        checks, check_reads = checkmod.compile_checks(checks, scope, errors)
        extra += check_reads
    config = m.config if checks == m.config.checks else replace(m.config, checks=checks)
    upstream = tuple(sorted(set(reads) | set(extra) - {m.name}))
    plain = out if _plain_sql(m.sql, out, reference) else None
    macros = builder.jinja_inputs(m.path, m.sql) if "{" in m.sql else ""
    return Found(config, upstream, digest, plain, macros, shape, out)


def _nodes(
    raw: RawProject,
    target: Target,
    graph: graphmod.Graph,
    models: dict[str, Found],
    before: Before,
) -> dict[str, Node]:
    """Every node in graph order, with its fingerprint (SPEC §7)."""
    nodes: dict[str, Node] = {}
    texts = {m.name: m for m in raw.models}
    seeds = {s.name: s for s in raw.seeds}
    sources = {s.name: s for s in raw.sources}
    for name in graph.order:
        ups = graph.upstream[name]
        if name in seeds:
            s = seeds[name]
            fp = _hash({"seed": s.sha256, "types": s.config.column_types, "target": target.dialect})
            nodes[name] = Node(name, "seed", s.path, ups, fp, seed=s)
        elif name in sources:
            src = sources[name]
            fp = _hash({"source": name, "wait_for": src.wait_for})
            nodes[name] = Node(name, "source", "sources.yml", ups, fp, source=src)
        else:
            found, path = models[name], texts[name].path
            fp = before.fingerprint(name, ups, nodes)
            if fp is None:
                fp = _fingerprint(raw, target, found, ups, nodes)
            c = found.config
            grain = c.grain or raw.config.schedule
            nodes[name] = Node(name, c.kind, path, ups, fp, grain=grain, config=c)
    return nodes


def _fingerprint(raw: RawProject, target: Target, found: Found, ups, nodes) -> str:
    """SPEC §7: what the model means, not how it is spelled. The upstream names count: a
    bare name that resolves to another table changes no token."""
    c = found.config
    return _hash(
        {
            "sql": found.digest,
            "macros": found.macros,
            "kind": c.kind,
            "time_column": c.time_column,
            "grain": c.grain or raw.config.schedule,
            "checks": _check_tuples(c),
            "upstream": [[u, nodes[u].fingerprint] for u in ups],
            "target": target.dialect,
        }
    )


def _check_tuples(c: ModelConfig):
    return [
        [ch.type, ch.name, repr(ch.args), ch.severity, ch.warn_if, ch.error_if] for ch in c.checks
    ]


def _hash(value) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
