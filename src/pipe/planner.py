"""CompiledProject x Interval -> Plan: expansion, upstream ids, SQL and check SQL per task.

Expansion (SPEC §3): an incremental model gets one task per interval of its grain inside
the run's interval; full and view models one task for the run's interval, after every
task of their upstream models; a seed one task (its id does not depend on the interval,
so an unchanged seed is loaded once); a source with `wait_for` a sensor task. Plans are
deterministic: the tasks follow the graph's order and every id list is sorted. This
module builds values only: no file is read or written here (planfile.py, workspace.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from . import checks as checkmod
from . import sql as sqlmod
from .compiler import CompiledProject, Node
from .errors import UserError, raise_collected
from .intervals import Interval, expand, floor, next_start, previous
from .modelsql import ModelSql
from .parallel import young_gc_only
from .plan import CheckSpec, Plan, Task, task_id, temp_name
from .templating import render_snippet


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
    with young_gc_only():
        return _build_plan(cp, run, models, full_interval or run, render)


def validate(cp: CompiledProject, run: Interval, models: Iterable[str] | None = None) -> None:
    """Build, and throw away, every SQL the plan of `run` would hold (each model task's
    and its checks', each sensor's) and raise their errors together, as `build_plan`
    would: what plain `pipe compile` validates, without making the plan's tasks."""
    wanted = set(models) if models is not None else None
    ex = _Expansion(cp, run, run, None, cp.sqls)
    errors: list[UserError] = []
    since: dict[str, datetime] = {}
    for name in cp.graph.order:
        node = cp.nodes[name]
        if (wanted is not None and name not in wanted) or node.kind == "seed":
            continue
        try:
            if node.kind == "source":
                _sensor_tasks(cp, node, run)
                continue
            if node.kind == "incremental":
                since[name] = _lookback_start(cp, node, run, since)
            checks = _failing_checks(cp, node)
            for iv in _intervals_of(ex, node, since.get(name)):
                if not ex.sqls.built(name, iv):
                    ex.sqls.sql(name, iv)
                if checks:
                    _checks_of(cp, node, temp_name(name, task_id(name, iv)), iv, checks)
        except UserError as exc:
            errors.append(exc)
    raise_collected(errors)


@dataclass(frozen=True)
class _Expansion:
    """What every model's expansion in one plan shares."""

    cp: CompiledProject
    run: Interval
    full: Interval  # the interval full and view models are built for
    render: Callable[[Node, Interval | None], bool] | None
    sqls: ModelSql  # each model's SQL for one interval


def _build_plan(
    cp: CompiledProject, run: Interval, models: Iterable[str] | None, full_iv: Interval, render
) -> Plan:
    wanted = set(models) if models is not None else None
    ex = _Expansion(cp, run, full_iv, render, cp.sqls)
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
            made = _tasks_of(ex, node, by_model, since.get(name))
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
    ex: _Expansion, node: Node, by_model: dict[str, list[Task]], since: datetime | None
) -> list[Task]:
    if node.kind == "source":
        return _sensor_tasks(ex.cp, node, ex.run)
    if node.kind == "seed":
        return [_seed_task(node)]
    return _model_tasks(ex, node, _intervals_of(ex, node, since), by_model)


def _intervals_of(ex: _Expansion, node: Node, since: datetime | None) -> list[Interval]:
    """The intervals of a model's tasks: an incremental model's from where its lookback
    starts (`since`) to the run's end, one per interval of its grain; else one."""
    if node.kind == "incremental":
        run = ex.run
        return list(expand(Interval(min(since or run.start, run.start), run.end), node.grain))
    return [ex.full]


def _sensor_tasks(cp: CompiledProject, node: Node, run: Interval) -> list[Task]:
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
    return [
        Task(
            id=task_id(node.name, run),
            model=node.name,
            kind="sensor",
            interval=run,
            upstream=(),
            fingerprint=node.fingerprint,
            table=node.name,
            sql=sql,
            poke_every=src.poke_every,
            wait_timeout=src.wait_timeout,
        )
    ]


def _seed_task(node: Node) -> Task:
    tid = task_id(node.name, None)
    return Task(
        id=tid,
        model=node.name,
        kind="seed",
        interval=None,
        upstream=(),
        fingerprint=node.fingerprint,
        table=node.name,
        temp=temp_name(node.name, tid),
        seed_path=node.seed.path,
        column_types=node.seed.config.column_types,
    )


def _model_tasks(
    ex: _Expansion, node: Node, intervals: list[Interval], by_model: dict[str, list[Task]]
) -> list[Task]:
    """One task per interval of a model, chained for depends_on_past and lookback."""
    c = node.config
    incremental = node.kind == "incremental"
    out = []
    prev_id = None
    looked_back: list[str] = []  # this model's lookback tasks so far
    for iv in intervals:
        tid = task_id(node.name, iv)
        upstream = set(_upstream_ids(node, iv, by_model))
        # its own late-data intervals; an interval before the run's that it has only
        # because an upstream looks back is rebuilt when that upstream's is
        own_lookback = iv.start < ex.run.start and c.lookback > 0
        if looked_back and not own_lookback:
            # the first interval of the run waits for the late-data rebuilds: once it is
            # published they are too, so a resume after a crash knows what is left
            upstream |= set(looked_back)
            looked_back = []
        past = None
        if c.depends_on_past and incremental:
            if prev_id is not None:
                upstream.add(prev_id)
            else:
                past = _past_of(ex.cp, node, iv)
        out.append(_model_task(ex, node, iv, tid, tuple(sorted(upstream)), past, own_lookback))
        prev_id = tid
        if own_lookback:
            looked_back.append(tid)
    return out


def _past_of(cp: CompiledProject, node: Node, iv: Interval) -> Interval | None:
    """The interval a depends_on_past model's first task waits for: none before `start`."""
    prior = previous(iv, node.grain)
    if cp.raw.config.start is None or prior.start >= cp.raw.config.start:
        return prior
    return None


def _model_task(
    ex: _Expansion,
    node: Node,
    iv: Interval,
    tid: str,
    upstream: tuple[str, ...],
    past: Interval | None,
    lookback: bool,
) -> Task:
    c = node.config
    incremental = node.kind == "incremental"
    temp = temp_name(node.name, tid)
    full = ex.render is None or ex.render(node, iv)
    return Task(
        id=tid,
        model=node.name,
        kind=node.kind,
        interval=iv,
        upstream=upstream,
        fingerprint=node.fingerprint,
        table=node.name,
        temp=temp,
        sql=ex.sqls.sql(node.name, iv) if full else "",
        time_column=c.time_column if incremental else None,
        checks=_checks_of(ex.cp, node, temp, iv) if full else (),
        pool=c.pool,
        max_concurrency=c.max_concurrency,
        retries=c.retries,
        retry_delay=c.retry_delay,
        timeout=c.timeout,
        past=past,
        lookback=lookback,
        on_schema_change=c.on_schema_change if incremental else "fail",
        grants=c.grants,
    )


def _failing_checks(cp: CompiledProject, node: Node) -> tuple:
    """A node's checks whose SQL may fail to build (checks.can_fail): what validation
    builds of them."""
    source, target = cp.raw.config.dialect, cp.target.dialect
    return tuple(ch for ch in node.config.checks if checkmod.can_fail(ch, source, target))


def _checks_of(
    cp: CompiledProject, node: Node, temp: str, iv: Interval, checks: tuple | None = None
) -> tuple[CheckSpec, ...]:
    where = cp.sidecar(node.name) or node.path or ""
    return tuple(
        CheckSpec(
            name=ch.name,
            type=ch.type,
            severity=ch.severity,
            sql=checkmod.check_sql(ch, temp, cp.raw.config.dialect, cp.target.dialect, where, iv),
            warn_if=ch.warn_if,
            error_if=ch.error_if,
        )
        for ch in (node.config.checks if checks is None else checks)
    )
