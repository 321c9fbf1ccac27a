"""`pipe docs`: a static site of the project and its runs, written into one folder.

The site is rebuilt, never hand-kept: `build` reads the compiled project, the newest plan
files of the target and the state store (read-only), lays the DAG out in layers, and writes
`data.js` (every fact as one JSON value) beside the page, script and style shipped in
`pipe.templates/site`. Nothing is fetched: data.js is a script, so the site opens from
file:// with no server and no network. What runs and the backfill grid show comes from
`siteruns.py`; `pipe docs --serve` is `siteserve.py`.

This module must not print, exit or write outside the output folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from . import cache as cachemod
from . import lineage as lineagemod
from . import sqlcolumns
from .compiler import CompiledProject
from .intervals import from_iso
from .parallel import fan_out, workers
from .siteruns import SiteRuns, runs_data
from .state import StateStore

ASSETS = ("index.html", "app.js", "style.css")
DEFAULT_OUT = Path(".pipe") / "site"
PLAN_FILES = 14  # newest plan files whose SQL the model pages offer
SQL_PER_MODEL = 30  # intervals of compiled SQL kept per model (an hourly model has 24 a day)
POOL_MIN = 2000  # new column parses worth forking worker processes for


@dataclass(frozen=True)
class SiteResult:
    out: Path
    models: int
    runs: int
    plans: int
    seconds: float


def build(
    cp: CompiledProject, out: Path, now: datetime | None = None, lineage: bool = True
) -> SiteResult:
    """Write the site for `cp` into `out` (created; files of an earlier build replaced);
    `lineage=False` leaves column lineage out (the slow part of a first build)."""
    began = time.perf_counter()
    now = now or datetime.now(UTC).replace(tzinfo=None)
    data = collect(cp, now, lineage)
    out.mkdir(parents=True, exist_ok=True)
    folder = resources.files("pipe.templates") / "site"
    for name in ASSETS:
        with resources.as_file(folder / name) as src:
            shutil.copyfile(src, out / name)
    text = json.dumps(data.as_json(), separators=(",", ":"), ensure_ascii=False, default=str)
    tmp = out / "data.js.tmp"
    tmp.write_text(f"window.PIPE_DATA = {text};\n", encoding="utf-8")
    tmp.replace(out / "data.js")
    return SiteResult(
        out, len(data.models), len(data.runs.runs), len(data.plans), time.perf_counter() - began
    )


@dataclass(frozen=True)
class SiteProject:
    """What the site is of: the project, its target, when it was built."""

    name: str
    target: str
    adapter: str
    dialect: str
    target_dialect: str
    schedule: str
    start: str | None
    generated_at: str

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class IntervalSql:
    """A model's compiled SQL for one interval of a plan file, and its checks' SQL."""

    plan: str  # the plan file's label
    interval: str
    sql: str
    checks: tuple[tuple[str, str], ...]  # (check name, its SQL)

    def as_json(self) -> dict:
        return {
            "plan": self.plan,
            "interval": self.interval,
            "sql": self.sql,
            "checks": [{"name": name, "sql": sql} for name, sql in self.checks],
        }


@dataclass(frozen=True)
class ModelPage:
    """One node's page: what it is, its columns with their docs, its checks, its SQL per
    interval (newest first) and its place in the drawing (column, row, layer)."""

    name: str
    kind: str
    grain: str | None
    path: str | None
    sidecar: str | None
    description: str | None
    tags: tuple[str, ...]
    fingerprint: str
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    time_column: str | None
    depends_on_past: bool
    pool: str | None
    max_concurrency: int | None
    retries: int
    timeout: float | None
    wait_for: str | None
    columns: tuple[tuple[str, str | None], ...]  # (name, its documentation)
    checks: tuple[tuple[str, str, str], ...]  # (name, type, severity)
    sql: tuple[IntervalSql, ...]
    xy: tuple[int, int, int]

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "grain": self.grain,
            "path": self.path,
            "sidecar": self.sidecar,
            "description": self.description,
            "tags": self.tags,
            "fingerprint": self.fingerprint,
            "upstream": self.upstream,
            "downstream": self.downstream,
            "time_column": self.time_column,
            "depends_on_past": self.depends_on_past,
            "pool": self.pool,
            "max_concurrency": self.max_concurrency,
            "retries": self.retries,
            "timeout": self.timeout,
            "wait_for": self.wait_for,
            "columns": [{"name": k, "doc": doc} for k, doc in self.columns],
            "checks": [{"name": n, "type": t, "severity": sev} for n, t, sev in self.checks],
            "sql": [s.as_json() for s in self.sql],
            "xy": self.xy,
        }


@dataclass(frozen=True)
class ColumnLinks:
    """A column of a model: the (model, column) pairs its value is computed from and the
    ones it feeds."""

    column: str
    upstream: tuple[tuple[str, str], ...]
    downstream: tuple[tuple[str, str], ...]

    def as_json(self) -> dict:
        return {
            "upstream": [list(p) for p in self.upstream],
            "downstream": [list(c) for c in self.downstream],
        }


@dataclass(frozen=True)
class ModelLineage:
    """The column lineage of one model, its columns in order."""

    model: str
    columns: tuple[ColumnLinks, ...]

    def as_json(self) -> dict:
        return {c.column: c.as_json() for c in self.columns}


@dataclass(frozen=True)
class SiteLineage:
    """Column lineage both ways, upstream models first; `errors`: (model, why) for each
    model whose lineage sqlglot cannot follow (it has no entry in `models`)."""

    models: tuple[ModelLineage, ...]
    errors: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SiteData:
    """Everything the site shows; `as_json()` is the value data.js holds."""

    project: SiteProject
    models: tuple[ModelPage, ...]  # one per node, in topological order
    plans: tuple[str, ...]  # labels of the newest plan files
    runs: SiteRuns
    lineage: SiteLineage | None  # None: built without column lineage

    def as_json(self) -> dict:
        """data.js's value; its lineage is {model: {column: {"upstream": [[model,
        column], ...], "downstream": [...]}}} and lineage_errors {model: why}."""
        found = self.lineage
        return {
            "project": self.project.as_json(),
            "models": [m.as_json() for m in self.models],
            "plans": list(self.plans),
            **self.runs.as_json(),
            "lineage": None if found is None else {m.model: m.as_json() for m in found.models},
            "lineage_errors": {} if found is None else dict(found.errors),
        }


def collect(cp: CompiledProject, now: datetime, lineage: bool = True) -> SiteData:
    """Everything the site shows (`lineage=False`: no column lineage)."""
    plans, sql_of, upstream_ids = _plans(cp)
    # lineage's columns are better than a parse's: stars expanded
    found = column_lineage(cp) if lineage else None
    known = {
        m.model: [c.column for c in m.columns] for m in (found.models if found else ()) if m.columns
    }
    outputs = output_columns(cp, {m: s[0].sql for m, s in sql_of.items() if s and m not in known})
    outputs.update(known)
    down = cp.graph.downstream_map()
    pos = layout(cp.graph.upstream, cp.graph.order)
    models = tuple(
        _model(cp, name, sql_of.get(name, ()), outputs.get(name, ()), down, pos)
        for name in cp.graph.order
    )
    store = StateStore(cp.raw.root, readonly=True)
    try:
        runs = runs_data(cp, store, now, upstream_ids)
    finally:
        store.close()
    cfg = cp.raw.config
    project = SiteProject(
        cp.name,
        cp.target.name,
        cp.target.adapter,
        cfg.dialect,
        cp.target.dialect,
        cfg.schedule,
        cfg.start.isoformat() if cfg.start else None,
        now.strftime("%Y-%m-%d %H:%M:%SZ"),
    )
    return SiteData(project, models, tuple(plans), runs, found)


def _model(cp: CompiledProject, name: str, sqls, outputs, down: dict, pos: dict) -> ModelPage:
    """One node's page: what it is, its columns with their docs, checks, SQL, position."""
    node = cp.nodes[name]
    c = node.config
    desc = c.description
    docs = dict(c.columns)
    if node.seed is not None:
        desc = desc or node.seed.config.description
        docs = {**dict(node.seed.config.columns), **docs}
    if node.source is not None:
        desc = desc or node.source.description
    columns = list(outputs)
    columns += [k for k in docs if k not in columns]
    return ModelPage(
        name,
        node.kind,
        node.grain,
        node.path,
        cp.sidecar(name) if node.kind not in ("seed", "source") else None,
        desc,
        tuple(c.tags),
        node.fingerprint,
        tuple(node.upstream),
        tuple(down.get(name, ())),
        c.time_column,
        c.depends_on_past,
        c.pool,
        c.max_concurrency,
        c.retries,
        c.timeout,
        node.source.wait_for if node.source else None,
        tuple((k, docs.get(k)) for k in columns),
        tuple((ch.name, ch.type, ch.severity) for ch in c.checks),
        tuple(sqls),
        tuple(pos[name]),
    )


def column_lineage(cp: CompiledProject) -> SiteLineage:
    """Column lineage both ways from `pipe lineage`'s module, with its per-model cache
    (the first build of a large project pays for lineage as `pipe lineage` does; later
    builds only for what an edit changed), and the whole answer kept for the compile key
    in the store .pipe/cache/site-lineage.pickle."""
    kept = cachemod.store(cp.raw.root, "site-lineage.pickle", cachemod.code_version(), bool(cp.key))
    found = kept.data.get("answer")
    if cp.key and found is not None and found[0] == cp.key:  # an unchanged project: not
        return found[1]  # even lineage's own cache needs reading
    cached = lineagemod.load_cache(cp.raw.root)
    before = len(cached.data)
    project = lineagemod.compute(cp, cache=cached.data)
    lineagemod.save_cache(cached, before)
    models, errors = [], []
    for name, table in project.tables.items():
        if table.error is not None:
            errors.append((name, table.error))
            continue
        links = []
        for col in table.columns:
            below = project.children.get(lineagemod.Column(name, col), ())
            links.append(
                ColumnLinks(
                    col,
                    tuple((p.table, p.name) for p in table.parents_of(col)),
                    tuple((c.table, c.name) for c in below),
                )
            )
        models.append(ModelLineage(name, tuple(links)))
    answer = SiteLineage(tuple(models), tuple(errors))
    kept.put("answer", (cp.key, answer))
    kept.save()
    return answer


def _parse_chunk(jobs: list[tuple[str, str]], bounds: tuple[int, int]) -> list:
    """In a worker: (index, columns) of the (sql, dialect) jobs in [start, end)."""
    return [(i, sqlcolumns.output_columns(*jobs[i])) for i in range(*bounds)]


def output_columns(cp: CompiledProject, sql_of: dict[str, str]) -> dict[str, list[str]]:
    """model -> the columns its newest compiled SQL returns. Parsing is the one slow step
    of a build (a millisecond a model), so results are kept in the store
    .pipe/cache/site-columns.pickle by a hash of the SQL, and a build with thousands of new
    ones parses them on every core."""
    dialect = cp.target.dialect
    kept = cachemod.store(cp.raw.root, "site-columns.pickle", cachemod.code_version())
    cache = kept.data
    keys = {
        m: hashlib.sha1(f"{dialect}\0{sql}".encode()).hexdigest()[:20] for m, sql in sql_of.items()
    }
    missing = sorted({k: m for m, k in keys.items() if k not in cache}.items())
    if missing:
        jobs = [(sql_of[m], dialect) for _k, m in missing]
        found = _parse_all(jobs)
        used = set(keys.values())
        cache = {k: v for k, v in cache.items() if k in used}
        cache.update({k: found[i] for i, (k, _m) in enumerate(missing)})
        kept.replace(cache)
        kept.save()
    return {m: cache[k] for m, k in keys.items()}


def _parse_all(jobs: list[tuple[str, str]]) -> dict[int, list[str]]:
    """index -> the output columns of each (sql, dialect) job, on every core when there
    are many."""
    found: dict[int, list[str]] = {}
    n = len(jobs)
    if n >= POOL_MIN and workers() > 1:
        step = -(-n // (workers() * 4))
        try:  # the jobs reach the workers through the fork
            for part in fan_out(
                _parse_chunk, jobs, [(i, min(n, i + step)) for i in range(0, n, step)]
            ):
                found.update(part)
        except OSError:
            pass  # no fork: parse here
    for i in range(n):
        if i not in found:
            found[i] = sqlcolumns.output_columns(*jobs[i])
    return found


def _plans(cp: CompiledProject) -> tuple[list[str], dict[str, list[IntervalSql]], dict]:
    """The newest plan files of the target: their labels, each model's SQL per interval
    (newest first) and every task's upstream task ids (for a run's critical path)."""
    folder = cp.raw.root / "plans" / cp.target.name
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            data = json.loads(path.read_bytes())
            found.append((data["interval"]["start"], data))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a plan pipe wrote: `pipe compile --check` is where that is said
    found.sort(key=lambda x: x[0], reverse=True)
    labels, sql_of, upstream = [], {}, {}
    for _start, data in found[:PLAN_FILES]:
        label = data["interval"]["label"]
        labels.append(label)
        for t in data.get("tasks", ()):
            upstream[t["id"]] = t.get("upstream", [])
            if "sql" not in t:
                continue
            kept = sql_of.setdefault(t["model"], [])
            if len(kept) >= SQL_PER_MODEL:
                continue
            iv = t.get("interval")
            checks = tuple((c["name"], "\n".join(c["sql"])) for c in t.get("checks", ()))
            sql = "\n".join(t["sql"])
            kept.append(IntervalSql(label, _label(iv) if iv else label, sql, checks))
    for kept in sql_of.values():
        kept.sort(key=lambda s: s.interval, reverse=True)
    return labels, sql_of, upstream


def _label(iv: dict) -> str:
    from .intervals import Interval

    return Interval(from_iso(iv["start"]), from_iso(iv["end"])).label


def layout(upstream, order, aspect: float = 1.8) -> dict[str, list[int]]:
    """A layered drawing of the DAG: name -> [column, row, layer].

    Layer = longest path from a root (data flows left to right); rows within a layer are
    ordered by the barycenter of their neighbours, a few sweeps each way, which keeps most
    edges short and uncrossed (Sugiyama's heuristic without dummy nodes: cheap at 10,000
    nodes). A layer taller than the drawing is wide folds into several columns, so a
    thousand models fill a laptop screen instead of a thin strip."""
    layer: dict[str, int] = {}
    for n in order:
        ups = upstream.get(n, ())
        layer[n] = 1 + max((layer[u] for u in ups), default=-1)
    down: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        for u in upstream.get(n, ()):
            down[u].append(n)
    layers: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in order:
        layers[layer[n]].append(n)
    row = {n: float(i) for members in layers for i, n in enumerate(members)}

    def sweep(indices, neighbours) -> None:
        for i in indices:
            members = layers[i]
            key = {}
            for n in members:
                ns = neighbours(n)
                key[n] = sum(row[m] for m in ns) / len(ns) if ns else row[n]
            members.sort(key=lambda n: (key[n], n))
            for j, n in enumerate(members):
                row[n] = float(j)

    for _ in range(4):
        sweep(range(1, len(layers)), lambda n: upstream.get(n, ()))
        sweep(range(len(layers) - 2, -1, -1), lambda n: down[n])
    rows = _fold(layers, aspect)
    out: dict[str, list[int]] = {}
    col = 0
    for i, members in enumerate(layers):
        for j, n in enumerate(members):
            out[n] = [col + j // rows, j % rows, i]
        col += -(-len(members) // rows) if members else 0
    return out


def _fold(layers: list[list[str]], aspect: float) -> int:
    """Rows per column: the tallest layer's size, or fewer when that makes the drawing
    (columns 250 units wide, rows 50 high) closer to `aspect` (width / height)."""
    tallest = max((len(m) for m in layers), default=1)
    best, best_err = tallest, None
    for rows in range(tallest, 0, -1):
        cols = sum(-(-len(m) // rows) for m in layers)
        err = abs(math.log((cols * 250) / (rows * 50) / aspect))
        if best_err is not None and err > best_err:
            break  # wider from here on
        best, best_err = rows, err
    return best
