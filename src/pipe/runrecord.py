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
progress by interval.

The edges come from the project as it is now (task ids are a hash of model and interval, so
they hold across edits); a task the project no longer has simply starts its own chain.
Reads `.pipe/state.db` only; prints nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import UserError


@dataclass(frozen=True)
class CheckRecord:
    name: str
    severity: str
    status: str  # pass | warn | error
    failures: int


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
    backfill: dict | None = None

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


def critical_path(
    tasks: tuple[TaskRecord, ...], upstream: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """The chain that set the run's wall time: from the task that finished last, back
    through the upstream task that finished last (each task waits for all of its upstream,
    so the last of them is what held it up), to a task with no upstream run here."""
    ran = {t.task_id: t for t in tasks if t.finished_at is not None}
    if not ran:
        return ()
    current = max(ran.values(), key=lambda t: (t.finished_at, t.task_id))
    chain = [current.task_id]
    seen = {current.task_id}
    while True:
        before = [ran[u] for u in upstream.get(current.task_id, ()) if u in ran and u not in seen]
        if not before:
            break
        current = max(before, key=lambda t: (t.finished_at, t.task_id))
        chain.append(current.task_id)
        seen.add(current.task_id)
    return tuple(reversed(chain))


def collect(cp, run_id: int) -> RunRecord:
    """The record of run `run_id` of this project's target; UserError if there is none."""
    from .state import StateStore

    state = StateStore(cp.raw.root, readonly=True)
    try:
        row = state.run(run_id)
        if row is None or row[2] != cp.target.name:
            last = state.runs(1, cp.target.name)
            raise UserError(
                f"no run {run_id} on target '{cp.target.name}'",
                hint=(
                    f"runs are numbered 1 to {last[0][0]}; 'pipe status' lists the recent ones"
                    if last
                    else "nothing has run on this target yet"
                ),
            )
        _, kind, _target, label, status, started, finished, *_rest, args = row
        checks: dict[tuple[str, int], list[CheckRecord]] = {}
        for tid, attempt, name, severity, st, failures in state.checks_of(run_id):
            checks.setdefault((tid, attempt), []).append(CheckRecord(name, severity, st, failures))
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
        tasks = []
        for tid, model, s, e, st, reason in state.task_outcomes(run_id):
            keys.pop(tid, None)
            tasks.append(
                TaskRecord(
                    tid,
                    model,
                    s,
                    e,
                    st,
                    reason,
                    tuple(sorted(attempts.get(tid, ()), key=lambda a: a.attempt)),
                )
            )
        for tid, (model, s, e) in keys.items():  # attempted, never settled: a crash
            tasks.append(
                TaskRecord(
                    tid,
                    model,
                    s,
                    e,
                    "not_run",
                    "the run ended first",
                    tuple(sorted(attempts[tid], key=lambda a: a.attempt)),
                )
            )
        tasks.sort(key=lambda t: (t.model, t.start, t.task_id))
        earlier = state.earlier_rows(run_id)
        published = state.published_fingerprints(cp.target.name)
    finally:
        state.close()
    late = []
    for t in tasks:
        done = [a for a in t.attempts if a.status == "success" and a.rows is not None]
        before = earlier.get((t.model, t.start, t.end))
        node = cp.nodes.get(t.model)
        incremental = node is not None and node.kind == "incremental"
        if incremental and done and before is not None and done[-1].rows != before:
            late.append((t.model, t.start, t.end, done[-1].rows - before))
    span = _span(cp, label)
    backfill = None
    if kind == "backfill" and span is not None:
        import json

        from .status import backfill_progress

        backfill = backfill_progress(cp, span, json.loads(args or "{}").get("select"), published)
    record_tasks = tuple(tasks)
    return RunRecord(
        run_id,
        kind,
        label,
        status,
        started,
        finished,
        record_tasks,
        critical_path(record_tasks, _edges(cp, span)),
        sum(1 for t in tasks if t.status == "upstream_failed"),
        tuple(late),
        backfill,
    )


def _span(cp, label: str):
    from .intervals import parse_label

    try:
        return parse_label(label)
    except UserError:
        return None


def _edges(cp, span) -> dict[str, tuple[str, ...]]:
    """Task id -> upstream task ids, from the project expanded over the run's span (no SQL
    rendered)."""
    if span is None:
        return {}
    from .planner import build_plan

    try:
        plan = build_plan(cp, span, None, full_interval=span, render=lambda node, iv: False)
    except UserError:
        return {}
    return {t.id: t.upstream for t in plan.tasks}


# ---------------------------------------------------------------- JSON


def _time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _secs(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def as_json(record: RunRecord) -> dict:
    """What `pipe status --run N --json` prints."""
    path = [record.task(tid) for tid in record.critical_path]
    return {
        "run_id": record.run_id,
        "kind": record.kind,
        "label": record.label,
        "status": record.status,
        "started_at": _time(record.started_at),
        "finished_at": _time(record.finished_at),
        "seconds": _secs(record.finished_at - record.started_at if record.finished_at else None),
        "critical_path": {
            "seconds": _secs(record.critical_seconds),
            "tasks": [
                {
                    "task_id": t.task_id,
                    "model": t.model,
                    "interval": [t.start, t.end],
                    "ready_at": _time(t.ready_at),
                    "finished_at": _time(t.finished_at),
                }
                for t in path
            ],
        },
        "failed_dependencies": record.failed_dependencies,
        "late_rows": {
            "total": sum(n for *_, n in record.late_rows),
            "intervals": [
                {"model": m, "start": s, "end": e, "rows": n} for m, s, e, n in record.late_rows
            ],
        },
        "backfill": record.backfill,
        "tasks": [
            {
                "task_id": t.task_id,
                "model": t.model,
                "interval": [t.start, t.end],
                "status": t.status,
                "reason": t.reason,
                "attempts": [
                    {
                        "attempt": a.attempt,
                        "status": a.status,
                        "queued_at": _time(a.queued_at),
                        "started_at": _time(a.started_at),
                        "finished_at": _time(a.finished_at),
                        "queue_wait": _secs(a.queue_wait),
                        "execution": _secs(a.execution),
                        "rows": a.rows,
                        "error": a.error,
                        "checks": [
                            {
                                "name": c.name,
                                "severity": c.severity,
                                "status": c.status,
                                "failures": c.failures,
                            }
                            for c in a.checks
                        ],
                    }
                    for a in t.attempts
                ],
            }
            for t in record.tasks
        ],
    }
