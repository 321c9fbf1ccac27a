"""Run a plan: lock, recover, clean, skip what is published, schedule, record.

    plan + adapter -> Scheduler(work = executor.execute) -> StateStore -> RunResult

The runner needs the plan, the target and the project directory (for seeds and .pipe/);
never Jinja or the models. It records every attempt, check result and published interval
in the state store, publishing in the warehouse first and recording after, so a crash in
between only means one idempotent republish on the next run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .adapters import Adapter, open_adapter
from .adapters.base import AdapterError, expand_env
from .config import Target
from .errors import UserError
from .executor import Deadline, TaskResult, execute_with_timeout
from .intervals import iso
from .plan import Task
from .scheduler import Caps, Listener, Outcome, Scheduler
from .state import LockHeld, ProjectLock, StateStore


@dataclass(frozen=True)
class TaskReport:
    task_id: str
    model: str
    kind: str
    label: str
    status: str  # success | skipped | failed | upstream_failed | not_run
    reason: str | None = None
    rows: int | None = None
    seconds: float | None = None
    attempts: int = 0
    warnings: tuple[str, ...] = ()
    checks: tuple = ()


@dataclass(frozen=True)
class RunResult:
    run_id: int
    status: str  # success | failed | interrupted
    reports: tuple[TaskReport, ...]
    seconds: float
    counts: dict = field(default_factory=dict)

    def failure_summary(self) -> str:
        from .console import run_summary

        return run_summary(self)


class LockBusy(UserError):
    """Another pipe process holds the project lock and --no-wait was given (exit 1)."""


class Reporter:
    """Console hooks; console.py implements them."""

    def waiting_for_lock(self, holder: str) -> None: ...

    def start(self, total: int, skipped: int, label: str) -> None: ...

    def skipped(self, task_ids: set[str]) -> None: ...

    def task_started(self, task: Task, attempt: int) -> None: ...

    def task_finished(self, task: Task, result: TaskResult, attempt: int, seconds: float,
                      final: bool) -> None: ...

    def task_settled(self, task: Task, outcome: Outcome) -> None: ...

    def stopping(self, running: int) -> None: ...

    def done(self) -> None: ...


class _Recorder(Listener):
    """Scheduler events -> state store (batched commits) and the reporter."""

    def __init__(self, state: StateStore, run_id: int, target: str, reporter: Reporter):
        self.state, self.run_id, self.target, self.reporter = state, run_id, target, reporter
        self.last_commit = time.monotonic()
        self.started_at: dict[str, float] = {}
        self.running = 0
        state.begin()

    def started(self, task, attempt, queued_at, started_at):
        self.running += 1
        self.state.attempt_started(self.run_id, task.id, attempt, task.key, queued_at,
                                   started_at)
        self.reporter.task_started(task, attempt)
        self._maybe_commit()

    def finished(self, task, attempt, result, started_at, finished_at, final):
        self.running -= 1
        self.state.attempt_finished(self.run_id, task.id, attempt, result.status, finished_at,
                                    result.rows, result.leaked, result.error)
        if result.checks:
            self.state.check_results(self.run_id, task.id, attempt, task.key, result.checks)
        if result.status == "success":
            self.state.mark_published(self.target, task.key, task.fingerprint, self.run_id,
                                      result.rows)
        self.reporter.task_finished(task, result, attempt, finished_at - started_at, final)
        self._maybe_commit()

    def settled(self, task, outcome):
        self.state.outcome(self.run_id, task.id, task.key, outcome.status, outcome.reason)
        self.reporter.task_settled(task, outcome)

    def _maybe_commit(self):
        if time.monotonic() - self.last_commit > 0.25:  # a long burst still commits
            self.idle()

    def idle(self) -> None:
        """Commit: the scheduler is about to wait for a worker, so the commit overlaps the
        workers' statements instead of delaying them."""
        self.state.commit()
        self.state.begin()
        self.last_commit = time.monotonic()

    def close(self):
        self.state.commit()


def clean_temp(adapter: Adapter, tasks: Sequence[Task]) -> list[str]:
    """Drop the temp relations of these tasks that an older run left behind.

    A task builds its temp table inside its own transaction, so on engines with
    transactional DDL none survives a crash; this sweeps what a non-transactional engine
    or an older pipe left. Only the names of these tasks: another project (or checkout)
    on the same database keeps its own."""
    mine = {t.temp for t in tasks if t.temp}
    dropped = []
    for name, kind in adapter.temp_relations():
        if name in mine:
            adapter.drop(name, kind)
            dropped.append(name)
    return dropped


def check_env(target: Target) -> None:
    for key, value in target.options:
        if isinstance(value, str):
            expand_env(value, f"target '{target.name}' {key}")


def run_tasks(root: Path, target: Target, tasks: Sequence[Task], *, kind: str, label: str,
              start: str, end: str, caps: Caps, force: bool = False, wait: bool = True,
              reporter: Reporter | None = None, priority=None, args: dict | None = None,
              handle_signals: bool = True, hydrate=None) -> RunResult:
    """Execute `tasks` (one plan, or a backfill's expansion) under the project lock.

    `hydrate(task)` turns a stub (a task without its SQL) into the full task just before
    it runs; a backfill loads it from the persisted plan file."""
    reporter = reporter or Reporter()
    check_env(target)
    lock = ProjectLock(root)
    try:
        lock.acquire(wait, reporter.waiting_for_lock, f"pipe {kind} {label}")
    except LockHeld as exc:
        raise LockBusy(f"another pipe process is running on this project ({exc.holder})",
                       hint="wait for it, or drop --no-wait to queue behind it") from None
    state = StateStore(root)
    adapter = None
    workers: dict[int, Adapter] = {}
    workers_lock = threading.Lock()
    try:
        state.recover()
        adapter = open_adapter(target, root)
        clean_temp(adapter, tasks)
        # a sensor's table is a source: pipe neither builds it nor creates its schema
        schemas = sorted({t.table.split(".", 1)[0] for t in tasks if t.kind != "sensor"})
        for schema in schemas:
            adapter.ensure_schema(schema)
        adapter.prefetch_catalog(schemas)

        # the warehouse's ledger is the truth (written in each publish's transaction); the
        # state store catches up with it here after a crash between the two
        adapter.ensure_ledger()
        published = adapter.read_ledger()
        if adapter.count("_pipe.ledger") > 2 * len(published) + 1000:
            adapter.compact_ledger()
        state.reconcile(target.name, published)
        done = set()
        if not force:
            done = {t.id for t in tasks if published.get(t.key) == t.fingerprint}
            done |= _idle_sensors(tasks, done)
        blocked = {}
        for t in tasks:
            if t.past is not None and t.id not in done:
                key = (t.model, iso(t.past.start), iso(t.past.end))
                if key not in published:
                    blocked[t.id] = (f"depends_on_past: {t.model} {t.past.label} is not "
                                     "published yet; run that interval first")

        run_id = state.start_run(kind, target.name, label, start, end, args or {}, len(tasks))
        recorder = _Recorder(state, run_id, target.name, reporter)
        state.outcomes(run_id, [(t.id, *t.key, "skipped", "already published")
                                for t in tasks if t.id in done])

        def work(task: Task, attempt: int) -> TaskResult:
            ident = threading.get_ident()
            conn = workers.get(ident)
            if conn is None:
                conn = adapter.worker()
                with workers_lock:
                    workers[ident] = conn
            return execute_with_timeout(conn, hydrate(task) if hydrate else task, root)

        def poke(task: Task) -> bool:
            # pokes run on the scheduler thread: one may not outlast the sensor's budget
            deadline = Deadline(adapter, task.wait_timeout)
            try:
                return bool(adapter.scalar(task.sql))
            finally:
                deadline.cancel()

        scheduler = Scheduler(tasks, caps, work, done=done, priority=priority, poke=poke,
                              listener=recorder, blocked=blocked)
        reporter.start(len(tasks), len(done), label)
        reporter.skipped(done)
        started = time.monotonic()
        restore = _install_sigint(scheduler, workers, reporter, recorder) if handle_signals \
            else None
        try:
            outcomes = scheduler.run()
        finally:
            if restore:
                restore()
            recorder.close()
        reports = _reports(tasks, outcomes)
        counts: dict[str, int] = {}
        for r in reports:
            counts[r.status] = counts.get(r.status, 0) + 1
        status = "interrupted" if scheduler.stopping else (
            "failed" if counts.get("failed") or counts.get("upstream_failed") else "success")
        result = RunResult(run_id, status, tuple(reports), time.monotonic() - started, counts)
        state.finish_run(run_id, status, counts)
        reporter.done()
        return result
    finally:
        for conn in workers.values():
            try:
                conn.close()
            except AdapterError:
                pass
        if adapter is not None:
            try:
                clean_temp(adapter, tasks)
            except AdapterError:
                pass
            adapter.close()
        state.close()
        lock.release()


def _idle_sensors(tasks: Sequence[Task], done: set[str]) -> set[str]:
    """Sensors whose every downstream task is already published: nothing to wait for."""
    waiting: dict[str, list[str]] = {}
    for t in tasks:
        for u in t.upstream:
            waiting.setdefault(u, []).append(t.id)
    return {t.id for t in tasks if t.kind == "sensor" and t.id not in done
            and all(d in done for d in waiting.get(t.id, ()))}


def _install_sigint(scheduler: Scheduler, workers: dict, reporter: Reporter, recorder):
    if threading.current_thread() is not threading.main_thread():
        return None
    presses = []

    def handler(signum, frame):
        presses.append(signum)
        if len(presses) == 1:
            scheduler.stop()
            reporter.stopping(recorder.running)
        else:  # second Ctrl-C: interrupt the running statements; they roll back
            for conn in list(workers.values()):
                conn.interrupt()

    # SIGTERM (what an orchestrator or `kill` sends before SIGKILL) stops the same way
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, h) for sig, h in previous.items()]


def _reports(tasks: Sequence[Task], outcomes: dict[str, Outcome]) -> list[TaskReport]:
    out = []
    for t in tasks:
        o = outcomes[t.id]
        r = o.result
        out.append(TaskReport(
            t.id, t.model, t.kind, t.label, o.status,
            o.reason or (getattr(r, "error", None) if o.status == "failed" else None),
            getattr(r, "rows", None), None, o.attempts, getattr(r, "warnings", ()),
            getattr(r, "checks", ())))
    return out
