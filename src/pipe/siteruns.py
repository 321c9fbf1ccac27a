"""The state store as the docs site shows it: runs with their attempts and critical path,
and (from sitegrid.py) the backfill grid, freshness per model and the latest check results.

Read-only: the store is opened with `StateStore(readonly=True)` and only SELECTed from.
Times in the output are seconds since the run started (floats rounded to the millisecond)
or ISO strings, so the page does no date arithmetic of its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from . import runrecord
from .compiler import CompiledProject
from .intervals import Interval
from .runrecord import RunRow, run_row
from .sitegrid import Grid, LatestChecks, ModelFreshness, ledger_views
from .state import Attempt, Outcome, StateStore, StoredCheck

RUNS = 30  # newest runs on the site
ATTEMPTS_PER_RUN = 5000  # a longer run shows its failures, its critical path and the first ones
EXPAND_LIMIT = 50_000  # tasks: a run's edges come from expanding the project over its label
CHAIN_GAP = 0.05  # s: a task queued this soon after another finished was waiting for it


@dataclass(frozen=True)
class SiteAttempt:
    n: int
    status: str
    queued: float | None  # seconds since the run started
    start: float | None
    end: float | None
    rows: int | None
    error: str | None

    def as_json(self) -> dict:
        return {
            "n": self.n,
            "status": self.status,
            "queued": self.queued,
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "error": self.error,
        }


@dataclass(frozen=True)
class SiteCheck:
    attempt: int
    name: str
    severity: str
    status: str
    failures: int
    sample: list | None

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SiteTask:
    """A task of a run that started, with its attempts and their check results."""

    id: str
    model: str
    interval: str  # its label, "-" for none
    status: str
    reason: str | None
    critical: bool  # on the run's critical path
    attempts: tuple[SiteAttempt, ...]
    checks: tuple[SiteCheck, ...] = ()

    def as_json(self) -> dict:
        out = {
            "id": self.id,
            "model": self.model,
            "interval": self.interval,
            "status": self.status,
            "reason": self.reason,
            "critical": self.critical,
            "attempts": [a.as_json() for a in self.attempts],
        }
        if self.checks:
            out["checks"] = [c.as_json() for c in self.checks]
        return out


@dataclass(frozen=True)
class Unstarted:
    """A task of a run that never started: upstream failed, blocked."""

    id: str
    model: str
    interval: str
    status: str
    reason: str | None

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SiteRun:
    run: RunRow
    tasks: tuple[SiteTask, ...]  # the tasks shown (at most ATTEMPTS_PER_RUN attempts)
    not_started: tuple[Unstarted, ...]
    hidden: int  # tasks not shown
    critical_path: tuple[str, ...]

    def as_json(self) -> dict:
        r = self.run
        return {
            "id": r.run_id,
            "kind": r.kind,
            "label": r.label,
            "status": r.status,
            "started_at": r.started_at,
            "seconds": r.seconds,
            "total": r.tasks,
            "counts": r.counts_json(),
            "args": json.loads(r.args) if r.args else {},
            "tasks": [t.as_json() for t in self.tasks],
            "not_started": [t.as_json() for t in self.not_started],
            "hidden": self.hidden,
            "critical_path": list(self.critical_path),
        }


@dataclass(frozen=True)
class SiteRuns:
    """What the site shows of the state store."""

    runs: tuple[SiteRun, ...]  # newest first
    grid: Grid  # the backfill grid: model x schedule interval
    freshness: tuple[ModelFreshness, ...]
    checks: LatestChecks  # (model, ((check, its latest result), ...)), by name

    def as_json(self) -> dict:
        return {
            "runs": [r.as_json() for r in self.runs],
            "grid": self.grid.as_json(),
            "freshness": [f.as_json() for f in self.freshness],
            "checks": {m: {name: c.as_json() for name, c in found} for m, found in self.checks},
        }


def runs_data(
    cp: CompiledProject, store: StateStore, now: datetime, upstream_ids: dict[str, list[str]]
) -> SiteRuns:
    target = cp.target.name
    runs = [
        _run(store, run, {**upstream_ids, **_edges(cp, run.label, run.tasks)})
        for run in map(run_row, store.runs(RUNS, target))
    ]
    return SiteRuns(tuple(runs), *ledger_views(cp, store, now))


# ---------------------------------------------------------------- runs


def _t(value: float | None, zero: float) -> float | None:
    return None if value is None else round(value - zero, 3)


def _run(store: StateStore, run: RunRow, upstream_ids: dict) -> SiteRun:
    attempts = store.attempts(run.run_id)
    outcomes = store.task_outcomes(run.run_id)
    path = critical_path(attempts, upstream_ids)
    checks = store.checks_of(run.run_id)
    tasks = _tasks(_shown(attempts, set(path)), outcomes, checks, run.started, path)
    shown = {t.id for t in tasks}
    return SiteRun(
        run,
        tasks,
        tuple(
            Unstarted(
                o.task_id, o.model, _label(o.interval_start, o.interval_end), o.status, o.reason
            )
            for o in outcomes
            if o.task_id not in shown and o.status != "skipped"
        ),
        len({a.task_id for a in attempts}) - len(tasks),
        tuple(path),
    )


def _shown(attempts: list, on_path: set[str]) -> list:
    """The attempts the page lists: all of them, or for a longer run its failures, its
    critical path and the first others up to ATTEMPTS_PER_RUN."""
    if len(attempts) <= ATTEMPTS_PER_RUN:
        return attempts
    keep = {a.task_id for a in attempts if a.status != "success"} | on_path
    shown = [a for a in attempts if a.task_id in keep]
    shown += [a for a in attempts if a.task_id not in keep][: ATTEMPTS_PER_RUN - len(shown)]
    shown.sort(key=lambda a: (a.started_at or 0, a.task_id, a.attempt))
    return shown


def _tasks(
    shown: list[Attempt],
    outcomes: list[Outcome],
    checks: list[StoredCheck],
    started: float,
    path: list[str],
) -> tuple[SiteTask, ...]:
    """The tasks of the attempts shown, in the order they first started, with times in
    seconds since the run started."""
    settled = {o.task_id: (o.status, o.reason) for o in outcomes}
    labels = {o.task_id: _label(o.interval_start, o.interval_end) for o in outcomes}
    first: dict[str, Attempt] = {}
    tried: dict[str, list[SiteAttempt]] = {}
    for a in shown:
        first.setdefault(a.task_id, a)
        tried.setdefault(a.task_id, []).append(
            SiteAttempt(
                a.attempt,
                a.status,
                _t(a.queued_at, started),
                _t(a.started_at, started),
                _t(a.finished_at, started),
                a.rows,
                a.error,
            )
        )
    checked: dict[str, list[SiteCheck]] = {}
    for c in checks:
        if c.task_id in first:
            sample = json.loads(c.sample) if c.sample else None
            checked.setdefault(c.task_id, []).append(
                SiteCheck(c.attempt, c.check_name, c.severity, c.status, c.failures, sample)
            )
    on_path = set(path)
    return tuple(
        SiteTask(
            tid,
            a.model,
            labels.get(tid) or _label(a.interval_start, a.interval_end),
            settled.get(tid, (a.status, None))[0],
            settled.get(tid, (None, None))[1],
            tid in on_path,
            tuple(tried[tid]),
            tuple(checked.get(tid, ())),
        )
        for tid, a in first.items()
    )


def _edges(cp: CompiledProject, label: str, total: int) -> dict[str, tuple[str, ...]]:
    """The run's edges as `pipe status --run` finds them; {} for a run too large to expand
    cheaply (then the plan files' edges and the queue-time rule serve)."""
    return {} if total > EXPAND_LIMIT else runrecord.edges(cp, runrecord.span_of(label))


def _label(start: str, end: str) -> str:
    if not start:
        return "-"
    return Interval(datetime.fromisoformat(start), datetime.fromisoformat(end)).label


def critical_path(attempts, upstream_ids: dict[str, list[str]]) -> list[str]:
    """Task ids of the chain that decided when the run ended, first task first
    (`runrecord.chain`): a task whose edges are unknown steps to the task that finished
    just before it was queued, within CHAIN_GAP. Every attempt of a task counts."""
    queued: dict[str, float] = {}
    finished: dict[str, float] = {}
    for a in attempts:
        if a.finished_at is None:
            continue
        q = a.queued_at if a.queued_at is not None else a.started_at
        queued[a.task_id] = min(queued.get(a.task_id, q), q)
        finished[a.task_id] = max(finished.get(a.task_id, a.finished_at), a.finished_at)
    return list(runrecord.chain(finished, upstream_ids, queued, CHAIN_GAP))
