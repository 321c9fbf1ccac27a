"""Plans: the fully expanded task list of one interval, its canonical file, staleness.

A plan is data (STYLE §5): the runner needs only the plan and an adapter. Each task has
a stable id (a hash of model and interval), its upstream task ids, the final SQL in the
target dialect, the target and temporary table names, the checks as SQL, and the model
fingerprint. The file is JSON with SQL as a list of lines, so a pull request shows a
model change line by line; compiling twice gives the same bytes (no clock, no absolute
path, no secret: DSNs and paths stay in pipe.yml).

Expansion (SPEC §3): an incremental model gets one task per interval of its grain inside
the run's interval; full and view models one task for the run's interval, after every
task of their upstream models; a seed one task (its id does not depend on the interval,
so an unchanged seed is loaded once); a source with `wait_for` a sensor task.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from . import checks as checkmod
from . import sql as sqlmod
from .compiler import CompiledProject, Node
from .errors import PlanFileError, SourceLocation, UserError, raise_collected
from .intervals import Interval, expand, floor, from_iso, iso, next_start, previous
from .loader import frozen_gc
from .templating import render_snippet

PLAN_FORMAT = 1


@dataclass(frozen=True)
class CheckSpec:
    name: str
    type: str
    severity: str
    sql: str
    warn_if: str | None = None
    error_if: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    model: str
    kind: str  # full | incremental | view | seed | sensor | swap (--full-refresh)
    interval: Interval | None
    upstream: tuple[str, ...]
    fingerprint: str
    table: str
    temp: str | None = None
    sql: str = ""
    time_column: str | None = None
    checks: tuple[CheckSpec, ...] = ()
    pool: str | None = None
    max_concurrency: int | None = None
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    past: Interval | None = None  # depends_on_past: this interval must be published first
    seed_path: str | None = None
    column_types: tuple[tuple[str, str], ...] = ()
    poke_every: float | None = None
    wait_timeout: float | None = None
    lookback: bool = False  # an interval before the run's, rebuilt for late data
    on_schema_change: str = "fail"
    # backfill --full-refresh: publishes into `table`, a shadow the `swap` task renames in
    refresh: bool = False
    grants: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (privilege, roles) to grant

    @property
    def key(self) -> tuple[str, str, str]:
        """(model, start, end) as the state store keys published work."""
        if self.interval is None:
            return (self.model, "", "")
        return (self.model, *_isos(self.interval))  # hot: the scheduler loop asks often

    @property
    def label(self) -> str:
        return self.interval.label if self.interval else "-"


@dataclass(frozen=True)
class Plan:
    project: str
    target: str
    dialect: str
    interval: Interval
    tasks: tuple[Task, ...]

    def select(self, models: Iterable[str] | None) -> Plan:
        """The same plan with only the tasks of `models` (None keeps all). Upstream ids
        outside the selection stay: what a selected task reads must be published already
        (SPEC §7), and the runner checks that against the ledger."""
        if models is None:
            return self
        keep = set(models)
        return replace(self, tasks=tuple(t for t in self.tasks if t.model in keep))


def task_id(model: str, interval: Interval | None) -> str:
    span = f"{_isos(interval)[0]}|{_isos(interval)[1]}" if interval else "*"
    return hashlib.sha1(f"{model}|{span}".encode()).hexdigest()[:12]


@lru_cache(maxsize=1 << 16)
def _isos(interval: Interval) -> tuple[str, str]:
    """(iso(start), iso(end)): the same few intervals are spelled for every task."""
    return iso(interval.start), iso(interval.end)


def temp_name(table: str, tid: str) -> str:
    schema, name = table.split(".", 1)
    return f"{schema}.{name[:40]}__pipe_tmp_{tid[:8]}"


def build_plan(
    cp: CompiledProject,
    run: Interval,
    models: Iterable[str] | None = None,
    full_interval: Interval | None = None,
    render: Callable[[Node, Interval | None], bool] | None = None,
) -> Plan:
    """Expand the project over `run`: every task with its edges and SQL.

    `full_interval` is the interval full and view models are built for (the run's by
    default; a backfill passes its whole range). `render(node, interval)` false makes a
    stub: the task without its SQL and checks (a backfill holds 365,000 of them and loads
    the SQL from the persisted plan file when the task runs)."""
    with frozen_gc():
        return _build_plan(cp, run, models, full_interval or run, render)


def _build_plan(
    cp: CompiledProject, run: Interval, models: Iterable[str] | None, full_iv: Interval, render
) -> Plan:
    wanted = set(models) if models is not None else None
    tasks: list[Task] = []
    by_model: dict[str, list[Task]] = {}
    errors: list[UserError] = []
    since: dict[str, datetime] = {}  # incremental model -> where its lookback range starts
    for name in cp.graph.order:
        if wanted is not None and name not in wanted:
            continue
        node = cp.nodes[name]
        try:
            if node.kind == "incremental":
                since[name] = _lookback_start(cp, node, run, since)
            made = _tasks_of(cp, node, run, full_iv, by_model, render, since.get(name))
        except UserError as exc:
            errors.append(exc)
            continue
        by_model[name] = made
        tasks.extend(made)
    raise_collected(errors)
    return Plan(cp.name, cp.target.name, cp.target.dialect, run, tuple(tasks))


def _lookback_start(
    cp: CompiledProject, node: Node, run: Interval, since: dict[str, datetime]
) -> datetime:
    """The first interval an incremental model rebuilds in a run of `run`: its own
    `lookback` intervals back (never before the project's start), or as far back as an
    incremental upstream rebuilds, since the intervals that read those are rebuilt too."""
    first = floor(run.start, node.grain)
    iv = Interval(first, next_start(first, node.grain))
    for _ in range(node.config.lookback):
        iv = previous(iv, node.grain)
    start = iv.start
    for up in node.upstream:
        if up in since:
            start = min(start, floor(since[up], node.grain))
    project_start = cp.raw.config.start
    if project_start is not None and start < project_start:
        start = floor(project_start, node.grain)
        if start < project_start:
            start = next_start(start, node.grain)
    return min(start, run.start)


def _upstream_ids(node: Node, iv: Interval | None, by_model: dict[str, list[Task]]):
    ids: list[str] = []
    for up in node.upstream:
        for t in by_model.get(up, ()):
            if (
                node.kind == "incremental"
                and t.kind == "incremental"
                and not (t.interval.overlaps(iv))
            ):
                continue  # an incremental interval waits only for the upstream ones it reads
            ids.append(t.id)
    return tuple(sorted(ids))


def _tasks_of(
    cp: CompiledProject,
    node: Node,
    run: Interval,
    full_iv: Interval,
    by_model: dict[str, list[Task]],
    render=None,
    since: datetime | None = None,
) -> list[Task]:
    if node.kind == "source":
        src = node.source
        if not src or not src.wait_for:
            return []
        text = render_snippet(src.wait_for, run, "sources.yml", src.line)
        sql = sqlmod.transpile(
            text,
            cp.raw.config.dialect,
            cp.target.dialect,
            "sources.yml",
            src.line,
            only_select=f"the wait_for of source '{src.name}'",
        )
        tid = task_id(node.name, run)
        return [
            Task(
                tid,
                node.name,
                "sensor",
                run,
                (),
                node.fingerprint,
                node.name,
                sql=sql,
                poke_every=src.poke_every,
                wait_timeout=src.wait_timeout,
            )
        ]
    if node.kind == "seed":
        tid = task_id(node.name, None)
        return [
            Task(
                tid,
                node.name,
                "seed",
                None,
                (),
                node.fingerprint,
                node.name,
                temp=temp_name(node.name, tid),
                seed_path=node.seed.path,
                column_types=node.seed.config.column_types,
            )
        ]
    c = node.config
    if node.kind == "incremental":
        intervals = list(expand(Interval(min(since or run.start, run.start), run.end), node.grain))
    else:
        intervals = [full_iv]
    out = []
    prev_id = None
    looked_back: list[str] = []  # this model's lookback tasks so far
    for iv in intervals:
        tid = task_id(node.name, iv)
        temp = temp_name(node.name, tid)
        full = render is None or render(node, iv)
        checks = (
            ()
            if not full
            else tuple(
                CheckSpec(
                    ch.name,
                    ch.type,
                    ch.severity,
                    checkmod.check_sql(
                        ch, temp, cp.raw.config.dialect, cp.target.dialect, _sidecar(cp, node), iv
                    ),
                    ch.warn_if,
                    ch.error_if,
                )
                for ch in c.checks
            )
        )
        upstream = _upstream_ids(node, iv, by_model)
        own_lookback = iv.start < run.start and c.lookback > 0
        if looked_back and not own_lookback:
            # the first interval of the run waits for the late-data rebuilds: once it is
            # published they are too, so a resume after a crash knows what is left
            upstream = tuple(sorted(set(upstream) | set(looked_back)))
            looked_back = []
        past = None
        if c.depends_on_past and node.kind == "incremental":
            if prev_id is not None:
                upstream = tuple(sorted(set(upstream) | {prev_id}))
            else:
                prior = previous(iv, node.grain)
                if cp.raw.config.start is None or prior.start >= cp.raw.config.start:
                    past = prior
        out.append(
            Task(
                tid,
                node.name,
                node.kind,
                iv,
                upstream,
                node.fingerprint,
                node.name,
                temp,
                cp.model_sql(node.name, iv) if full else "",
                c.time_column if node.kind == "incremental" else None,
                checks,
                c.pool,
                c.max_concurrency,
                c.retries,
                c.retry_delay,
                c.timeout,
                past,
                # its own late-data intervals; an interval before the run's that it has only
                # because an upstream looks back is rebuilt when that upstream's is
                lookback=own_lookback,
                on_schema_change=c.on_schema_change if node.kind == "incremental" else "fail",
                grants=c.grants,
            )
        )
        prev_id = tid
        if own_lookback:
            looked_back.append(tid)
    return out


def _sidecar(cp: CompiledProject, node: Node) -> str:
    return cp.sidecar(node.name) or node.path or ""


# ---------------------------------------------------------------- the file


def _lines(sql: str) -> list[str]:
    return sql.strip("\n").split("\n")


def _iv(iv: Interval | None):
    if not iv:
        return None
    start, end = _isos(iv)  # Interval.to_json, spelled once per interval
    return {"start": start, "end": end}


def to_json(plan: Plan) -> dict:
    tasks = []
    for t in plan.tasks:
        d: dict = {
            "id": t.id,
            "model": t.model,
            "kind": t.kind,
            "interval": _iv(t.interval),
            "upstream": list(t.upstream),
            "fingerprint": t.fingerprint,
            "table": t.table,
        }
        if t.temp:
            d["temp"] = t.temp
        if t.time_column:
            d["time_column"] = t.time_column
        if t.past:
            d["depends_on_past"] = _iv(t.past)
        if t.sql:
            d["sql"] = _lines(t.sql)
        if t.checks:
            d["checks"] = [
                {
                    k: v
                    for k, v in (
                        ("name", c.name),
                        ("type", c.type),
                        ("severity", c.severity),
                        ("warn_if", c.warn_if),
                        ("error_if", c.error_if),
                        ("sql", _lines(c.sql)),
                    )
                    if v is not None
                }
                for c in t.checks
            ]
        for key in (
            "pool",
            "max_concurrency",
            "timeout",
            "seed_path",
            "poke_every",
            "wait_timeout",
        ):
            if getattr(t, key) is not None:
                d[key] = getattr(t, key)
        if t.retries:
            d["retries"] = t.retries
            d["retry_delay"] = t.retry_delay
        if t.column_types:
            d["column_types"] = dict(t.column_types)
        if t.lookback:
            d["lookback"] = True
        if t.on_schema_change != "fail":
            d["on_schema_change"] = t.on_schema_change
        if t.grants:
            d["grants"] = {p: list(roles) for p, roles in t.grants}
        tasks.append(d)
    return {
        "pipe_plan": PLAN_FORMAT,
        "project": plan.project,
        "target": plan.target,
        "dialect": plan.dialect,
        "interval": {"label": plan.interval.label, **plan.interval.to_json()},
        "tasks": tasks,
    }


def dumps(plan: Plan) -> bytes:
    """The plan file: exactly `json.dumps(to_json(plan), indent=2, ensure_ascii=False)`
    and a newline, written by `_encode` (json's indented encoder is pure Python)."""
    with frozen_gc():
        data = to_json(plan)
        out: list[str] = []
        try:
            _encode(data, "\n", out)
        except _Unusual:
            return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
        out.append("\n")
        return "".join(out).encode()


class _Unusual(Exception):
    """A value _encode leaves to the json module."""


_string = json.encoder.encode_basestring  # the C one where available, as json.dumps uses


def _encode(value, newline: str, out: list[str]) -> None:
    """Append `value` as json.dumps(indent=2, ensure_ascii=False) writes it, `newline`
    being a newline and the indentation of the line `value` starts on."""
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        sep = "{" + inner
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            if type(item) is str:
                out.append(sep + _string(key) + ": " + _string(item))
            else:
                out.append(sep + _string(key) + ": ")
                _encode(item, inner, out)
            sep = "," + inner
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        for item in value:
            if type(item) is not str:
                break
        else:  # only strings, as SQL lines: the bulk of a plan
            out.append("[" + inner + ("," + inner).join(map(_string, value)) + newline + "]")
            return
        sep = "[" + inner
        for item in value:
            out.append(sep)
            sep = "," + inner
            _encode(item, inner, out)
        out.append(newline + "]")
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is float and value == value and value not in (float("inf"), float("-inf")):
        out.append(float.__repr__(value))
    else:
        raise _Unusual


def _interval(d) -> Interval | None:
    return _interval_of(d["start"], d["end"]) if d else None


@lru_cache(maxsize=1 << 12)
def _interval_of(start: str, end: str) -> Interval:
    """The tasks of a plan share a few intervals: each is parsed once."""
    return Interval(from_iso(start), from_iso(end))


def from_json(data: dict) -> Plan:
    if data.get("pipe_plan") != PLAN_FORMAT:
        raise UserError(
            f"unsupported plan format {data.get('pipe_plan')!r}",
            hint="recompile with 'pipe compile'",
        )
    tasks = []
    for d in data["tasks"]:
        tasks.append(
            Task(
                id=d["id"],
                model=d["model"],
                kind=d["kind"],
                interval=_interval(d["interval"]),
                upstream=tuple(d["upstream"]),
                fingerprint=d["fingerprint"],
                table=d["table"],
                temp=d.get("temp"),
                sql="\n".join(d.get("sql", [])),
                time_column=d.get("time_column"),
                checks=tuple(
                    CheckSpec(
                        c["name"],
                        c["type"],
                        c["severity"],
                        "\n".join(c["sql"]),
                        c.get("warn_if"),
                        c.get("error_if"),
                    )
                    for c in d.get("checks", [])
                ),
                pool=d.get("pool"),
                max_concurrency=d.get("max_concurrency"),
                retries=d.get("retries", 0),
                retry_delay=d.get("retry_delay", 1.0),
                timeout=d.get("timeout"),
                past=_interval(d.get("depends_on_past")),
                seed_path=d.get("seed_path"),
                column_types=tuple(sorted(d.get("column_types", {}).items())),
                poke_every=d.get("poke_every"),
                wait_timeout=d.get("wait_timeout"),
                lookback=d.get("lookback", False),
                on_schema_change=d.get("on_schema_change", "fail"),
                grants=tuple((p, tuple(r)) for p, r in sorted(d.get("grants", {}).items())),
            )
        )
    return Plan(
        data["project"], data["target"], data["dialect"], _interval(data["interval"]), tuple(tasks)
    )


def plan_path(root: Path, target: str, interval: Interval) -> Path:
    return root / "plans" / target / f"{interval.file_stem}.json"


def relpath(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def write(root: Path, plan: Plan) -> tuple[Path, bool]:
    """Write the plan file; return (path, whether its bytes changed)."""
    path, changed, _ = _write(root, plan)
    return path, changed


def _write(root: Path, plan: Plan) -> tuple[Path, bool, bytes]:
    path = plan_path(root, plan.target, plan.interval)
    data = dumps(plan)
    if path.is_file() and path.read_bytes() == data:
        return path, False, data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path, True, data


# ---------------------------------------------------------------- unchanged plans
#
# A compile of an unchanged project need not build its plans again: the plan of an
# interval is a function of the project's files, the target, the interval and pipe
# itself, all of which `plan_key` hashes (CompiledProject.key covers the first three
# but the interval). `write_recorded` keeps, per plan file, that key and the sha256 of the
# bytes written; `known_unchanged` trusts a record only while the file on disk still has
# those bytes.


def plan_key(cp: CompiledProject, interval: Interval) -> str | None:
    if not cp.key:
        return None
    return hashlib.sha256(
        f"{PLAN_FORMAT}\0{cp.key}\0{iso(interval.start)}\0{iso(interval.end)}".encode()
    ).hexdigest()


def known_unchanged(cp: CompiledProject, interval: Interval) -> int | None:
    """The number of tasks of `interval`'s plan when the file on disk is the one compiling
    would write now (recorded by `write_recorded` from the same inputs, bytes unchanged
    since); None when it must be built."""
    key = plan_key(cp, interval)
    if key is None:
        return None
    root = cp.raw.root
    path = plan_path(root, cp.target.name, interval)
    found = cp.state.records().get(relpath(root, path))
    if not found or found[0] != key:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return found[2] if hashlib.sha256(data).hexdigest() == found[1] else None


def write_recorded(cp: CompiledProject, plan: Plan) -> tuple[Path, bool]:
    """`write`, and record the plan's key and bytes for `known_unchanged`."""
    root = cp.raw.root
    path, changed, data = _write(root, plan)
    key = plan_key(cp, plan.interval)
    if key is not None and plan.target == cp.target.name:
        cp.state.record(
            relpath(root, path), (key, hashlib.sha256(data).hexdigest(), len(plan.tasks))
        )
    return path, changed


def stale_reason(root: Path, plan: Plan) -> str | None:
    """Why the plan file on disk does not match `plan` (freshly compiled), or None."""
    path = plan_path(root, plan.target, plan.interval)
    if not path.exists():
        return "missing"
    data = path.read_bytes() if path.is_file() else None
    if data != dumps(plan):
        load(path)  # a file pipe cannot read says so, rather than "stale"
        return "stale"
    return None


def load(path: Path) -> Plan:
    """The plan in `path`; a file that is not a readable plan is a PlanFileError saying
    exactly what is wrong with it (never "stale": it may be no plan at all)."""
    where = SourceLocation(_shown(path))
    fix = "delete it and run 'pipe compile' for its interval"
    if path.is_dir():
        raise PlanFileError("this is a directory, not a plan file", at=where, hint=fix)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlanFileError(f"cannot read this plan file: {exc.strerror}", at=where) from None
    if not data.strip():
        raise PlanFileError("this plan file is empty", at=where, hint=fix)
    try:
        doc = json.loads(data)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise PlanFileError(
            f"this plan file is not valid JSON: {getattr(exc, 'msg', exc)}",
            at=SourceLocation(where.path, line),
            hint=fix,
        ) from None
    if not isinstance(doc, dict) or "pipe_plan" not in doc:
        raise PlanFileError(
            "this is not a pipe plan (no 'pipe_plan' format key)", at=where, hint=fix
        )
    if doc["pipe_plan"] != PLAN_FORMAT:
        raise PlanFileError(
            f"this plan has format {doc['pipe_plan']!r}; this pipe reads format {PLAN_FORMAT}",
            at=where,
            hint="recompile it with this pipe: 'pipe compile' for its interval",
        )
    try:
        return from_json(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(
            f"this plan file is damaged: {type(exc).__name__} {exc}", at=where, hint=fix
        ) from None


def _shown(path: Path) -> str:
    """plans/<target>/<file> relative to the project, as messages name files."""
    parts = path.parts
    return "/".join(parts[parts.index("plans") :]) if "plans" in parts else str(path)
