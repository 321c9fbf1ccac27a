"""RawProject -> CompiledProject: names resolved, dependencies inferred, graph checked.

No database and no clock here. A model's SQL is rendered with Jinja, parsed once per
distinct rendering (interval values normalised away, see templating.normalise), its tables
resolved against models, seeds and sources, and written out for the target dialect. A
parse cache under .pipe/cache keyed by the rendered text makes an unchanged project
recompile without parsing.

Name resolution (SPEC §2): `schema.table` as is; a bare `table` when exactly one model,
seed or source has that table name; CTE names shadow models (handled in sql.py).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from . import graph as graphmod
from . import sql as sqlmod
from .config import ModelConfig, SourceConfig, Target
from .errors import (
    ConfigError,
    SourceLocation,
    SqlError,
    TemplateError,
    UnknownTable,
    UserError,
    raise_collected,
)
from .intervals import Interval, floor, next_start
from .loader import RawProject, RawSeed
from .templating import PLACEHOLDERS, Renderer, normalise, quoted_values

CACHE_VERSION = "2"  # 2: columns point at the start of a name


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


class ParseCache:
    """Rendered-SQL hash -> tables read (with offsets), persisted as one pickle file."""

    def __init__(self, path: Path | None, readonly: bool = False):
        self.path = path
        self.readonly = readonly  # read the cache but write nothing (a dry run)
        self.data: dict[str, tuple] = {}
        self.dirty = False
        if path and path.is_file():
            try:
                with path.open("rb") as f:
                    stored = pickle.load(f)
                if stored.get("version") == CACHE_VERSION:
                    self.data = stored["entries"]
            except Exception:  # noqa: BLE001 - a corrupt cache is only a slower compile
                self.data = {}

    def save(self) -> None:
        if not (self.path and self.dirty) or self.readonly:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as f:
            pickle.dump({"version": CACHE_VERSION, "entries": self.data}, f, protocol=5)
        os.replace(tmp, self.path)


class SqlBuilder:
    """Renders, parses (through the cache), resolves and writes one model's SQL."""

    def __init__(self, raw: RawProject, target: Target, index: Mapping[str, list[str]],
                 names: set[str], cache: ParseCache):
        self.raw = raw
        self.dialect = raw.config.dialect
        self.target = target
        self.index = index  # bare table name -> full names
        self.names = names
        self.cache = cache
        self.renderer = Renderer(raw.macros, dict(raw.config.vars), self.resolve_ref,
                                 self.resolve_source,
                                 raw.root / ".pipe" / "cache" / "jinja"
                                 if cache.path and not cache.readonly else None)
        self.sources = {s.name for s in raw.sources}

    # -- names
    def resolve(self, name: str, at: SourceLocation | None) -> str:
        name = name.lower() if name == name.lower() or '"' not in name else name
        if name in self.names:
            return name
        if "." not in name:
            found = self.index.get(name, [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise UnknownTable(f"table '{name}' is ambiguous", at=at,
                                   hint="write one of " + ", ".join(sorted(found)))
        close = difflib.get_close_matches(name, sorted(self.names), n=1, cutoff=0.6)
        if not close and "." not in name:
            close = difflib.get_close_matches(name, sorted(self.index), n=1, cutoff=0.6)
            close = [self.index[close[0]][0]] if close else []
        raise UnknownTable(
            f"unknown table '{name}': not a model, a seed or a source in sources.yml", at=at,
            hint=f"did you mean '{close[0]}'?" if close else
            "declare external tables in sources.yml")

    def resolve_ref(self, name: str, path: str) -> str:
        try:
            return self.resolve(name, None)
        except UnknownTable as exc:
            raise TemplateError(f"ref('{name}'): {exc.message}", hint=exc.hint) from None

    def resolve_source(self, name: str, path: str) -> str:
        if name not in self.sources:
            close = difflib.get_close_matches(name, sorted(self.sources), n=1)
            raise TemplateError(f"source('{name}') is not declared in sources.yml",
                                hint=f"did you mean '{close[0]}'?" if close else None)
        return name

    # -- SQL
    def _refs(self, normalised: str, path: str):
        key = hashlib.sha1(f"{self.dialect}\0{normalised}".encode()).hexdigest()
        hit = self.cache.data.get(key)
        if hit is None:
            tree = sqlmod.parse_select(normalised, self.dialect, path)
            hit = tuple((r.parts, r.line, r.col, t.this.meta.get("start"), t.this.meta.get("end"))
                        for r, t in sqlmod.table_refs(tree))
            self.cache.data[key] = hit
            self.cache.dirty = True
        return hit

    def build(self, model: str, path: str, text: str, interval: Interval,
              errors: list[UserError] | None = None) -> tuple[str, tuple[str, ...]]:
        """(SQL for the target with interval placeholders, tables read) of one rendering.

        Unknown tables are appended to `errors` when given (compile collects them all),
        raised otherwise."""
        rendered = self.renderer.render(path, text, interval, model)
        normalised = normalise(rendered, interval)
        try:
            refs = self._refs(normalised, path)
        except SqlError as exc:
            exc.at = _in_source(exc.at, text, normalised)
            raise
        reads: list[str] = []
        splices: list[tuple[int, int, str]] = []
        for parts, line, col, start, end in refs:
            name = ".".join(p for p in parts if p)
            try:
                full = self.resolve(name, _in_source(SourceLocation(path, line, col), text,
                                                     normalised))
            except UnknownTable as exc:
                if errors is None:
                    raise
                errors.append(exc)
                continue
            if full != name and not parts[0]:
                splices.append((start, end, full))
            if full != model:  # reading its own past ({{ this }}) is no edge
                reads.append(full)
        if self.target.dialect == self.dialect:
            out = normalised
            for start, end, full in sorted(splices, reverse=True):
                out = out[:start] + full + out[end + 1:]
        else:
            out = self._transpile(normalised, path, splices)
        return out, tuple(sorted(set(reads)))

    def _transpile(self, normalised: str, path: str, splices) -> str:
        """The model in the target dialect, names qualified; cached like the parse, since
        placeholders stand for the interval values (the resolved names are in the key)."""
        key = "transpile:" + hashlib.sha1(
            f"{self.dialect}\0{self.target.dialect}\0{sorted(splices)}\0{normalised}"
            .encode()).hexdigest()
        out = self.cache.data.get(key)
        if out is None:
            out = self._transpile_uncached(normalised, path)
            self.cache.data[key] = out
            self.cache.dirty = True
        return out

    def _transpile_uncached(self, normalised: str, path: str) -> str:
        tree = sqlmod.parse_select(normalised, self.dialect, path)
        for ref, table in sqlmod.table_refs(tree):
            if ref.parts[0]:
                continue
            try:
                full = self.resolve(ref.name, None)
            except UnknownTable:
                continue
            schema, name = full.split(".", 1)
            sqlmod.qualify(table, schema, name)
        out = sqlmod.generate(tree, self.target.dialect, path)
        sqlmod.validate_for(tree, out, self.target.dialect, path)
        return out


def _in_source(at: SourceLocation | None, source: str, rendered: str) -> SourceLocation | None:
    """A place in the rendered SQL as a place in the model file: the line is the same
    (Jinja keeps lines), the column only where that line was not changed by rendering."""
    if at is None or at.line is None or at.col is None:
        return at
    src, out = source.splitlines(), rendered.splitlines()
    if at.line > len(src) or at.line > len(out) or src[at.line - 1] != out[at.line - 1]:
        return replace(at, col=None)
    return at


def fill(sql: str, interval: Interval) -> str:
    """Put an interval's values where `SqlBuilder.build` left placeholders."""
    if "__pipe_" not in sql:
        return sql
    for placeholder, quoted in zip(PLACEHOLDERS, quoted_values(interval), strict=True):
        sql = sql.replace(placeholder, quoted)
    return sql


@dataclass(frozen=True)
class CompiledProject:
    raw: RawProject
    target: Target
    nodes: Mapping[str, Node]
    graph: graphmod.Graph
    builder: SqlBuilder = field(repr=False, compare=False)
    texts: Mapping[str, str] = field(repr=False, compare=False, default_factory=dict)

    @property
    def name(self) -> str:
        return self.raw.config.name

    def models(self) -> list[Node]:
        return [self.nodes[n] for n in self.graph.order if self.nodes[n].kind != "source"]

    def model_sql(self, name: str, interval: Interval) -> str:
        """The final SQL of a model for one interval, in the target dialect."""
        node = self.nodes[name]
        out, reads = self.builder.build(name, node.path, self.texts[name], interval)
        extra = set(reads) - set(node.upstream)
        if extra:
            raise SqlError(f"for interval {interval.label} this model reads "
                           f"{', '.join(sorted(extra))}, which it does not read for the "
                           "project's start interval", at=SourceLocation(node.path),
                           hint="add them to 'depends_on' in the sidecar")
        return fill(out, interval)

    def save_cache(self) -> None:
        self.builder.cache.save()


def reference_interval(raw: RawProject, grain: str) -> Interval:
    """The interval a model is rendered for to infer its dependencies: its first one."""
    start = floor(raw.config.start or datetime(2000, 1, 1), grain)
    return Interval(start, next_start(start, grain))


def compile_project(raw: RawProject, target_name: str | None = None,
                    use_cache: bool = True, write_cache: bool = True) -> CompiledProject:
    """Resolve every dependency and check the graph; raise all user errors together."""
    target = raw.config.target(target_name)
    errors: list[UserError] = []
    defined: dict[str, str] = {}  # name -> path that defines it

    def define(name: str, path: str, line: int | None, what: str) -> bool:
        if name in defined:
            errors.append(ConfigError(f"duplicate name '{name}': {what} here and in "
                                      f"{defined[name]}", at=SourceLocation(path, line)))
            return False
        defined[name] = path
        return True

    for m in raw.models:
        define(m.name, m.path, 1, "a model")
    for s in raw.seeds:
        define(s.name, s.path, 1, "a seed")
    for src in raw.sources:
        define(src.name, "sources.yml", src.line, "a source")
    names = set(defined)
    index: dict[str, list[str]] = {}
    for n in sorted(names):
        index.setdefault(n.split(".", 1)[1], []).append(n)

    cache = ParseCache(raw.root / ".pipe" / "cache" / "parse.pickle" if use_cache else None,
                       readonly=not write_cache)
    builder = SqlBuilder(raw, target, index, names, cache)
    schedule = raw.config.schedule

    upstream: dict[str, tuple[str, ...]] = {}
    sql_for_hash: dict[str, str] = {}
    configs: dict[str, ModelConfig] = {}  # checks' table names resolved
    locate: dict[str, SourceLocation] = {}
    for m in raw.models:
        grain = m.config.grain or schedule
        locate[m.name] = SourceLocation(m.path, 1)
        try:
            out, reads = builder.build(m.name, m.path, m.sql, reference_interval(raw, grain),
                                       errors)
        except UserError as exc:
            errors.append(exc)
            continue
        extra = []
        for dep, line in zip(m.config.depends_on, m.config.depends_on_lines, strict=True):
            try:
                extra.append(builder.resolve(dep, SourceLocation(m.sidecar, line)))
            except UnknownTable as exc:
                errors.append(exc)
        checks = []
        for check in m.config.checks:
            if check.type == "relationships":
                args = dict(check.args)
                to, _, column = args["to"].rpartition(".")
                try:
                    full = builder.resolve(to, SourceLocation(m.sidecar, check.line))
                except UnknownTable as exc:
                    errors.append(exc)
                    continue
                extra.append(full)
                # the check's SQL must read the resolved table, not a bare name
                check = replace(check, args=(("column", args["column"]),
                                             ("to", f"{full}.{column}")))
            checks.append(check)
        configs[m.name] = replace(m.config, checks=tuple(checks))
        upstream[m.name] = tuple(sorted(set(reads) | set(extra) - {m.name}))
        sql_for_hash[m.name] = out
    for s in raw.seeds:
        upstream[s.name] = ()
    for src in raw.sources:
        upstream[src.name] = ()
    raise_collected(errors)

    graph = graphmod.build(upstream, locate)
    nodes: dict[str, Node] = {}
    by_model = {m.name: m for m in raw.models}
    seeds = {s.name: s for s in raw.seeds}
    sources = {s.name: s for s in raw.sources}
    macro_hash = builder.renderer.fingerprint_inputs()
    for name in graph.order:
        ups = graph.upstream[name]
        if name in seeds:
            s = seeds[name]
            fp = _hash({"seed": s.sha256, "types": s.config.column_types,
                        "target": target.dialect})
            nodes[name] = Node(name, "seed", s.path, ups, fp, seed=s)
        elif name in sources:
            src = sources[name]
            nodes[name] = Node(name, "source", "sources.yml", ups,
                               _hash({"source": name, "wait_for": src.wait_for}), source=src)
        else:
            m = by_model[name]
            c = configs[name]
            fp = _hash({
                "sql": sql_for_hash[name],
                "macros": macro_hash if "{" in m.sql else "",
                "kind": c.kind, "time_column": c.time_column, "grain": c.grain or schedule,
                "checks": _check_tuples(c),
                "upstream": [nodes[u].fingerprint for u in ups],
                "target": target.dialect,
            })
            nodes[name] = Node(name, c.kind, m.path, ups, fp,
                               grain=c.grain or schedule, config=c)
    return CompiledProject(raw, target, nodes, graph, builder, {m.name: m.sql for m in raw.models})


def _check_tuples(c: ModelConfig):
    return [[ch.type, ch.name, repr(ch.args), ch.severity, ch.warn_if, ch.error_if]
            for ch in c.checks]


def _hash(value) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
