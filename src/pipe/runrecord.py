"""Run records: one run or backfill as the state store remembers it, with the figures that
explain its wall time.

For every task attempt: when it was queued (ready: its upstream done; for a retry, when its
backoff ended), started and finished, its queue wait (started - queued) and execution time
(finished - started), rows, checks and error. For the run: the critical path, the chain of
tasks that set its wall time, found by walking back from the task that finished last to the
upstream task that finished last before it was ready, and so on; the failed-dependency count
(tasks not run because an upstream failed); late rows (the change in row count of each
interval of an incremental model this run published again, against its previous publish,
as ledger.late_rows counts them for `pipe status`); and for a backfill its
progress by interval (`backfill_progress`, which `pipe status` shows too).

The edges come from the project as it is now (task ids are a hash of model and interval, so
they hold across edits); a task the project no longer has simply starts its own chain. The
walk (`chain`) is the one the docs site draws a run's critical path with.
Reads `.pipe/state.db` only; prints nothing. Every value is frozen; `as_json()` is what
`pipe status --run N --json` prints, and console.run_record_text what people read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from .errors import UserError
from .staterows import StoredRun


@dataclass(frozen=True)
class CheckRecord:
    name: str
    severity: str
    status: str  # pass | warn | error
    failures: int

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AttemptRecord:
    attempt: int
    status: str
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    rows: int | None
    error: str | None
    checks: tuple[CheckRecord, ...] = ()

    @property
    def queue_wait(self) -> float | None:
        if self.queued_at is None or self.started_at is None:
            return None
        return max(0.0, self.started_at - self.queued_at)

    @property
    def execution(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def as_json(self) -> dict:
        return {
            "attempt": self.attempt,
            "status": self.status,
            "queued_at": iso_ms(self.queued_at),
            "started_at": iso_ms(self.started_at),
            "finished_at": iso_ms(self.finished_at),
            "queue_wait": secs(self.queue_wait),
            "execution": secs(self.execution),
            "rows": self.rows,
            "error": self.error,
            "checks": [c.as_json() for c in self.checks],
        }


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    model: str
    start: str  # ISO, "" for a task without interval (a seed)
    end: str
    status: str  # success | skipped | failed | upstream_failed | not_run | blocked
    reason: str | None
    attempts: tuple[AttemptRecord, ...] = ()

    @property
    def ready_at(self) -> float | None:
        return self.attempts[0].queued_at if self.attempts else None

    @property
    def finished_at(self) -> float | None:
        ends = [a.finished_at for a in self.attempts if a.finished_at is not None]
        return max(ends) if ends else None

    def as_json(self) -> dict:
        return {
            "task_id": self.task_id,
            "model": self.model,
            "interval": [self.start, self.end],
            "status": self.status,
            "reason": self.reason,
            "attempts": [a.as_json() for a in self.attempts],
        }


@dataclass(frozen=True)
class RunRecord:
    run_id: int
    kind: str
    label: str
    status: str
    started_at: float
    finished_at: float | None
    tasks: tuple[TaskRecord, ...]
    critical_path: tuple[str, ...]  # task ids, first to last
    failed_dependencies: int
    late_rows: tuple[tuple[str, str, str, int], ...]  # (model, start, end, change)
    backfill: BackfillProgress | None = None

    def task(self, task_id: str) -> TaskRecord:
        return next(t for t in self.tasks if t.task_id == task_id)

    @property
    def critical_seconds(self) -> float | None:
        """From the first task of the critical path being ready to the last one finishing."""
        if not self.critical_path:
            return None
        first, last = self.task(self.critical_path[0]), self.task(self.critical_path[-1])
        begin = first.ready_at if first.ready_at is not None else first.attempts[0].started_at
        return last.finished_at - begin

    @property
    def seconds(self) -> float | None:
        return self.finished_at - self.started_at if self.finished_at else None

    @property
    def late_total(self) -> int:
        return sum(n for *_, n in self.late_rows)

    def as_json(self) -> dict:
        """What `pipe status --run N --json` prints."""
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "label": self.label,
            "status": self.status,
            "started_at": iso_ms(self.started_at),
            "finished_at": iso_ms(self.finished_at),
            "seconds": secs(self.seconds),
            "critical_path": {
                "seconds": secs(self.critical_seconds),
                "tasks": [
                    {
                        "task_id": t.task_id,
                        "model": t.model,
                        "interval": [t.start, t.end],
                        "ready_at": iso_ms(t.ready_at),
                        "finished_at": iso_ms(t.finished_at),
                    }
                    for t in map(self.task, self.critical_path)
                ],
            },
            "failed_dependencies": self.failed_dependencies,
            "late_rows": {
                "total": self.late_total,
                "intervals": [
                    {"model": m, "start": s, "end": e, "rows": n} for m, s, e, n in self.late_rows
                ],
            },
            "backfill": self.backfill.as_json() if self.backfill else None,
            "tasks": [t.as_json() for t in self.tasks],
        }


@dataclass(frozen=True)
class RunRow:
    """A run as `pipe status` lists it and the docs site heads it."""

    run_id: int
    kind: str
    label: str
    status: str
    started_at: str  # '2026-06-01 04:00:00Z'
    seconds: float | None
    tasks: int
    counts: tuple[tuple[str, int], ...] | None  # (status, tasks) by status, once finished
    args: str | None  # the command's arguments as stored (JSON text)
    started: float  # seconds since the epoch

    def as_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "label": self.label,
            "status": self.status,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "tasks": self.tasks,
            "counts": self.counts_json(),
        }

    def counts_json(self) -> dict[str, int] | None:
        return None if self.counts is None else dict(self.counts)


def run_row(run: StoredRun) -> RunRow:
    """A run of the state store as `pipe status` lists it."""
    started, finished = run.started_at, run.finished_at
    return RunRow(
        run.run_id,
        run.kind,
        run.label,
        run.status,
        stamp(started),
        round(finished - started, 3) if finished else None,
        run.total,
        tuple(sorted(json.loads(run.summary).items())) if run.summary else None,
        run.args,
        started,
    )


@dataclass(frozen=True)
class BackfillProgress:
    """Per schedule interval of a backfill's span: how many of its tasks are published."""

    span: str
    tasks_done: int
    tasks_total: int
    intervals_done: int
    intervals_total: int
    intervals_partial: tuple[str, ...]
    intervals_pending: tuple[str, ...]

    def as_json(self) -> dict:
        return asdict(self)  # tuples are JSON arrays


def backfill_progress(cp, span, select: str | None, published: Mapping) -> BackfillProgress:
    """How far the backfill of `span` (over the models `select` picks) is, from the
    published (model, start, end) -> fingerprint map."""
    from .backfill import expand_stubs, inside_one
    from .graph import select as graph_select

    models = None
    if select:
        models = graph_select(cp.graph, select, {n: v.config.tags for n, v in cp.nodes.items()})
    per: dict[str, list[int]] = {}
    done_tasks = 0
    stubs = expand_stubs(cp, span, models).tasks
    for t in stubs:
        outer = inside_one(cp, t.interval)
        ok = published.get(t.key) == t.fingerprint
        done_tasks += ok
        if outer is not None:
            cell = per.setdefault(outer.label, [0, 0])
            cell[0] += ok
            cell[1] += 1
    complete = sorted(label for label, (d, n) in per.items() if d == n)
    return BackfillProgress(
        span.label,
        done_tasks,
        len(stubs),
        len(complete),
        len(per),
        tuple(sorted(label for label, (d, n) in per.items() if 0 < d < n)),
        tuple(sorted(label for label, (d, n) in per.items() if d == 0)),
    )


def chain(
    finished: Mapping[str, float],
    upstream: Mapping[str, Iterable[str]],
    queued: Mapping[str, float] | None = None,
    gap: float = 0.0,
) -> tuple[str, ...]:
    """The chain of task ids that set a run's wall time, first to last: from the task that
    finished last (`finished`: task id -> when), back through the upstream task that
    finished last (each task waits for all of its upstream, so the last of them is what
    held it up; ties broken by task id), to a task with no upstream that ran.

    With `queued` (task id -> when it was ready), a task whose edges `upstream` does not
    know steps instead to the task that finished last within `gap` seconds of its being
    queued: what it most likely waited for."""
    if not finished:
        return ()
    by_end = sorted(finished, key=lambda t: (finished[t], t))
    current = by_end[-1]
    path = [current]
    seen = {current}
    while True:
        if queued is None or current in upstream:
            ups = [u for u in upstream.get(current, ()) if u in finished and u not in seen]
            current = max(ups, key=lambda u: (finished[u], u), default=None)
        else:
            q = queued[current]
            near = [t for t in by_end if t not in seen and q - gap <= finished[t] <= q + gap]
            current = near[-1] if near else None
        if current is None:
            return tuple(reversed(path))
        path.append(current)
        seen.add(current)


def critical_path(
    tasks: tuple[TaskRecord, ...], upstream: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """`chain` over the tasks of a record that finished."""
    return chain({t.task_id: t.finished_at for t in tasks if t.finished_at is not None}, upstream)


def collect(cp, run_id: int) -> RunRecord:
    """The record of run `run_id` of this project's target; UserError if there is none."""
    from .state import StateStore

    state = StateStore(cp.raw.root, readonly=True)
    try:
        run = _stored_run(state, cp.target.name, run_id)
        tasks = _tasks(state, run_id)
        earlier = state.earlier_rows(run_id)
        published = state.published_fingerprints(cp.target.name)
    finally:
        state.close()
    span = span_of(run.label)
    backfill = None
    if run.kind == "backfill" and span is not None:
        select = json.loads(run.args or "{}").get("select")
        backfill = backfill_progress(cp, span, select, published)
    return RunRecord(
        run_id,
        run.kind,
        run.label,
        run.status,
        run.started_at,
        run.finished_at,
        tasks,
        critical_path(tasks, edges(cp, span)),
        sum(1 for t in tasks if t.status == "upstream_failed"),
        _late_rows(cp, tasks, earlier),
        backfill,
    )


def _stored_run(state, target: str, run_id: int) -> StoredRun:
    run = state.run(run_id)
    if run is not None and run.target == target:
        return run
    last = state.runs(1, target)
    raise UserError(
        f"no run {run_id} on target '{target}'",
        hint=(
            f"runs are numbered 1 to {last[0].run_id}; 'pipe status' lists the recent ones"
            if last
            else "nothing has run on this target yet"
        ),
    )


def _tasks(state, run_id: int) -> tuple[TaskRecord, ...]:
    """Every task of the run with its attempts, by model and interval; a task attempted
    but never settled (the run crashed) is `not_run`."""
    checks: dict[tuple[str, int], list[CheckRecord]] = {}
    for c in state.checks_of(run_id):
        checks.setdefault((c.task_id, c.attempt), []).append(
            CheckRecord(c.check_name, c.severity, c.status, c.failures)
        )
    attempts: dict[str, list[AttemptRecord]] = {}
    keys: dict[str, tuple[str, str, str]] = {}
    for a in state.attempts(run_id):
        keys[a.task_id] = (a.model, a.interval_start, a.interval_end)
        attempts.setdefault(a.task_id, []).append(
            AttemptRecord(
                a.attempt,
                a.status,
                a.queued_at,
                a.started_at,
                a.finished_at,
                a.rows,
                a.error,
                tuple(checks.get((a.task_id, a.attempt), ())),
            )
        )

    def tried(tid: str) -> tuple[AttemptRecord, ...]:
        return tuple(sorted(attempts.get(tid, ()), key=lambda a: a.attempt))

    tasks = []
    for o in state.task_outcomes(run_id):
        keys.pop(o.task_id, None)
        tasks.append(
            TaskRecord(
                o.task_id,
                o.model,
                o.interval_start,
                o.interval_end,
                o.status,
                o.reason,
                tried(o.task_id),
            )
        )
    for tid, (model, s, e) in keys.items():  # attempted, never settled: a crash
        tasks.append(TaskRecord(tid, model, s, e, "not_run", "the run ended first", tried(tid)))
    tasks.sort(key=lambda t: (t.model, t.start, t.task_id))
    return tuple(tasks)


def _late_rows(cp, tasks, earlier: Mapping) -> tuple[tuple[str, str, str, int], ...]:
    """The row-count change of every incremental interval the run published again."""
    late = []
    for t in tasks:
        done = [a for a in t.attempts if a.status == "success" and a.rows is not None]
        before = earlier.get((t.model, t.start, t.end))
        node = cp.nodes.get(t.model)
        incremental = node is not None and node.kind == "incremental"
        if incremental and done and before is not None and done[-1].rows != before:
            late.append((t.model, t.start, t.end, done[-1].rows - before))
    return tuple(late)


def span_of(label: str):
    """The Interval a run's label names, or None when it names none."""
    from .intervals import parse_label

    try:
        return parse_label(label)
    except UserError:
        return None


def edges(cp, span) -> dict[str, tuple[str, ...]]:
    """Task id -> upstream task ids, from the project expanded over the run's span (no SQL
    rendered; task ids hash model and interval, so they hold across edits)."""
    if span is None:
        return {}
    from .planner import build_plan

    try:
        plan = build_plan(cp, span, None, full_interval=span, render=lambda node, iv: False)
    except UserError:
        return {}
    return {t.id: t.upstream for t in plan.tasks}


# ---------------------------------------------------------------- times as JSON shows them


def stamp(ts: float) -> str:
    """A run's start as `pipe status` and the site list it: '2026-06-01 04:00:00Z'."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def iso_ms(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def secs(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
