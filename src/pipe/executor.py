"""One task, write-audit-publish: temp table -> checks -> publish, through an adapter.

A task is one transaction: build the temp table, check it, publish, record the publish in
the warehouse's ledger, commit. Until the commit no reader sees any of it; a failing
check, an SQL error or a timeout rolls it all back, so the target is as it was and the
temp table never existed for anyone else. An incremental task publishes only the rows of
its interval; rows the query returned outside it are counted (a leaking filter) and
reported as a warning.
"""

from __future__ import annotations

import operator
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .adapters.base import Adapter
from .adapters.errors import AdapterError, Interrupted
from .intervals import iso
from .ledger import Entry, Read
from .plan import Task
from .reporttext import check_found


@dataclass(frozen=True)
class CheckResult:
    """One check of a task: its severity, status and failing rows."""

    name: str
    severity: str
    status: str  # pass | warn | error
    failures: int
    sample: list | None = None  # up to 5 offending rows, as dicts


@dataclass(frozen=True)
class Stamp:
    """What the ledger row of a publish records besides the task's outcome: its version,
    the upstream publishes the task read, and whether its data may be incomplete."""

    published_at: float
    reads: tuple[Read, ...] = ()
    partial: bool = False
    republish: bool = False  # the key was published before: record the rows it replaced


@dataclass(frozen=True)
class TaskResult:
    """One attempt of a task, as its worker reports it to the scheduler."""

    status: str  # success | failed
    rows: int | None = None
    leaked: int = 0
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    retryable: bool = True  # check failures are data, not flakiness: no retry
    warnings: tuple[str, ...] = field(default=())
    entry: Entry | None = None  # the ledger entry written with the publish
    # a swap's ledger changes: (key, entry) published, (key, None) no longer published
    ledger: tuple = ()
    # published in the transaction its worker holds open (groupcommit.py): the task's
    # downstream may run on that worker; it is done once a later result `settles` it
    held: bool = False
    # (task id, TaskResult) of earlier held tasks this attempt settled: committed, or
    # redone (or failed) after their group's transaction was rolled back
    settles: tuple = ()


# how long a task waits, at most, for another worker's on_schema_change ALTER of its table
ALTER_WAIT = 300.0


class TaskFailed(Exception):
    def __init__(self, message: str, checks=(), retryable=True):
        super().__init__(message)
        self.checks = checks
        self.retryable = retryable


_OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def verdict(check_severity: str, warn_if: str | None, error_if: str | None, failures: int) -> str:
    """'pass', 'warn' or 'error' for a failing-row count, as dbt judges it."""

    def hit(rule: str | None) -> bool:
        op, n = (rule or "!= 0").split()
        return _OPS[op](failures, int(n))

    if check_severity == "error" and hit(error_if):
        return "error"
    if hit(warn_if):
        return "warn"
    return "pass"


def check_counts(adapter: Adapter, checks) -> list[int]:
    """The failing-row count of each check, in one query: one scalar subquery a check,
    one row back (a statement costs 0.3-0.6 ms on DuckDB whatever it does; a quarter of
    the models have checks, two or three each)."""
    if len(checks) == 1:
        return [int(adapter.scalar(f"SELECT count(*) FROM (\n{checks[0].sql}\n) AS failing"))]
    parts = ",\n".join(
        f"(SELECT count(*) FROM (\n{c.sql}\n) AS failing) AS c{i}" for i, c in enumerate(checks)
    )
    return [int(n) for n in adapter.query(f"SELECT\n{parts}")[1][0]]


def run_checks(adapter: Adapter, task: Task) -> tuple[CheckResult, ...]:
    results = []
    counts = check_counts(adapter, task.checks) if task.checks else []
    for c, failures in zip(task.checks, counts, strict=True):
        sample = None
        if failures:
            names, rows = adapter.query(f"SELECT * FROM (\n{c.sql}\n) AS failing LIMIT 5")
            sample = [dict(zip(names, r, strict=True)) for r in rows]
        results.append(
            CheckResult(
                c.name,
                c.severity,
                verdict(c.severity, c.warn_if, c.error_if, failures),
                failures,
                sample,
            )
        )
    return tuple(results)


def _failed(c: CheckResult, kind: str | None) -> str:
    return check_found(kind, c.failures, c.sample)


def execute(
    adapter: Adapter,
    task: Task,
    root: Path,
    stamp: Stamp | None = None,
    creating: Creating | None = None,
) -> TaskResult:
    """Run one task to the end; never raises for a task failure (returns status=failed).
    `creating`: the run's `Creating`, shared by its workers (alone: one of its own)."""
    try:
        return _execute(adapter, task, root, stamp or Stamp(time.time()), creating or Creating())
    except (TaskFailed, AdapterError) as exc:
        return failure(exc)


def failure(exc: TaskFailed | AdapterError) -> TaskResult:
    """The failed result of a task whose statements raised `exc`."""
    if isinstance(exc, TaskFailed):
        return TaskResult(
            "failed", checks=tuple(exc.checks), error=str(exc), retryable=exc.retryable
        )
    if isinstance(exc, Interrupted):
        return TaskResult("failed", error="interrupted")
    return TaskResult("failed", error=first_line(str(exc)))


def publish_held(
    adapter: Adapter, task: Task, root: Path, stamp: Stamp, send: bool = True
) -> TaskResult:
    """Run `task` inside the transaction its worker holds open (groupcommit.py): build,
    check, publish and record as `execute` does, then send its last statements (the
    publish, the ledger row), so that an error in them is this task's (`send=False`:
    they go with the COMMIT that follows, one call fewer, as `execute` does). Raises what
    fails; the caller rolls the whole transaction back (a failed statement ends it on
    DuckDB and Postgres). `Redo` when the task must be run again in a transaction of
    its own: a write conflict, or a guarded INSERT that needs the careful way."""
    try:
        if task.kind == "swap":
            result = _swap(adapter, task, stamp)
        else:
            result = _write_audit_publish(adapter, task, root, stamp, adapter.guards_columns)
        if send:
            adapter.send_ahead()
    except _Unguarded:
        raise Redo from None
    except AdapterError as exc:
        if adapter.is_conflict(exc) and not isinstance(exc, Interrupted):
            raise Redo from None
        raise
    return result


class Redo(Exception):
    """A held task that failed in a way its own transaction would have got past (see
    `publish_held`): run it again alone."""


def first_line(text: str) -> str:
    """The message of a warehouse error, without the SQL excerpt and caret line that
    engines append ('LINE 2: select ...' / '^^^^'): a task line, not a traceback."""
    lines = []
    for ln in text.strip().splitlines():
        if ln.startswith("LINE ") or ln.strip().startswith("^"):
            break
        if ln.strip():
            lines.append(ln.strip())
    return " ".join(lines[:3])[:500] if lines else "error"


class Creating:
    """One run's locks on incremental tables not created yet: two first intervals of one
    model would both create its table, and one transaction would fail on the other's; the
    first one creates it, the others wait. The run's workers share one of these. A lock
    is reentrant: a worker holding it until its group commits (groupcommit.py) may redo
    the task alone, which takes it again."""

    def __init__(self):
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        self._created: dict[str, float] = {}  # table -> when its creation was committed

    def lock(self, adapter: Adapter, task: Task) -> threading.RLock | None:
        if task.kind != "incremental" or adapter.relation_kind(task.table) == "table":
            return None
        with self._guard:
            return self._locks.setdefault(f"{adapter.target.name}:{task.table}", threading.RLock())

    def created(self, adapter: Adapter, task: Task, done: bool = True) -> None:
        """`task` holds its table's lock (it creates the table, or waited while another
        worker did): from now on (`done=False`: until it says `done`, once its commit or
        failure is over), a group whose snapshot is older may not see the table
        (groupcommit.py)."""
        at = time.monotonic() if done else float("inf")
        self._created[f"{adapter.target.name}:{task.table}"] = at

    def created_since(self, adapter: Adapter, task: Task, since: float) -> bool:
        """Whether `task`'s table was created in this run after `since` (monotonic)."""
        return self._created.get(f"{adapter.target.name}:{task.table}", -1.0) >= since


def _execute(
    adapter: Adapter, task: Task, root: Path, stamp: Stamp, creating: Creating, tries: int = 5
) -> TaskResult:
    if task.kind == "sensor":
        raise TaskFailed("sensor tasks are polled by the scheduler", retryable=False)
    if task.kind == "swap":
        with adapter.transaction():
            return _swap(adapter, task, stamp)
    lock = creating.lock(adapter, task)
    if lock:
        lock.acquire()
    guard = adapter.guards_columns
    conflicts = 0
    altering = 0.0  # seconds waited for another worker's ALTER of the table
    try:
        while True:
            try:
                with adapter.transaction():
                    return _write_audit_publish(adapter, task, root, stamp, guard)
            except _Unguarded:  # raised by a guarded publish only: at most once a task
                guard = False  # the columns changed, or the INSERT failed: the whole way,
                # not one of the `tries` (which are for other writers' commits)
            except AdapterError as exc:
                conflicts += 1
                if not adapter.is_conflict(exc):
                    raise
                if exc.conflict:  # another worker's column change: redo once it commits,
                    # which may take its whole interval's publish (DuckDB does not wait)
                    backoff = min(0.5, 0.05 * conflicts)
                    altering += backoff
                    if altering > ALTER_WAIT:
                        raise
                    time.sleep(backoff)
                    continue
                if conflicts >= tries:
                    raise
                time.sleep(0.05 * conflicts)  # another writer's commit: back off, redo
    finally:
        if lock:
            lock.release()


class _Unguarded(Exception):
    """A guarded publish's INSERT failed: the task is redone (rolled back first) with
    its temp table's columns listed, which says what changed or fails as it would have."""


def _write_audit_publish(
    adapter: Adapter, task: Task, root: Path, stamp: Stamp, guard: bool = False
) -> TaskResult:
    """Build, check, publish and record: the caller's transaction commits it all at once
    or (on TaskFailed, an error, a timeout) rolls it all back, temp table included."""
    rows, leaked = _build(adapter, task, root)
    checks = run_checks(adapter, task)
    bad = [c for c in checks if c.status == "error"]
    if bad:
        kinds = {c.name: c.type for c in task.checks}
        names = ", ".join(f"{c.name} ({_failed(c, kinds.get(c.name))})" for c in bad)
        raise TaskFailed(f"check failed: {names}", checks, retryable=False)
    published = _publish(adapter, task, rows, leaked, guard)
    entry = Entry(
        task.fingerprint,
        stamp.published_at,
        published.rows,
        stamp.reads,
        stamp.partial,
        published.replaced if stamp.republish else None,
    )
    # a --full-refresh interval is recorded under its shadow table until the swap
    adapter.record_published((task.table, *task.key[1:]), entry)
    warnings = list(published.warnings)
    if published.leaked:
        warnings.append(
            f"{published.leaked} rows outside [{iso(task.interval.start)}, "
            f"{iso(task.interval.end)}) by {task.time_column} were not published:"
            " does the model filter on its interval?"
        )
    warned = [c for c in checks if c.status == "warn"]
    if warned:
        kinds = {c.name: c.type for c in task.checks}
        warnings += [f"check {c.name}: {_failed(c, kinds.get(c.name))}" for c in warned]
    return TaskResult(
        "success",
        published.rows,
        published.leaked,
        checks,
        warnings=tuple(warnings),
        entry=None if task.refresh else entry,
    )


def _build(adapter: Adapter, task: Task, root: Path) -> tuple[int | None, int]:
    """The temp relation: (its rows, rows outside the interval already deleted)."""
    if task.kind == "seed":
        rows = adapter.load_seed(task.temp, root / task.seed_path, dict(task.column_types))
    elif task.kind == "view":
        adapter.create_temp_view(task.temp, task.sql)
        return None, 0
    else:
        rows = adapter.create_temp(task.temp, task.sql)
    if task.kind == "incremental" and task.checks:
        # checks see only the interval's rows (SPEC §6), so the rest goes first
        leaked = adapter.delete_outside(
            task.temp, task.time_column, iso(task.interval.start), iso(task.interval.end)
        )
        return rows - leaked, leaked
    return rows, 0


@dataclass(frozen=True)
class _Published:
    """What a publish wrote: its rows, and those outside the interval."""

    rows: int | None
    leaked: int  # rows the query returned outside the task's interval: not published
    replaced: int | None = None  # rows of the interval the publish replaced
    warnings: tuple[str, ...] = ()


def _publish(
    adapter: Adapter, task: Task, rows: int | None, leaked: int, guard: bool = False
) -> _Published:
    """The temp relation becomes the task's table (or its interval's rows in it)."""
    if task.kind == "view":
        adapter.publish_view(task.temp, task.table, task.sql)
        published = _Published(rows, leaked)
    elif task.kind == "incremental":
        # the table's columns as last read: the INSERT checks the temp's against them
        known = adapter.known_columns(task.table) if guard else None
        warnings = tuple(sync_columns(adapter, task)) if known is None else ()
        span = (task.time_column, iso(task.interval.start), iso(task.interval.end))
        try:
            inserted, replaced = (
                adapter.publish_interval(task.temp, task.table, *span)
                if known is None
                else adapter.publish_interval(task.temp, task.table, *span, columns=known)
            )
        except AdapterError as exc:
            if known is None or isinstance(exc, Interrupted):
                raise
            raise _Unguarded from None
        published = _Published(inserted, leaked + rows - inserted, replaced, warnings)
    else:
        adapter.publish_full(task.temp, task.table)
        published = _Published(rows, leaked)
    if task.grants and not task.refresh:
        adapter.apply_grants(task.table, task.grants)
    return published


def _swap(adapter: Adapter, task: Task, stamp: Stamp) -> TaskResult:
    """--full-refresh, last step, one transaction: the shadow table every interval was
    rebuilt into becomes the model's table; its ledger rows become the model's, and the
    model's intervals the refresh did not rebuild are no longer published."""
    shadow, table = task.temp, task.table
    ledger = adapter.read_ledger()
    rebuilt = sorted((k[1:], e) for k, e in ledger.items() if k[0] == shadow)
    if not rebuilt:
        raise TaskFailed(
            f"the full refresh of {task.model} rebuilt no interval; the table was left as it was",
            retryable=False,
        )
    adapter.publish_full(shadow, table)
    if task.grants:
        adapter.apply_grants(table, task.grants)
    changes: list = []
    for i, (span, e) in enumerate(rebuilt):
        entry = Entry(e.fingerprint, stamp.published_at + i * 1e-6, e.rows, e.reads, e.partial)
        adapter.record_published((table, *span), entry)
        changes.append(((table, *span), entry))
    spans = {span for span, _ in rebuilt}
    gone = sorted(k for k in ledger if k[0] == table and k[1:] not in spans)
    adapter.record_removed(gone, stamp.published_at + len(rebuilt) * 1e-6)
    adapter.forget_ledger(shadow)
    changes += [(k, None) for k in gone]
    return TaskResult(
        "success",
        sum(e.rows or 0 for _, e in rebuilt),
        ledger=tuple(changes),
        warnings=(f"full refresh: {table} replaced by the rebuild of {len(rebuilt)} interval(s)",),
    )


def sync_columns(adapter: Adapter, task: Task) -> list[str]:
    """Apply the model's `on_schema_change` when its query's columns differ from its
    table's (dbt's names and meanings): `fail` fails the task, `append_new_columns` adds
    the new ones, `sync_all_columns` also drops the ones gone. Column types are not
    changed; a changed type surfaces as the engine's error on insert."""
    if adapter.relation_kind(task.table) != "table":
        return []
    new = adapter.columns(task.temp)
    old = adapter.table_columns(task.table)
    have = {c.lower() for c, _ in old}
    wanted = {c.lower() for c, _ in new}
    added = [(c, t) for c, t in new if c.lower() not in have]
    removed = [c for c, _ in old if c.lower() not in wanted]
    if not added and not removed:
        return []
    said = "; ".join(
        part
        for part in (
            "added " + ", ".join(f"{c} ({t})" for c, t in added) if added else "",
            "removed " + ", ".join(removed) if removed else "",
        )
        if part
    )
    policy = task.on_schema_change
    if policy == "fail":
        raise TaskFailed(
            f"the columns of {task.model} changed: {said}. Nothing was published; the table "
            "keeps its columns. Set on_schema_change: append_new_columns (or "
            "sync_all_columns) in the model's sidecar, or rebuild the table with 'pipe "
            f"backfill --full-refresh --select {task.model} --start ... --end ...'",
            retryable=False,
        )
    for column, dtype in added:
        adapter.add_column(task.table, column, dtype)
    if policy == "sync_all_columns":
        for column in removed:
            adapter.drop_column(task.table, column)
    else:
        removed = []
    done = [
        f"added {', '.join(c for c, _ in added)}" if added else "",
        f"dropped {', '.join(removed)}" if removed else "",
    ]
    return (
        [f"on_schema_change {policy}: {'; '.join(d for d in done if d)} on {task.table}"]
        if any(done)
        else []
    )


class Deadline:
    """Interrupts `adapter` after `seconds` unless cancelled (a task's timeout)."""

    def __init__(self, adapter: Adapter, seconds: float | None):
        self.fired = False
        self._timer = None
        # cancel() and the interrupt exclude each other: once cancel() returns, a late
        # timer cannot interrupt the next task this worker connection runs
        self._lock = threading.Lock()
        self._cancelled = False
        if seconds:
            self._timer = threading.Timer(seconds, self._fire, args=(adapter,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, adapter: Adapter) -> None:
        with self._lock:
            if self._cancelled:
                return
            self.fired = True
            adapter.interrupt()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
        if self._timer:
            self._timer.cancel()


def execute_with_timeout(
    adapter: Adapter,
    task: Task,
    root: Path,
    stamp: Stamp | None = None,
    creating: Creating | None = None,
) -> TaskResult:
    deadline = Deadline(adapter, task.timeout)
    started = time.monotonic()
    try:
        result = execute(adapter, task, root, stamp, creating)
    finally:
        deadline.cancel()
    if deadline.fired and result.status == "failed":
        return timed_out(task, started)
    return result


def timed_out(task: Task, started: float) -> TaskResult:
    """The result of a task its timeout interrupted (`started`: time.monotonic())."""
    return TaskResult(
        "failed",
        error=f"timeout after {time.monotonic() - started:.1f}s (timeout: {task.timeout:g}s)",
    )
