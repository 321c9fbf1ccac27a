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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .adapters import Adapter
from .adapters.errors import AdapterError, Interrupted
from .config import Target
from .errors import LockBusy, UpstreamMissing, UserError
from .executor import (
    CheckResult,
    Creating,
    Deadline,
    TaskResult,
    execute_with_timeout,
    first_line,
)
from .groupcommit import GROUP_SECONDS, IDLE_SECONDS, Group
from .plan import Task
from .recorder import Recorder, Reporter, Stamper
from .runstart import Opening, Start, check_env, clean_temp, prepare, refused
from .scheduler import Caps, Grouping, Outcome, Poke, Scheduler
from .state import StateStore

# the names commands and tests import from here
__all__ = [
    "Caps",
    "LockBusy",
    "Reporter",
    "RunOptions",
    "RunResult",
    "TaskReport",
    "UpstreamMissing",
    "check_env",
    "clean_temp",
    "run_tasks",
    "utcnow",
]


@dataclass(frozen=True)
class TaskReport:
    """A task's outcome in a run's result."""

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
    checks: tuple[CheckResult, ...] = ()

    def as_json(self) -> dict:
        return {
            "id": self.task_id,
            "model": self.model,
            "interval": self.label,
            "status": self.status,
            "reason": self.reason,
            "rows": self.rows,
            "attempts": self.attempts,
            "warnings": list(self.warnings),
            "checks": [
                {"name": c.name, "status": c.status, "failures": c.failures} for c in self.checks
            ],
        }


@dataclass(frozen=True)
class RunResult:
    run_id: int
    status: str  # success | failed | interrupted
    reports: tuple[TaskReport, ...]
    seconds: float
    counts: tuple[tuple[str, int], ...] = ()  # (status, tasks), in the order first reported

    def failure_summary(self) -> str:
        from .console import run_summary

        return run_summary(self)

    def as_json(self) -> dict:
        """What `pipe run --json` and `pipe backfill --json` print."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "counts": dict(self.counts),
            "seconds": round(self.seconds, 3),
            "tasks": [r.as_json() for r in self.reports],
        }


@dataclass(frozen=True)
class RunOptions:
    """How to run a set of tasks: what the command was (`kind`, `label`, its span and
    `args`, recorded with the run) and how (caps, force, waiting for the lock).

    `context` holds every task of the expansion by id (default: the tasks run): a selected
    task's upstream outside the selection must be published already. Tasks whose interval
    ends after `execution_time` (default: now) are recorded as partial. `hydrate(task)`
    turns a stub (a task without its SQL) into the full task just before it runs; a
    backfill loads it from the persisted plan file."""

    kind: str  # run | backfill
    label: str
    start: str
    end: str
    caps: Caps
    force: bool = False
    wait: bool = True
    priority: Callable[[Task], object] | None = None
    args: tuple[tuple[str, object], ...] = ()  # (option, value), recorded with the run
    handle_signals: bool = True
    hydrate: Callable[[Task], Task] | None = None
    context: Mapping[str, Task] | None = None
    execution_time: datetime | None = None


def run_tasks(
    root: Path,
    target: Target,
    tasks: Sequence[Task],
    options: RunOptions,
    reporter: Reporter | None = None,
    opening: Opening | None = None,
) -> RunResult:
    """Execute `tasks` (one plan, or a backfill's expansion) under the project lock:
    `opening`'s when the caller took it already (and checked the target's environment),
    else taken here."""
    reporter = reporter or Reporter()
    if opening is None:
        check_env(target)
        what = f"pipe {options.kind} {options.label}"
        opening = Opening.of(root, target, what, options.wait, reporter.waiting_for_lock)
    try:
        state = StateStore(root)
        if state.moved_aside is not None:
            reporter.note(
                f".pipe/state.db was damaged: kept as .pipe/{state.moved_aside.name}; "
                "what is published is rebuilt from the warehouse's ledger, the run "
                "history before it is lost"
            )
        session = _Session(root, target, tasks, options, reporter, state, opening)
        try:
            return session.run()
        finally:
            session.close()
            state.close()
    finally:
        opening.close()


def _result(run_id: int, tasks, outcomes, stopped: bool, seconds: float) -> RunResult:
    """The run's result from its tasks' outcomes: interrupted, failed or success."""
    reports = _reports(tasks, outcomes)
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.status] = counts.get(r.status, 0) + 1
    failed = counts.get("failed") or counts.get("upstream_failed")
    status = "interrupted" if stopped else ("failed" if failed else "success")
    return RunResult(run_id, status, tuple(reports), seconds, tuple(counts.items()))


class _Session:
    """One run under the lock: the warehouse connections it opened, its workers' and its
    sensors' work, and the recording of it all. Closed by its caller."""

    def __init__(
        self,
        root: Path,
        target: Target,
        tasks: Sequence[Task],
        options: RunOptions,
        reporter: Reporter,
        state: StateStore,
        opening: Opening,
    ):
        self.root, self.target, self.tasks, self.options = root, target, tasks, options
        self.reporter, self.state, self.opening = reporter, state, opening
        self.context = options.context if options.context is not None else {t.id: t for t in tasks}
        self.execution_time = options.execution_time or utcnow()
        self.adapter: Adapter | None = None
        self.workers: dict[int, Adapter] = {}
        self._workers_lock = threading.Lock()
        self.creating = Creating()  # the workers' locks on tables not created yet
        self.stamps: Stamper | None = None
        # group commit (groupcommit.py): each worker's open transaction, by thread
        self.groups: dict[int, Group] | None = None
        self.holds: Callable[[Task], bool] = lambda task: False  # may a worker hold it?
        # does it read what another connection publishes during the run?
        self.fresh: Callable[[Task], bool] = lambda task: False
        self._slow: frozenset[str] = frozenset()  # models whose tasks took > GROUP_SECONDS
        self.interrupting = threading.Event()  # a second Ctrl-C: stop running statements
        self.finished = threading.Event()  # the scheduler returned: no task runs any more

    def run(self) -> RunResult:
        self.state.recover()
        try:
            self.adapter = self.opening.adapter()  # opened while the plan loaded
            start = prepare(
                self.adapter,
                self.tasks,
                self.context,
                self.state,
                self.reporter,
                kind=self.options.kind,
                force=self.options.force,
                execution_time=self.execution_time,
                early=self.opening,
            )
        except AdapterError as exc:  # pipe's own statements, not a task's
            raise refused(self.target, self.options.kind, exc) from None
        return self._execute(start)

    def _execute(self, start: Start) -> RunResult:
        tasks, opts, state, reporter = self.tasks, self.options, self.state, self.reporter
        run_id = state.start_run(
            opts.kind,
            self.target.name,
            opts.label,
            opts.start,
            opts.end,
            opts.args,
            len(tasks),
        )
        current = dict(start.published)

        def later() -> None:  # after the first task is handed out (Recorder)
            start.reconcile()
            if self.groups is not None:
                self._load_slow()

        recorder = Recorder(
            state, run_id, self.target.name, reporter, current, start.decision.run, later
        )
        state.outcomes(
            run_id,
            [(t.id, *t.key, "skipped", "already published") for t in tasks if t.id in start.done],
        )
        self.stamps = Stamper(self.context, current, start.decision)
        grouping = None
        if self.adapter.transactional_ddl:
            grouping = Grouping(self.commit_group, IDLE_SECONDS)
            self.groups = {}
            if opts.caps.concurrency == 1:  # one connection: its tasks read what it holds
                self.holds = lambda task: True
            else:  # what no task of the run reads
                read = {u for t in tasks for u in t.upstream}
                self.holds = lambda task: task.id not in read
                # upstream published before the run is in every snapshot
                runs = {t.id for t in tasks} - set(start.done)
                self.fresh = lambda task: any(u in runs for u in task.upstream)
        scheduler = Scheduler(
            tasks,
            opts.caps,
            self.work,
            done=start.done,
            priority=opts.priority,
            poke=self.poke,
            listener=recorder,
            blocked=start.blocked,
            grouping=grouping,
        )
        reporter.start(len(tasks), len(start.done), opts.label)
        reporter.skipped(start.done)
        started = time.monotonic()
        restore = (
            _install_sigint(scheduler, self.interrupt, reporter, recorder)
            if opts.handle_signals
            else None
        )
        try:
            outcomes = scheduler.run()
        except BaseException:
            recorder.close()
            state.finish_run(run_id, "crashed", {})  # never left 'running'
            raise
        finally:
            self.finished.set()
            if restore:
                restore()
        recorder.close()
        result = _result(run_id, tasks, outcomes, scheduler.stopping, time.monotonic() - started)
        state.finish_run(run_id, result.status, result.counts)
        reporter.done()
        return result

    def connection(self) -> Adapter:
        """This worker thread's connection; a new one when the last broke (a server
        restart, pg_terminate_backend): a retry must not inherit a dead connection."""
        ident = threading.get_ident()
        conn = self.workers.get(ident)
        if conn is not None and not conn.healthy():
            with self._workers_lock:
                self.workers.pop(ident, None)
            try:
                conn.close()
            except AdapterError:
                pass
            conn = None
        if conn is None:
            conn = self.adapter.worker()
            with self._workers_lock:
                self.workers[ident] = conn
        return conn

    def work(self, task: Task, attempt: int) -> TaskResult:
        """Always a TaskResult: a worker that cannot connect or load its task fails
        that task (retried as any), and even a bug ends as a failed task, recorded."""
        hydrate, stamps = self.options.hydrate, self.stamps
        try:
            group = self._group()
            conn = self.connection() if group is None else None
            if self.interrupting.is_set():  # handed out just before the second Ctrl-C
                return TaskResult("failed", error="interrupted")
            full = hydrate(task) if hydrate else task
            if group is None:
                result = execute_with_timeout(
                    conn, full, self.root, stamps.stamp(task), self.creating
                )
            else:
                result = group.run(full, stamps.stamp(task), self.holds(task), self.fresh(task))
            if result.status == "success":
                stamps.published(task, result)  # before the downstream tasks start
            return result
        except (UserError, AdapterError) as exc:
            return TaskResult("failed", error=_one_line(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in pipe: said, and not retried
            return TaskResult(
                "failed",
                retryable=False,
                error="internal error (a bug in "
                f"pipe, please report it): {type(exc).__name__}: {exc}",
            )

    def _group(self) -> Group | None:
        """This worker thread's group (None without group commit)."""
        groups = self.groups
        if groups is None:
            return None
        ident = threading.get_ident()
        group = groups.get(ident)
        if group is None:
            group = Group(
                self.root, self.creating, self.interrupting.is_set, self.connection, self.slow
            )
            with self._workers_lock:
                groups[ident] = group
        return group

    def commit_group(self) -> tuple:
        """On a worker's thread: commit what its group holds (Grouping.commit)."""
        group = (self.groups or {}).get(threading.get_ident())
        return group.commit() if group is not None else ()

    def _load_slow(self) -> None:
        """The models whose tasks took longer than GROUP_SECONDS on average (the state
        store's history; read on the scheduler's thread, which owns the store, after the
        first task is handed out): a group commits before one rather than wait for it."""
        means = self.state.mean_durations(self.target.name)
        self._slow = frozenset(m for m, seconds in means.items() if seconds > GROUP_SECONDS)

    def slow(self, task: Task) -> bool:
        return task.model in self._slow

    def poke(self, task: Task) -> Poke:
        """A sensor's `wait_for`, on the scheduler thread: not yet while its table is not
        there; any other error is a mistake in it, and fails the sensor with its message.
        A poke may not outlast the sensor's budget."""
        adapter = self.adapter
        deadline = Deadline(adapter, task.wait_timeout)
        try:
            return Poke(bool(adapter.scalar(task.sql)))
        except Interrupted as exc:
            return Poke(False, _one_line(exc))
        except AdapterError as exc:
            if adapter.is_missing_relation(exc):
                return Poke(False, _one_line(exc))
            return Poke(
                False,
                f"wait_for of {task.model} failed: {first_line(str(exc))} (fix the "
                "source's wait_for; a sensor waits only while it is false or its "
                "table does not exist)",
                failed=True,
            )
        finally:
            deadline.cancel()

    def interrupt(self) -> None:
        """Interrupt the running statements; they roll back. Again every 0.2 s until the
        scheduler returns: an interrupt reaches only a statement already running, and a
        worker may still be connecting or between two statements of its task (an
        interrupt of an idle connection does nothing, on every engine)."""
        self.interrupting.set()

        def keep_interrupting() -> None:
            while True:
                for conn in list(self.workers.values()):
                    conn.interrupt()
                if self.finished.wait(0.2):
                    return

        threading.Thread(target=keep_interrupting, name="pipe-interrupt", daemon=True).start()

    def close(self) -> None:
        for conn in self.workers.values():
            try:
                conn.close()
            except AdapterError:
                pass
        adapter = self.adapter
        if adapter is None:
            return
        # with transactional DDL a temp relation lives and dies with its task's
        # transaction: only an engine without it, or a --full-refresh that did not
        # reach its swap (its shadow table), can have left one behind
        tasks = self.tasks
        if not adapter.transactional_ddl or any(t.refresh or t.kind == "swap" for t in tasks):
            try:
                clean_temp(adapter, tasks)
            except AdapterError:
                pass
        adapter.close()


def _one_line(exc: Exception) -> str:
    """A task's reason: a user error with its place ('plans/dev/x.json: ...'), on a line."""
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def utcnow() -> datetime:
    """Now in UTC, zone-less like every interval bound: the default execution time."""
    return datetime.now(UTC).replace(tzinfo=None)


def _install_sigint(scheduler: Scheduler, interrupt: Callable[[], None], reporter, recorder):
    if threading.current_thread() is not threading.main_thread():
        return None
    presses = []

    def handler(signum, frame):
        presses.append(signum)
        if len(presses) == 1:
            scheduler.stop()
            reporter.stopping(recorder.running)
        elif len(presses) == 2:  # second Ctrl-C: interrupt the running statements
            interrupt()

    # SIGTERM (what an orchestrator or `kill` sends before SIGKILL) stops the same way
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, h) for sig, h in previous.items()]


def _reports(tasks: Sequence[Task], outcomes: Mapping[str, Outcome]) -> list[TaskReport]:
    out = []
    for t in tasks:
        o = outcomes[t.id]
        r = o.result or _NO_RESULT
        reason = o.reason or (r.error if o.status == "failed" else None)
        out.append(
            TaskReport(
                t.id,
                t.model,
                t.kind,
                t.label,
                o.status,
                reason,
                r.rows,
                None,
                o.attempts,
                r.warnings,
                r.checks,
            )
        )
    return out


_NO_RESULT = TaskResult("not_run")  # a task that never ran: no rows, warnings or checks
