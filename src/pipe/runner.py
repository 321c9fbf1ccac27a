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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .adapters import Adapter, open_adapter
from .adapters.base import LEDGER, TEMP_MARK, AdapterError, Interrupted, expand_env
from .config import Target
from .decide import Blocked, Decision, decide, describe
from .errors import LockBusy, SourceLocation, UpstreamMissing, UserError, WarehouseError
from .executor import Deadline, Stamp, TaskResult, execute_with_timeout, first_line
from .intervals import iso
from .ledger import Entry, Key, Read, stale
from .plan import Task
from .scheduler import Caps, Listener, Outcome, Poke, Scheduler
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
    args: Mapping[str, object] = field(default_factory=dict)
    handle_signals: bool = True
    hydrate: Callable[[Task], Task] | None = None
    context: Mapping[str, Task] | None = None
    execution_time: datetime | None = None


@dataclass(frozen=True)
class _Start:
    """What the run's set-up found: what is published, and what to skip or fail."""

    published: dict[Key, Entry]
    decision: Decision
    done: frozenset[str]  # already published (or idle sensors): skipped
    blocked: dict[str, str]  # task id -> why it cannot run (depends_on_past)


def run_tasks(
    root: Path,
    target: Target,
    tasks: Sequence[Task],
    options: RunOptions,
    reporter: Reporter | None = None,
) -> RunResult:
    """Execute `tasks` (one plan, or a backfill's expansion) under the project lock."""
    reporter = reporter or Reporter()
    check_env(target)
    lock = ProjectLock(root)
    try:
        what = f"pipe {options.kind} {options.label}"
        lock.acquire(options.wait, reporter.waiting_for_lock, what)
    except LockHeld as exc:
        raise _busy(exc.holder) from None
    try:
        state = StateStore(root)
        if state.moved_aside is not None:
            reporter.note(
                f".pipe/state.db was damaged: kept as .pipe/{state.moved_aside.name}; "
                "what is published is rebuilt from the warehouse's ledger, the run "
                "history before it is lost"
            )
        session = _Session(root, target, tasks, options, reporter, state)
        try:
            return session.run()
        finally:
            session.close()
            state.close()
    finally:
        lock.release()


def _busy(holder: str | None) -> LockBusy:
    said = f"({holder})" if holder else "(the lock file does not say which)"
    return LockBusy(
        f"another pipe process is running on this project {said}",
        at=SourceLocation(".pipe/lock"),
        hint="wait for it, or drop --no-wait to queue behind it",
    )


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
    ):
        self.root, self.target, self.tasks, self.options = root, target, tasks, options
        self.reporter, self.state = reporter, state
        self.context = options.context if options.context is not None else {t.id: t for t in tasks}
        self.execution_time = options.execution_time or utcnow()
        self.adapter: Adapter | None = None
        self.workers: dict[int, Adapter] = {}
        self._workers_lock = threading.Lock()
        self.stamps: _Stamper | None = None

    def run(self) -> RunResult:
        self.state.recover()
        try:
            self.adapter = open_adapter(self.target, self.root)
            start = self._start(self.adapter)
        except AdapterError as exc:  # pipe's own statements, not a task's
            raise _refused(self.target, self.options.kind, exc) from None
        return self._execute(start)

    def _start(self, adapter: Adapter) -> _Start:
        """Clean, create schemas, read the ledger, reconcile, decide."""
        tasks, opts = self.tasks, self.options
        relations = adapter.relations()  # one catalog query for all of the start
        clean_temp(adapter, tasks, relations)
        # a sensor's table is a source: pipe neither builds it nor creates its schema
        schemas = sorted({t.table.split(".", 1)[0] for t in tasks if t.kind != "sensor"})
        have = {name.split(".", 1)[0] for name in relations}
        for schema in schemas:
            if schema not in have:  # a schema holding a relation exists
                adapter.ensure_schema(schema)
        published, missing = _published(adapter, schemas, self.reporter, opts.kind, relations)
        self.state.reconcile(self.target.name, published)
        decision = decide(
            tasks,
            self.context,
            published,
            stale(published),
            execution_time=self.execution_time,
            force=opts.force,
            missing=missing,
        )
        if decision.blocked:
            raise _refusal(decision.blocked)
        done = frozenset(decision.skip) | _idle_sensors(tasks, decision.skip)
        if decision.partial:
            self.reporter.note(
                f"{len(decision.partial)} task(s) cover time after the execution "
                f"time {iso(self.execution_time)}Z: recorded as partial, rebuilt by the "
                "first run or backfill that covers them once complete"
            )
        return _Start(published, decision, done, _past_missing(tasks, done, published))

    def _execute(self, start: _Start) -> RunResult:
        tasks, opts, state, reporter = self.tasks, self.options, self.state, self.reporter
        run_id = state.start_run(
            opts.kind,
            self.target.name,
            opts.label,
            opts.start,
            opts.end,
            dict(opts.args),
            len(tasks),
        )
        current = dict(start.published)
        recorder = _Recorder(state, run_id, self.target.name, reporter, current, start.decision.run)
        state.outcomes(
            run_id,
            [(t.id, *t.key, "skipped", "already published") for t in tasks if t.id in start.done],
        )
        self.stamps = _Stamper(self.context, current, start.decision)
        scheduler = Scheduler(
            tasks,
            opts.caps,
            self.work,
            done=start.done,
            priority=opts.priority,
            poke=self.poke,
            listener=recorder,
            blocked=start.blocked,
        )
        reporter.start(len(tasks), len(start.done), opts.label)
        reporter.skipped(start.done)
        started = time.monotonic()
        restore = (
            _install_sigint(scheduler, self.workers, reporter, recorder)
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
            if restore:
                restore()
        recorder.close()
        reports = _reports(tasks, outcomes)
        counts: dict[str, int] = {}
        for r in reports:
            counts[r.status] = counts.get(r.status, 0) + 1
        failed = counts.get("failed") or counts.get("upstream_failed")
        status = "interrupted" if scheduler.stopping else ("failed" if failed else "success")
        result = RunResult(run_id, status, tuple(reports), time.monotonic() - started, counts)
        state.finish_run(run_id, status, counts)
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
            result = execute_with_timeout(
                self.connection(), hydrate(task) if hydrate else task, self.root, stamps.stamp(task)
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


def _refused(target: Target, kind: str, exc: AdapterError) -> WarehouseError:
    return WarehouseError(
        f"target '{target.name}' ({target.adapter}) refused what pipe does before the "
        f"{kind}'s first task: {first_line(str(exc))}",
        at=SourceLocation("pipe.yml"),
        hint="pipe creates the models' schemas and keeps its ledger in _pipe.ledger: "
        "grant the target's role those privileges, or point the target elsewhere",
    )


def _past_missing(
    tasks: Sequence[Task], done: frozenset[str], published: Mapping[Key, Entry]
) -> dict[str, str]:
    """depends_on_past tasks whose previous interval is not published: they fail."""
    blocked = {}
    for t in tasks:
        if t.past is not None and t.id not in done:
            key = (t.model, iso(t.past.start), iso(t.past.end))
            if key not in published:
                blocked[t.id] = (
                    f"depends_on_past: {t.model} {t.past.label} is not "
                    "published yet; run that interval first"
                )
    return blocked


def _one_line(exc: Exception) -> str:
    """A task's reason: a user error with its place ('plans/dev/x.json: ...'), on a line."""
    return " ".join(str(exc).split())[:500] or type(exc).__name__


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


def _idle_sensors(tasks: Sequence[Task], done) -> frozenset[str]:
    """Sensors whose every downstream task is already published: nothing to wait for."""
    waiting: dict[str, list[str]] = {}
    for t in tasks:
        for u in t.upstream:
            waiting.setdefault(u, []).append(t.id)
    return frozenset(
        t.id
        for t in tasks
        if t.kind == "sensor" and t.id not in done and all(d in done for d in waiting.get(t.id, ()))
    )


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
