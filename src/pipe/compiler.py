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
from datetime import datetime
from pathlib import Path

from . import checks as checkmod
from . import engines
from . import graph as graphmod
from . import sql as sqlmod
from .cache import Store, cache_dir, code_version
from .checkcolumns import unknown_columns
from .config import ModelConfig, SourceConfig, Target
from .errors import (
    ConfigError,
    SourceLocation,
    SqlError,
    UnknownTable,
    UserError,
    raise_collected,
)
from .intervals import Interval, floor, next_start
from .intervalsql import fill, mentions
from .loader import RawProject, RawSeed
from .modelsql import SqlBuilder, parse_cache
from .parallel import frozen_gc
from .recompile import Before, Found, models_store, shared_key

COMPILED_VERSION = "1"  # the compiled-project cache (see CompileState)


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
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


class CompileState:
    """What a CompiledProject keeps besides its nodes: the SQL builder (made on first use:
    a compile served from the cache builds nothing), the reference SQL of plain models,
    and the caches to write when the command succeeds.

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
        plain: dict[str, str] | None = None,
        by_model: Store | None = None,
    ):
        self.raw = raw
        self.target = target
        self.use_cache = use_cache
        self.write_cache = write_cache
        self.key = key  # None: the project was not loaded from hashed files
        self._builder = builder
        self.plain = plain or {}
        folder = cache_dir(raw.root)
        # the nodes and graph of the last compile, and the plan records (see workspace.py)
        self.compiled = compiled_store(raw.root, target.name, use_cache, not write_cache)
        self.by_model = by_model  # what each model's compile found (see Before)
        self.plan_records = Store(
            folder / "plans.pickle" if use_cache and key else None,
            COMPILED_VERSION,
            readonly=not write_cache,
        )
        self._sidecars: dict[str, str] | None = None
        self._texts: dict[str, str] | None = None

    def text(self, name: str) -> str:
        """A model's SQL file as written."""
        if self._texts is None:
            self._texts = {m.name: m.sql for m in self.raw.models}
        return self._texts[name]

    @property
    def builder(self) -> SqlBuilder:
        if self._builder is None:
            names, index = _names(self.raw)
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
    return Store(cache_dir(root) / name if use_cache else None, COMPILED_VERSION, readonly)


@dataclass(frozen=True)
class CompiledProject:
    raw: RawProject
    target: Target
    nodes: Mapping[str, Node]
    graph: graphmod.Graph
    state: CompileState = field(repr=False, compare=False)

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

    def model_sql(self, name: str, interval: Interval) -> str:
        """The final SQL of a model for one interval, in the target dialect."""
        node = self.nodes[name]
        text = self.state.text(name)
        plain = self.state.plain.get(name)
        if plain is not None and not mentions(text, interval):
            # no Jinja, no interval value: the SQL compile_project made for its start
            return plain
        out, reads, _, _ = self.builder.build(name, node.path, text, interval)
        extra = set(reads) - set(node.upstream)
        if extra:
            raise SqlError(
                f"for interval {interval.label} this model reads "
                f"{', '.join(sorted(extra))}, which it does not read for the "
                "project's start interval",
                at=SourceLocation(node.path),
                hint="add them to 'depends_on' in the sidecar",
            )
        return fill(out, interval)

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


def reference_interval(raw: RawProject, grain: str) -> Interval:
    """The interval a model is rendered for to infer its dependencies: its first one."""
    start = floor(raw.config.start or datetime(2000, 1, 1), grain)
    return Interval(start, next_start(start, grain))


def _names(raw: RawProject) -> tuple[set[str], dict[str, list[str]]]:
    """Every node name, and bare table name -> the full names that have it."""
    names = (
        {m.name for m in raw.models} | {s.name for s in raw.seeds} | {s.name for s in raw.sources}
    )
    index: dict[str, list[str]] = {}
    for n in sorted(names):
        index.setdefault(n.split(".", 1)[1], []).append(n)
    return names, index


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
        state = CompileState(raw, target, True, write_cache, key, plain=plain)
        state._texts = texts
        return CompiledProject(
            raw, target, found["nodes"], graphmod.Graph(found["upstream"], found["order"]), state
        )
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
    last: dict = {}  # the compiled-project cache: the last compile of this target
    if key is not None:
        last = compiled_store(raw.root, target.name, True, True).data
        hit = _from_cache(raw, target, key, write_cache, last)
        if hit is not None:
            return hit
    with frozen_gc():
        return _compile(raw, target, key, use_cache, write_cache, last)


def _compile(
    raw: RawProject,
    target: Target,
    key: str | None,
    use_cache: bool,
    write_cache: bool,
    last: dict,
) -> CompiledProject:
    errors: list[UserError] = []
    names, index = _define(raw, target, errors)
    cache = parse_cache(raw.root, use_cache, not write_cache)
    builder = SqlBuilder(raw, target, index, names, cache)
    references = _References(raw)
    builder.check_macros(errors)
    if errors:  # a broken macro file would fail every Jinja model again
        raise_collected(errors)
    shared = shared_key(raw, target) if key is not None else None
    by_model = models_store(raw.root, target.name, shared is not None, not write_cache)
    before = Before.of(by_model, shared, last, raw)
    builder.prefetch(
        [(m.name, m.path, m.sql, references.of(m.config)) for m in raw.models if m not in before]
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

    locate = {m.name: SourceLocation(m.path, 1) for m in raw.models}
    graph = graphmod.build(upstream, locate)
    nodes = _nodes(raw, target, graph, models, before)
    plain = {n: m.plain for n, m in models.items() if m.plain is not None}
    state = CompileState(raw, target, use_cache, write_cache, key, builder, plain, by_model)
    if key is not None and write_cache:
        texts = {m.name: m.sql for m in raw.models}
        state.compiled.replace(
            {
                "key": key,
                "nodes": nodes,
                "upstream": graph.upstream,
                "order": graph.order,
                "plain": {n: None if sql == texts[n] else sql for n, sql in plain.items()},
            }
        )
        if shared is not None:
            entries = Before.entries(raw, models)
            by_model.replace({"shared": shared, "key": key, "models": entries})
    return CompiledProject(raw, target, nodes, graph, state)


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


def _define(
    raw: RawProject, target: Target, errors: list[UserError]
) -> tuple[set[str], dict[str, list[str]]]:
    """Every node name (each a valid table name on the target, none twice), and bare
    table name -> the full names that have it."""
    defined: dict[str, str] = {}  # name -> path that defines it
    found = [(m.name, m.path, 1, "a model") for m in raw.models]
    found += [(s.name, s.path, 1, "a seed") for s in raw.seeds]
    found += [(src.name, "sources.yml", src.line, "a source") for src in raw.sources]
    for name, path, line, what in found:
        bad = _bad_name(name, target, raw.config.dialect)
        if bad:
            errors.append(ConfigError(bad[0], at=SourceLocation(path, line), hint=bad[1]))
        elif name in defined:
            errors.append(
                ConfigError(
                    f"duplicate name '{name}': {what} here and in {defined[name]}",
                    at=SourceLocation(path, line),
                )
            )
        else:
            defined[name] = path
    index: dict[str, list[str]] = {}
    for n in sorted(defined):
        index.setdefault(n.split(".", 1)[1], []).append(n)
    return set(defined), index


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
    return Found(config, upstream, digest, plain, macros, shape)


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


PIPE_SCHEMA = "_pipe"  # pipe's own relations (the ledger); adapters.base.LEDGER


def _bad_name(name: str, target: Target, dialect: str) -> tuple[str, str] | None:
    """(message, hint) when a table name cannot work on `target`: pipe's own schema, a
    word an engine reserves (engines.py; `dialect` is the models'), a part longer than the
    target's engine keeps."""
    schema, table = name.split(".", 1)
    if schema == PIPE_SCHEMA:
        return (
            f"'{name}': schema '{PIPE_SCHEMA}' is pipe's own (its ledger lives there)",
            "use another schema",
        )
    if engines.reserved(schema):
        return (
            f"'{name}': '{schema}' is a reserved word in SQL and cannot name a schema",
            f"rename the folder, e.g. '{schema}s' or '{schema}_'; pipe writes names unquoted",
        )
    if engines.reserved_for_tables(table) or (
        engines.reserved(table) and not sqlmod.readable_after_schema(table, dialect)
    ):
        return (
            f"'{name}': '{table}' is a reserved word in SQL and cannot name a table",
            f"rename it, e.g. '{table}s' or '{table}_'; pipe writes names unquoted",
        )
    rules = engines.ENGINES[target.adapter]
    return rules.name_problem(schema, target.name) or rules.name_problem(table, target.name)


def _check_tuples(c: ModelConfig):
    return [
        [ch.type, ch.name, repr(ch.args), ch.severity, ch.warn_if, ch.error_if] for ch in c.checks
    ]


def _hash(value) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
