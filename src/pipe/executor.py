"""One task, write-audit-publish: temp table -> checks -> publish, through an adapter.

The target is touched only by the publish call, a single transaction: a failing check,
an SQL error or a timeout leaves it as it was, and the temp table is dropped whatever
happens. For an incremental task the temp table keeps only the rows of the task's
interval; rows the query returned outside it are counted (a leaking filter) and dropped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .adapters.base import Adapter, AdapterError, Interrupted
from .checks import verdict
from .intervals import iso
from .plan import Task


@dataclass(frozen=True)
class CheckResult:
    name: str
    severity: str
    status: str  # pass | warn | error
    failures: int
    sample: list | None = None  # up to 5 offending rows, as dicts


@dataclass(frozen=True)
class TaskResult:
    status: str  # success | failed
    rows: int | None = None
    leaked: int = 0
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    retryable: bool = True  # check failures are data, not flakiness: no retry
    warnings: tuple[str, ...] = field(default=())


class TaskFailed(Exception):
    def __init__(self, message: str, checks=(), retryable=True):
        super().__init__(message)
        self.checks = checks
        self.retryable = retryable


def run_checks(adapter: Adapter, task: Task) -> tuple[CheckResult, ...]:
    results = []
    for c in task.checks:
        failures = int(adapter.scalar(f"SELECT count(*) FROM (\n{c.sql}\n) AS failing"))
        sample = None
        if failures:
            names, rows = adapter.query(f"SELECT * FROM (\n{c.sql}\n) AS failing LIMIT 5")
            sample = [dict(zip(names, r, strict=True)) for r in rows]
        results.append(CheckResult(c.name, c.severity,
                                   verdict(c.severity, c.warn_if, c.error_if, failures),
                                   failures, sample))
    return tuple(results)


def execute(adapter: Adapter, task: Task, root: Path) -> TaskResult:
    """Run one task to the end; never raises for a task failure (returns status=failed)."""
    try:
        return _execute(adapter, task, root)
    except TaskFailed as exc:
        _cleanup(adapter, task)
        return TaskResult("failed", checks=tuple(exc.checks), error=str(exc),
                          retryable=exc.retryable)
    except Interrupted:
        _cleanup(adapter, task)
        return TaskResult("failed", error="interrupted")
    except AdapterError as exc:
        _cleanup(adapter, task)
        return TaskResult("failed", error=_first_line(str(exc)))


def _first_line(text: str) -> str:
    """The message of a warehouse error, without the SQL excerpt and caret line that
    engines append ('LINE 2: select ...' / '^^^^'): a task line, not a traceback."""
    lines = []
    for ln in text.strip().splitlines():
        if ln.startswith("LINE ") or ln.strip().startswith("^"):
            break
        if ln.strip():
            lines.append(ln.strip())
    return " ".join(lines[:3])[:500] if lines else "error"


def _cleanup(adapter: Adapter, task: Task) -> None:
    if task.temp:
        try:
            adapter.execute("ROLLBACK")
        except AdapterError:
            pass
        try:
            adapter.drop(task.temp)
        except AdapterError:
            pass  # the next run drops left-overs (runner.clean_temp)


def _execute(adapter: Adapter, task: Task, root: Path) -> TaskResult:
    if task.kind == "sensor":
        raise TaskFailed("sensor tasks are polled by the scheduler", retryable=False)
    leaked, warnings = 0, []  # a crashed attempt's temp table is gone: runner.clean_temp
    if task.kind == "seed":
        rows = adapter.load_seed(task.temp, root / task.seed_path, dict(task.column_types))
    elif task.kind == "view":
        adapter.create_temp_view(task.temp, task.sql)
        rows = None
    else:
        rows = adapter.create_temp(task.temp, task.sql)
        if task.kind == "incremental":
            start, end = iso(task.interval.start), iso(task.interval.end)
            leaked = adapter.delete_outside(task.temp, task.time_column, start, end)
            if leaked:
                rows -= leaked
                warnings.append(f"{leaked} rows outside [{start}, {end}) by {task.time_column}"
                                " were not published: does the model filter on its interval?")
    checks = run_checks(adapter, task)
    bad = [c for c in checks if c.status == "error"]
    if bad:
        names = ", ".join(f"{c.name} ({c.failures} failing rows)" for c in bad)
        raise TaskFailed(f"check failed: {names}", checks, retryable=False)
    adapter.stage_ledger(task.key, task.fingerprint, rows)
    _publish(adapter, task)
    adapter.flush_ledger()
    warnings += [f"check {c.name}: {c.failures} failing rows" for c in checks
                 if c.status == "warn"]
    return TaskResult("success", rows, leaked, checks, warnings=tuple(warnings))


def _publish(adapter: Adapter, task: Task, tries: int = 5) -> None:
    """Publish in one transaction; a concurrent-write conflict rolls back and tries again."""
    for attempt in range(tries):
        try:
            if task.kind == "view":
                adapter.publish_view(task.table, task.sql)
            elif task.kind == "incremental":
                adapter.publish_interval(task.temp, task.table, task.time_column,
                                         iso(task.interval.start), iso(task.interval.end))
            else:
                adapter.publish_full(task.temp, task.table)
            break
        except AdapterError as exc:
            if attempt == tries - 1 or not adapter.is_conflict(exc):
                raise
    if task.kind == "view":
        try:
            adapter.drop(task.temp)
        except AdapterError:  # published already: a late timeout must not fail the task;
            pass              # the runner's clean_temp drops the left-over


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


def execute_with_timeout(adapter: Adapter, task: Task, root: Path) -> TaskResult:
    deadline = Deadline(adapter, task.timeout)
    started = time.monotonic()
    try:
        result = execute(adapter, task, root)
    finally:
        deadline.cancel()
    if deadline.fired and result.status == "failed":
        return TaskResult("failed", error=f"timeout after {time.monotonic() - started:.1f}s "
                          f"(timeout: {task.timeout:g}s)")
    return result
