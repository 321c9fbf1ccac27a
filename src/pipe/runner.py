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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .adapters import Adapter, open_adapter
from .adapters.base import LEDGER, TEMP_MARK, AdapterError, expand_env
from .config import Target
from .decide import Blocked, Decision, decide, describe
from .errors import UserError
from .executor import Deadline, Stamp, TaskResult, execute_with_timeout
from .intervals import iso
from .ledger import Entry, Key, Read, stale
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


class UpstreamMissing(UserError):
    """A selected task reads an upstream interval that is not published (SPEC §7)."""


class Reporter:
    """Console hooks; console.py implements them."""

    def waiting_for_lock(self, holder: str) -> None: ...

    def note(self, text: str) -> None:
        """Something pipe decided that the user should know (a rebuilt dropped table)."""

    def start(self, total: int, skipped: int, label: str) -> None: ...

    def skipped(self, task_ids: set[str]) -> None: ...

    def task_started(self, task: Task, attempt: int) -> None: ...

    def task_finished(
        self, task: Task, result: TaskResult, attempt: int, seconds: float, final: bool
    ) -> None: ...

    def task_settled(self, task: Task, outcome: Outcome) -> None: ...

    def stopping(self, running: int) -> None: ...

    def done(self) -> None: ...


COMMIT_EVERY = 0.2  # seconds between state-store commits during a run


def _changes(result: TaskResult, key: Key) -> tuple:
    """The ledger changes of a task's success: (key, entry), or (key, None) unpublished."""
    return (((key, result.entry),) if result.entry is not None else ()) + result.ledger


class _Recorder(Listener):
    """Scheduler events -> state store (batched commits) and the reporter."""

    def __init__(
        self,
        state: StateStore,
        run_id: int,
        target: str,
        reporter: Reporter,
        current: dict[Key, Entry],
        why: Mapping[str, str],
    ):
        self.state, self.run_id, self.target, self.reporter = state, run_id, target, reporter
        self.current, self.why = current, why
        self.last_commit = 0.0  # the first commit is not put off
        self.started_at: dict[str, float] = {}
        self.running = 0
        state.begin()

    def started(self, task, attempt, queued_at, started_at):
        self.running += 1
        self.state.attempt_started(self.run_id, task.id, attempt, task.key, queued_at, started_at)
        self.reporter.task_started(task, attempt)
        self._maybe_commit()

    def finished(self, task, attempt, result, started_at, finished_at, final):
        self.running -= 1
        self.state.attempt_finished(
            self.run_id,
            task.id,
            attempt,
            result.status,
            finished_at,
            result.rows,
            result.leaked,
            result.error,
        )
        if result.checks:
            self.state.check_results(self.run_id, task.id, attempt, task.key, result.checks)
        if result.status == "success":
            # `current` was updated by the worker (_Stamper.published) before it reported
            for key, entry in _changes(result, task.key):
                if entry is None:
                    self.state.forget_published(self.target, key)
                else:
                    self.state.mark_published(self.target, key, entry, self.run_id)
        self.reporter.task_finished(task, result, attempt, finished_at - started_at, final)
        self._maybe_commit()

    def settled(self, task, outcome):
        # a success records why it ran: the ledger's decision, for `pipe status --run`
        reason = outcome.reason or (self.why.get(task.id) if outcome.status == "success" else None)
        self.state.outcome(self.run_id, task.id, task.key, outcome.status, reason)
        self.reporter.task_settled(task, outcome)

    def _maybe_commit(self):
        if time.monotonic() - self.last_commit > 0.25:  # a long burst still commits
            self.idle()

    def idle(self) -> float | None:
        """Commit: the scheduler is about to wait for a worker, so the commit overlaps the
        workers' statements instead of delaying them. At most every COMMIT_EVERY seconds
        (a commit per task was 3% of a run of small tasks): otherwise say when to call
        again. The history may lag that much behind a kill -9; what is published does not
        (the warehouse's ledger is the truth, reconciled at the next start)."""
        due = self.last_commit + COMMIT_EVERY - time.monotonic()
        if due > 0:
            return due
        self.state.commit()
        self.state.begin()
        self.last_commit = time.monotonic()
        return None

    def close(self):
        self.state.commit()


def clean_temp(
    adapter: Adapter, tasks: Sequence[Task], relations: dict[str, str] | None = None
) -> list[str]:
    """Drop the temp relations of these tasks that an older run left behind.

    A task builds its temp table inside its own transaction, so on engines with
    transactional DDL none survives a crash; this sweeps what a non-transactional engine
    or an older pipe left. Only the names of these tasks: another project (or checkout)
    on the same database keeps its own."""
    mine = {t.temp for t in tasks if t.temp}
    dropped = []
    for name, kind in adapter.temp_relations(relations):
        if name in mine:
            adapter.drop(name, kind)
            dropped.append(name)
            if relations is not None:
                relations.pop(name, None)
    return dropped


def check_env(target: Target) -> None:
    for key, value in target.options:
        if isinstance(value, str):
            expand_env(value, f"target '{target.name}' {key}")


def run_tasks(
    root: Path,
    target: Target,
    tasks: Sequence[Task],
    *,
    kind: str,
    label: str,
    start: str,
    end: str,
    caps: Caps,
    force: bool = False,
    wait: bool = True,
    reporter: Reporter | None = None,
    priority=None,
    args: dict | None = None,
    handle_signals: bool = True,
    hydrate=None,
    context: Mapping[str, Task] | None = None,
    execution_time: datetime | None = None,
) -> RunResult:
    """Execute `tasks` (one plan, or a backfill's expansion) under the project lock.

    `context` holds every task of the expansion by id (default: `tasks`): a selected
    task's upstream outside the selection must be published already. Tasks whose interval
    ends after `execution_time` are recorded as partial (the CLI lets them through only
    with --allow-partial). `hydrate(task)` turns a stub (a task without its SQL) into the
    full task just before it runs; a backfill loads it from the persisted plan file."""
    reporter = reporter or Reporter()
    check_env(target)
    context = context if context is not None else {t.id: t for t in tasks}
    execution_time = execution_time or utcnow()
    lock = ProjectLock(root)
    try:
        lock.acquire(wait, reporter.waiting_for_lock, f"pipe {kind} {label}")
    except LockHeld as exc:
        raise LockBusy(
            f"another pipe process is running on this project ({exc.holder})",
            hint="wait for it, or drop --no-wait to queue behind it",
        ) from None
    state = StateStore(root)
    if state.moved_aside is not None:
        reporter.note(
            f".pipe/state.db was damaged: kept as .pipe/{state.moved_aside.name}; "
            "what is published is rebuilt from the warehouse's ledger, the run "
            "history before it is lost"
        )
    adapter = None
    workers: dict[int, Adapter] = {}
    workers_lock = threading.Lock()
    try:
        state.recover()
        adapter = open_adapter(target, root)
        relations = adapter.relations()  # one catalog query for all of the start
        clean_temp(adapter, tasks, relations)
        # a sensor's table is a source: pipe neither builds it nor creates its schema
        schemas = sorted({t.table.split(".", 1)[0] for t in tasks if t.kind != "sensor"})
        have = {name.split(".", 1)[0] for name in relations}
        for schema in schemas:
            if schema not in have:  # a schema holding a relation exists
                adapter.ensure_schema(schema)
        published, missing = _published(adapter, schemas, reporter, kind, relations)
        state.reconcile(target.name, published)
        decision = decide(
            tasks,
            context,
            published,
            stale(published),
            execution_time=execution_time,
            force=force,
            missing=missing,
        )
        if decision.blocked:
            raise _refusal(decision.blocked)
        done = set(decision.skip) | _idle_sensors(tasks, decision.skip)
        if decision.partial:
            reporter.note(
                f"{len(decision.partial)} task(s) cover time after the execution "
                f"time {iso(execution_time)}Z: recorded as partial, rebuilt by the "
                "first run or backfill that covers them once complete"
            )
        blocked = {}
        for t in tasks:
            if t.past is not None and t.id not in done:
                key = (t.model, iso(t.past.start), iso(t.past.end))
                if key not in published:
                    blocked[t.id] = (
                        f"depends_on_past: {t.model} {t.past.label} is not "
                        "published yet; run that interval first"
                    )

        run_id = state.start_run(kind, target.name, label, start, end, args or {}, len(tasks))
        current = dict(published)
        recorder = _Recorder(state, run_id, target.name, reporter, current, decision.run)
        state.outcomes(
            run_id, [(t.id, *t.key, "skipped", "already published") for t in tasks if t.id in done]
        )
        stamps = _Stamper(context, current, decision)

        def connection() -> Adapter:
            """This worker thread's connection; a new one when the last broke (a server
            restart, pg_terminate_backend): a retry must not inherit a dead connection."""
            ident = threading.get_ident()
            conn = workers.get(ident)
            if conn is not None and not conn.healthy():
                with workers_lock:
                    workers.pop(ident, None)
                try:
                    conn.close()
                except AdapterError:
                    pass
                conn = None
            if conn is None:
                conn = adapter.worker()
                with workers_lock:
                    workers[ident] = conn
            return conn

        def work(task: Task, attempt: int) -> TaskResult:
            """Always a TaskResult: a worker that cannot connect or load its task fails
            that task (retried as any), and even a bug ends as a failed task, recorded."""
            try:
                result = execute_with_timeout(
                    connection(), hydrate(task) if hydrate else task, root, stamps.stamp(task)
                )
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

        def poke(task: Task) -> bool:
            # pokes run on the scheduler thread: one may not outlast the sensor's budget
            deadline = Deadline(adapter, task.wait_timeout)
            try:
                return bool(adapter.scalar(task.sql))
            finally:
                deadline.cancel()

        scheduler = Scheduler(
            tasks,
            caps,
            work,
            done=done,
            priority=priority,
            poke=poke,
            listener=recorder,
            blocked=blocked,
        )
        reporter.start(len(tasks), len(done), label)
        reporter.skipped(done)
        started = time.monotonic()
        restore = (
            _install_sigint(scheduler, workers, reporter, recorder) if handle_signals else None
        )
        try:
            outcomes = scheduler.run()
        except BaseException:
            recorder.close()
            state.finish_run(run_id, "crashed", {})  # never left 'running'
            raise
        finally:
            if restore:
                restore()
        recorder.close()
        reports = _reports(tasks, outcomes)
        counts: dict[str, int] = {}
        for r in reports:
            counts[r.status] = counts.get(r.status, 0) + 1
        status = (
            "interrupted"
            if scheduler.stopping
            else ("failed" if counts.get("failed") or counts.get("upstream_failed") else "success")
        )
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
            # with transactional DDL a temp relation lives and dies with its task's
            # transaction: only an engine without it, or a --full-refresh that did not
            # reach its swap (its shadow table), can have left one behind
            if not adapter.transactional_ddl or any(t.refresh or t.kind == "swap" for t in tasks):
                try:
                    clean_temp(adapter, tasks)
                except AdapterError:
                    pass
            adapter.close()
        state.close()
        lock.release()


def _one_line(exc: Exception) -> str:
    text = exc.message if isinstance(exc, UserError) else str(exc)
    return " ".join(text.split())[:500] or type(exc).__name__


def utcnow() -> datetime:
    """Now in UTC, zone-less like every interval bound: the default execution time."""
    return datetime.now(UTC).replace(tzinfo=None)


def _published(
    adapter: Adapter, schemas: list[str], reporter: Reporter, kind: str, relations: dict[str, str]
) -> tuple[dict[Key, Entry], frozenset[str]]:
    """The warehouse ledger (the truth, written in each publish's transaction), less the
    models whose table is gone: a dropped table publishes nothing (SPEC §7, drift). Their
    keys get tombstones, so a rebuild of some intervals does not revive the others.
    `relations`: the warehouse's relations as listed at the start (the catalog's source)."""
    published = adapter.open_ledger(relations.get(LEDGER) == "table")
    if adapter.ledger_rows > 2 * len(published) + 1000:
        adapter.compact_ledger()
    shadows = sorted({m for m, _, _ in published if TEMP_MARK in m})
    if shadows:  # a --full-refresh that did not reach its swap: its shadow is gone
        with adapter.transaction():
            for shadow in shadows:
                adapter.forget_ledger(shadow)
        published = {k: e for k, e in published.items() if k[0] not in shadows}
    models = sorted({m for m, _, _ in published})
    listed = set(schemas) | {m.split(".", 1)[0] for m in models}
    adapter.catalog.load(
        listed, {n: k for n, k in relations.items() if n.split(".", 1)[0] in listed}
    )
    gone = [m for m in models if adapter.relation_kind(m) is None]
    if not gone:
        return published, frozenset()
    keys = [k for k in published if k[0] in gone]
    with adapter.transaction():
        adapter.record_removed(keys, time.time())
    for model in gone:
        n = sum(1 for k in keys if k[0] == model)
        reporter.note(
            f"{model}: its table is missing from the warehouse (dropped outside "
            f"pipe?); its {n} published interval(s) no longer count, and this "
            f"{kind} rebuilds the ones it covers"
        )
    return {k: e for k, e in published.items() if k[0] not in gone}, frozenset(gone)


def _refusal(blocked: Sequence[Blocked]) -> UpstreamMissing:
    first = blocked[0]
    more = len({b.task.id for b in blocked}) - 1
    return UpstreamMissing(
        f"{first.task.model} {first.task.label} reads {describe(first.upstream.key)}, which "
        f"{first.why}"
        + (f" (and {more} more task(s) like it)" if more else "")
        + "; nothing was run, so nothing is built from missing data",
        hint=f"build the upstream in the same command: --select '+{first.task.model}'",
    )


class _Stamper:
    """The ledger stamp of each task as it starts: a version newer than any before it,
    the upstream publishes it reads (as they are now: upstream tasks of this command have
    published already), and whether its data may be incomplete."""

    def __init__(self, context: Mapping[str, Task], current: dict[Key, Entry], decision: Decision):
        self.context, self.current, self.partial = context, current, decision.partial
        self._lock = threading.Lock()
        self._last = 0.0

    def version(self) -> float:
        with self._lock:
            self._last = max(time.time(), self._last + 1e-6)
            return self._last

    def published(self, task: Task, result: TaskResult) -> None:
        """What the task published becomes current: its downstream tasks read it."""
        with self._lock:
            for key, entry in _changes(result, task.key):
                if entry is None:
                    self.current.pop(key, None)
                else:
                    self.current[key] = entry

    def stamp(self, task: Task) -> Stamp:
        keys = [
            self.context[u].key
            for u in task.upstream
            if u in self.context and self.context[u].kind not in ("sensor", "swap")
        ]
        if task.past is not None:
            keys.append((task.model, iso(task.past.start), iso(task.past.end)))
        reads = []
        partial = task.id in self.partial
        for key in keys:
            entry = self.current.get(key)
            if entry is not None:
                reads.append(Read(key, entry.published_at))
                partial = partial or entry.partial
        return Stamp(self.version(), tuple(reads), partial, task.key in self.current)


def _idle_sensors(tasks: Sequence[Task], done) -> set[str]:
    """Sensors whose every downstream task is already published: nothing to wait for."""
    waiting: dict[str, list[str]] = {}
    for t in tasks:
        for u in t.upstream:
            waiting.setdefault(u, []).append(t.id)
    return {
        t.id
        for t in tasks
        if t.kind == "sensor" and t.id not in done and all(d in done for d in waiting.get(t.id, ()))
    }


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
        out.append(
            TaskReport(
                t.id,
                t.model,
                t.kind,
                t.label,
                o.status,
                o.reason or (getattr(r, "error", None) if o.status == "failed" else None),
                getattr(r, "rows", None),
                None,
                o.attempts,
                getattr(r, "warnings", ()),
                getattr(r, "checks", ()),
            )
        )
    return out
