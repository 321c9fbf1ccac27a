"""Column-level lineage of a compiled project: for every column of every model, the
columns of its direct upstream tables that its value is computed from, and through them
the seed and source columns it derives from; and the reverse, what a column feeds.

Computed on demand (`pipe lineage`, OpenLineage events), never by `pipe compile`: it reads
every model's SQL again through sqlglot's qualify and a walk over its scopes
(sqlcolumns.column_lineage), which a compile does not need. Tables are visited in
topological order, so each model's output columns are the schema its downstream models
are qualified with, and `SELECT *` expands wherever the upstream columns are known:
seeds (their CSV header, typed as DuckDB types them), sources that declare `columns:` in
sources.yml (else, when the command gives a `catalog`, the warehouse's own catalog), and
models whose own projection is known. A star over a source of unknown columns stays
unexpanded: that model's lineage is marked incomplete and its columns are not guessed for
its downstream models.

sqlglot's work is the cost (a few milliseconds a model): when many models wait for it at
once (a first computation), it runs in forked worker processes, each model as soon as its
upstream models are done (pipe.dagwork), while this process keeps the schema and the
cache; the seed CSVs are typed by DuckDB in a thread meanwhile. Same answers either way.

Value lineage only: WHERE, join keys and GROUP BY do not make a column a parent. This
module prints nothing and writes nothing; its values are frozen.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import dagwork, sqlcolumns
from .errors import SourceLocation, SqlError, UserError
from .names import TableName

UNKNOWN_TYPE = "UNKNOWN"


@dataclass(frozen=True, order=True)
class Column:
    """A column of a model, seed or source: `schema.table` and the column's name."""

    table: str
    name: str

    def __str__(self) -> str:
        return f"{self.table}.{self.name}"


@dataclass(frozen=True)
class TableLineage:
    """One model, seed or source: its columns in order (types where known) and, for a
    model, each column's direct parents. `complete` is False when some input could not
    be placed (a star or an unqualified column over a table of unknown columns);
    `error` says why a model's lineage could not be computed at all."""

    name: str
    kind: str
    path: str | None
    columns: tuple[str, ...]
    types: tuple[tuple[str, str], ...] = ()
    parents: tuple[tuple[str, tuple[Column, ...]], ...] = ()
    complete: bool = True
    error: str | None = None

    def parents_of(self, column: str) -> tuple[Column, ...]:
        return dict(self.parents).get(column, ())

    @property
    def known(self) -> bool:
        """Whether its columns are all known (a schema downstream models can rely on)."""
        return self.error is None and self.complete and bool(self.columns)


@dataclass(frozen=True)
class ProjectLineage:
    """Lineage of the tables computed, by name; `children` is the reverse of every
    model's parents (column -> the model columns computed from it, sorted)."""

    tables: Mapping[str, TableLineage]
    children: Mapping[Column, tuple[Column, ...]]

    def table(self, name: str) -> TableLineage:
        return self.tables[name]

    def parents(self, col: Column) -> tuple[Column, ...]:
        found = self.tables.get(col.table)
        return found.parents_of(col.name) if found else ()

    def sources(self, col: Column) -> tuple[Column, ...]:
        """The seed and source columns `col` derives from, transitively, sorted."""
        out: set[Column] = set()
        seen: set[Column] = {col}
        todo = list(self.parents(col))
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            table = self.tables.get(c.table)
            if table is not None and table.kind in ("seed", "source"):
                out.add(c)
            todo.extend(self.parents(c))
        return tuple(sorted(out, key=_order))

    def downstream(self, col: Column) -> tuple[Column, ...]:
        """Every model column computed from `col`, transitively, sorted."""
        seen: set[Column] = set()
        todo = list(self.children.get(col, ()))
        while todo:
            c = todo.pop()
            if c not in seen and c != col:
                seen.add(c)
                todo.extend(self.children.get(c, ()))
        return tuple(sorted(seen, key=_order))


def compute(
    cp,
    only: Iterable[str] | None = None,
    catalog: Callable[[list[str]], Mapping[str, tuple]] | None = None,
    cache: MutableMapping[str, object] | None = None,
) -> ProjectLineage:
    """Lineage of the models in `only` and of everything upstream of them (default: the
    whole project), from a CompiledProject. `catalog(tables)`, when given, is asked once
    for the (column, type) pairs of the sources that declare no `columns:` (the
    warehouse's catalog; it returns what it finds). `cache`, when given, maps a model's
    SQL and the columns of the tables it reads to sqlglot's answer, and gains the answers
    it lacked (a persisted dict makes the next command fast). Raises only what rendering
    a model raises; a model sqlglot cannot follow gets a TableLineage with `error` set."""
    wanted = _with_upstream(cp.graph.upstream, only) if only is not None else None
    names = [n for n in cp.graph.order if wanted is None or n in wanted]
    dialect = cp.target.dialect
    sqls, found, seed_types = _inputs(cp, names, catalog)
    schema: dict[str, dict[str, dict[str, str]]] = {}
    tables: dict[str, TableLineage] = {}

    def known(name: str, t: TableLineage) -> None:
        tables[name] = t
        if t.known:  # names only: a catalog's type names need not parse as SQL types
            table = TableName.parse(name)
            schema.setdefault(table.schema, {})[table.table] = dict.fromkeys(
                t.columns, UNKNOWN_TYPE
            )

    for name in names:
        leaf = _leaf(cp.nodes[name], seed_types, found)
        if leaf is not None:
            known(name, leaf)
    keys: dict[str, str] = {}

    def prepare(name: str) -> tuple[bool, object]:
        """A model's cached answer, or the job that computes it."""
        sub = _schema_of(schema, cp.nodes[name].upstream)
        if cache is not None:
            keys[name] = key = _key(sqls[name], dialect, sub)
            hit = cache.get(key)
            if hit is not None:
                return True, hit
        return False, (sqls[name], dialect, sub)

    def finish(name: str, answer: object) -> None:
        if name in keys and keys[name] not in cache:
            cache[keys[name]] = answer
        node = cp.nodes[name]
        known(name, _model(name, node.kind, node.path, answer))

    dagwork.run(sqls, cp.graph.upstream, prepare, _lineage_job, finish)
    tables = {n: tables[n] for n in names}  # upstream-first, as the models were visited
    return ProjectLineage(tables, _children(tables))


def _inputs(cp, names: list[str], catalog) -> tuple[dict[str, str], dict, dict]:
    """Every model's SQL (rendered for its reference interval), the catalog's columns of
    the sources that declare none, and the seeds' columns and types. DuckDB types the
    seeds in a thread while this one renders the models and readies sqlglot."""
    from .compiler import reference_interval

    seeds = [cp.nodes[n] for n in names if cp.nodes[n].kind == "seed"]
    bare = [
        n
        for n in names
        if cp.nodes[n].kind == "source" and not (cp.nodes[n].source and cp.nodes[n].source.columns)
    ]
    sqls: dict[str, str] = {}
    with ThreadPoolExecutor(1) as thread:
        typing = thread.submit(_seed_types, cp.raw.root, seeds)
        found = dict(catalog(bare)) if catalog and bare else {}
        for name in names:  # all rendered first: one that fails raises as it always did
            node = cp.nodes[name]
            if node.kind not in ("seed", "source"):
                sqls[name] = cp.model_sql(
                    name, reference_interval(cp.raw, node.grain or cp.raw.config.schedule)
                )
        if sqls:  # sqlglot imported and the dialect built once, before a worker is forked
            _lineage_job(("SELECT 1 AS x", cp.target.dialect, {}))
        return sqls, found, typing.result()


def _leaf(node, seed_types: dict, found: dict) -> TableLineage | None:
    """A seed's or source's lineage (its columns, no parents); None for a model."""
    if node.kind == "seed":
        types = seed_types.get(node.name, ())
        return TableLineage(node.name, "seed", node.path, tuple(c for c, _ in types), types)
    if node.kind == "source":
        types = tuple(found.get(node.name, ()))
        cols = (tuple(c for c, _ in node.source.columns) if node.source else ()) or tuple(
            c for c, _ in types
        )
        return TableLineage(node.name, "source", "sources.yml", cols, types)
    return None


def _children(tables: Mapping[str, TableLineage]) -> dict[Column, tuple[Column, ...]]:
    """Column -> the model columns computed from it, sorted (the reverse of parents)."""
    children: dict[Column, set[Column]] = {}
    for t in tables.values():
        for column, parents in t.parents:
            for p in parents:
                children.setdefault(p, set()).add(Column(t.name, column))
    return {c: tuple(sorted(v, key=_order)) for c, v in sorted(children.items(), key=_item_order)}


def _order(c: Column) -> tuple[str, str]:
    """A Column's sort key: its order (a dataclass's comparisons are slow to sort by)."""
    return (c.table, c.name)


def _item_order(item: tuple[Column, object]) -> tuple[str, str]:
    return (item[0].table, item[0].name)


def _key(sql: str, dialect: str, schema: dict) -> str:
    """The cache key of a model's answer: its SQL and the columns of what it reads."""
    return hashlib.sha1(
        f"{dialect}\0{sql}\0{json.dumps(schema, sort_keys=True)}".encode()
    ).hexdigest()


def _lineage_job(job: tuple[str, str, dict]):
    """sqlglot's answer for one model (maybe in a worker process): its columns' sources,
    or why sqlglot could not follow it."""
    sql, dialect, schema = job
    try:
        return sqlcolumns.column_lineage(sql, dialect, schema)
    except SqlError as exc:
        return exc.message


def _model(name: str, kind: str, path: str | None, found) -> TableLineage:
    if isinstance(found, str):  # what sqlglot could not follow
        return TableLineage(name, kind, path, (), complete=False, error=found)
    columns = tuple(c.column for c in found if c.column != "*")
    parents = tuple((c.column, _parents(c.reads, name)) for c in found if c.column != "*")
    complete = not any(c.unresolved or c.column == "*" for c in found)
    return TableLineage(name, kind, path, columns, parents=parents, complete=complete)


def _parents(reads, name: str) -> tuple[Column, ...]:
    """The (schema, table, column) values a column of `name` is computed from, less
    `name`'s own, as sorted Columns."""
    found = {Column(str(TableName(s, t)), col) for s, t, col in reads}
    return tuple(sorted((c for c in found if c.table != name), key=_order))


def _schema_of(schema: dict, names: Iterable[str]) -> dict:
    """The part of `schema` a model reads: qualify normalises every table it is given."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for name in names:
        table = TableName.parse(name)
        found = schema.get(table.schema, {}).get(table.table)
        if found is not None:
            out.setdefault(table.schema, {})[table.table] = found
    return out


def _seed_types(root: Path, seeds) -> dict[str, tuple[tuple[str, str], ...]]:
    """Each seed's columns and types as the DuckDB CSV sniffer (every adapter's seed
    contract) sees them; a CSV it cannot read has no known columns."""
    if not seeds:
        return {}
    from .adapters.duckdb import describe_csvs

    found = describe_csvs([(root / s.path, dict(s.seed.config.column_types)) for s in seeds])
    return {s.name: cols for s, cols in zip(seeds, found, strict=True)}


def _with_upstream(upstream: Mapping[str, tuple[str, ...]], names: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(upstream.get(n, ()))
    return seen


def with_downstream(upstream: Mapping[str, tuple[str, ...]], name: str) -> set[str]:
    """`name` and every node that reads it, directly or not."""
    down: dict[str, list[str]] = {}
    for n, ups in upstream.items():
        for u in ups:
            down.setdefault(u, []).append(n)
    seen: set[str] = set()
    todo = [name]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(down.get(n, ()))
    return seen


# ---------------------------------------------------------------- names on the command line


def parse_target(cp, text: str) -> tuple[str, str | None]:
    """`schema.model` or `schema.model.column` -> (node name, column or None); an unknown
    model is a UserError with a suggestion. The column is checked by `check_column`."""
    parts = (
        text.strip().lower().split(".")
        if text == text.lower() or '"' not in text
        else text.split(".")
    )
    if len(parts) not in (2, 3):
        raise UserError(f"'{text}' is not SCHEMA.MODEL or SCHEMA.MODEL.COLUMN")
    name = str(TableName(parts[0], parts[1]))
    column = parts[2] if len(parts) == 3 else None
    if name not in cp.nodes:
        close = difflib.get_close_matches(name, sorted(cp.nodes), n=1, cutoff=0.6)
        raise UserError(
            f"unknown model '{name}': not a model, a seed or a source",
            hint=f"did you mean '{close[0]}'?" if close else "'pipe list' shows every name",
        )
    return name, column


def check_column(table: TableLineage, column: str) -> None:
    """Raise a UserError naming the model's file when `column` is not one of its columns."""
    if column in table.columns:
        return
    at = SourceLocation(table.path) if table.path else None
    if table.error:
        raise UserError(f"the lineage of {table.name} is not known: {table.error}", at=at)
    if not table.columns:
        raise UserError(
            f"the columns of {table.name} are not known",
            at=at,
            hint="declare them with 'columns:' in sources.yml"
            if table.kind == "source"
            else "it selects * from a source whose columns are not known: declare them with "
            "'columns:' in sources.yml",
        )
    close = difflib.get_close_matches(column, table.columns, n=1, cutoff=0.5)
    raise UserError(
        f"{table.name} has no column '{column}'",
        at=at,
        hint=f"did you mean '{close[0]}'?" if close else "its columns: " + ", ".join(table.columns),
    )


@dataclass(frozen=True)
class ColumnReport:
    """What `pipe lineage` shows of one column (every column `schema.table.col`, sorted):
    its direct parents and the seed and source columns it derives from, or with
    `downstream` the columns computed from it directly (children) and transitively."""

    column: str
    direct: tuple[str, ...]
    transitive: tuple[str, ...]
    downstream: bool = False

    def as_json(self) -> dict:
        near, far = ("children", "downstream") if self.downstream else ("parents", "sources")
        return {"column": self.column, near: list(self.direct), far: list(self.transitive)}


def report(
    pl: ProjectLineage, name: str, columns: Iterable[str], downstream: bool = False
) -> list[ColumnReport]:
    """What `pipe lineage` shows, one ColumnReport per column of `name`."""
    rows = []
    for column in columns:
        col = Column(name, column)
        if downstream:
            direct, far = pl.children.get(col, ()), pl.downstream(col)
        else:
            direct, far = pl.parents(col), pl.sources(col)
        rows.append(
            ColumnReport(str(col), tuple(map(str, direct)), tuple(map(str, far)), downstream)
        )
    return rows


# ---------------------------------------------------------------- the persisted cache

CACHE_FILE = "lineage.pickle"
CACHE_LIMIT = 200_000  # entries kept besides the ones a command used


def load_cache(root: Path):
    """The lineage cache: the store .pipe/cache/lineage.pickle of pipe.cache, of this pipe
    and sqlglot (`code_version` covers both; another's, or a corrupt file, reads as
    empty). `compute` adds to its `data`; `save_cache` writes what it added."""
    from .cache import code_version, store

    return store(root, CACHE_FILE, code_version())


def save_cache(kept, before: int) -> None:
    """Write the cache back when `compute` added to it (it held `before` entries); a
    project that cannot be written goes without."""
    cache = kept.data
    if len(cache) == before:
        return
    if len(cache) > CACHE_LIMIT:  # newest last: keep the newest
        kept.replace(dict(list(cache.items())[-CACHE_LIMIT:]))
    kept.dirty = True  # added to in place: the save appends what was added
    kept.save()
