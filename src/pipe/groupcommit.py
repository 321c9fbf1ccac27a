"""Group commit: a worker keeps its transaction open across tasks, and commits them together.

A COMMIT costs DuckDB or Postgres about a tenth of a small model's time (the log's write
and sync, the catalog's bookkeeping: docs/benchmarks.md). A worker may hold a task it ran,
published but not committed, in its open transaction while nothing on another connection
needs to read it: at `--concurrency 1` every task (there is one connection, and a task's
downstream reads what it published as it reads its own writes), at higher concurrency the
tasks nothing in the run reads (no downstream task). A task that is not held commits the
group with it, and a task that reads what another worker published in the run begins a
new transaction (DuckDB's snapshot is taken at BEGIN). The worker also commits after
GROUP_TASKS tasks or GROUP_SECONDS, before a task of a model that took longer than
GROUP_SECONDS on average in earlier runs (`slow`), with a task that created its
incremental table (another worker waits for that table), and when it finds no work for
IDLE_SECONDS (a retry's backoff, a sensor's wait, a stop, the run's end).

What does not change:
- a task's publish and its ledger row are in the transaction that publishes them: a kill -9
  rolls back the group's publishes and rows together, and the next run redoes them;
- a task is done (the state store, the console, `pipe status`) only once its group has
  committed: until then the scheduler knows it as held;
- a failing task fails alone. A failed statement ends the transaction on both engines, so
  the group's earlier tasks are redone, each in a transaction of its own and with the
  stamp it had (the same ledger entry), and the failed task is reported with its own
  error; its statements were all sent before the next task began, so the error is its own.

What a reader sees: the group's tables all at once at its COMMIT, up to GROUP_SECONDS
(or one task not known to be slow) later than one commit a task would show them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .adapters.base import Adapter
from .adapters.errors import AdapterError
from .executor import (
    Creating,
    Deadline,
    Redo,
    Stamp,
    TaskFailed,
    TaskResult,
    execute_with_timeout,
    failure,
    publish_held,
    timed_out,
)
from .plan import Task
from .scheduler import retry_wait

GROUP_TASKS = 10  # a tenth of the commits: 1.21x -> 1.11x the floor's CPU (bench_commits)
GROUP_SECONDS = 0.5  # what a kill -9 may cost in redone work, and readers in delay
IDLE_SECONDS = 0.01  # a worker without work this long commits (a hand-off takes ~0.1 ms)


class Group:
    """The tasks a worker holds in its open transaction, and what ends it: `commit`, or a
    failing task (`run`), which rolls it back and redoes the others one by one."""

    def __init__(
        self,
        root: Path,
        creating: Creating,
        stopped: Callable[[], bool],
        connect: Callable[[], Adapter],
        slow: Callable[[Task], bool] = lambda task: False,
    ):
        """`connect()`: the worker's connection, a new one when the last one broke."""
        self.root, self.creating, self.stopped, self.connect = root, creating, stopped, connect
        self.slow = slow
        self.adapter: Adapter | None = None
        self.held: list[tuple[Task, Stamp, TaskResult]] = []
        self._since = 0.0  # when the first held task began
        self._failed: set[str] = set()  # tasks whose redo failed, since the last commit

    def run(self, task: Task, stamp: Stamp, hold: bool, fresh: bool) -> TaskResult:
        """`task` in the open transaction: a success is `held` when `hold` allows it and
        the group is not due, else committed with the group; a failure rolls the
        transaction back. Either way the result `settles` the earlier tasks it ended.
        `fresh`: the task reads what other connections committed during the run, which
        an open transaction's snapshot (DuckDB's) may not show: it begins a new one."""
        adapter = self.connect()
        settles: tuple = ()
        if adapter is not self.adapter:  # a new connection: the open transaction is gone
            self.adapter = adapter
            settles = self._redo()
        if self._failed and any(u in self._failed for u in task.upstream):
            return replace(_not_redone(), settles=settles)
        try:  # it may ask the catalog: a failed statement ends the open transaction
            lock = self.creating.lock(adapter, task)
        except AdapterError as exc:
            adapter.rollback()
            settles += self._redo()
            return replace(failure(exc), settles=settles)
        if lock:
            lock.acquire()  # another worker may be creating the table: wait for its commit
            self.creating.created(adapter, task, done=False)
        try:
            # commit first: a new snapshot for what it reads and writes (a table another
            # worker created since the group began), or the group would wait for a task
            # known to be slow
            if self.held and (
                fresh
                or lock
                or self.creating.created_since(adapter, task, self._since)
                or self.slow(task)
            ):
                settles += self.commit()
            # held, or committed at its end (the others wait for a table it created)
            keep = hold and not lock and len(self.held) + 1 < GROUP_TASKS
            # its publish goes with the COMMIT unless it is kept, or its timeout must
            # cover it (a DROP or RENAME can wait for a reader's lock)
            result, grouped = self._publish(adapter, task, stamp, keep or bool(task.timeout))
            if not grouped:  # it failed, or ran alone: done
                return replace(result, settles=settles + result.settles)
            self.held.append((task, stamp, result))
            # an incremental table it altered (on_schema_change): the other workers
            # publishing intervals of it wait for that, as for a table it created
            altered = task.kind == "incremental" and adapter.changed(task.table)
            if keep and not altered and time.monotonic() - self._since < GROUP_SECONDS:
                return replace(result, held=True, settles=settles)
            done = self.commit()  # its statements go with the COMMIT when not `keep`
        finally:
            if lock:
                self.creating.created(adapter, task)
                lock.release()
        own = next(r for tid, r in done if tid == task.id)
        return replace(own, settles=settles + tuple(x for x in done if x[0] != task.id))

    def _publish(
        self, adapter: Adapter, task: Task, stamp: Stamp, send: bool
    ) -> tuple[TaskResult, bool]:
        """`task`'s write-audit-publish in the open transaction (begun here when the
        group is empty): (its result, whether it is in the open transaction); `send`:
        its last statements are sent now, not with a COMMIT right after it. A failed
        statement rolls the transaction back and redoes the held tasks (the result
        `settles` them); a failure that ended no statement (a failed check) drops what
        the task built and leaves the group as it was."""
        if not self.held:
            adapter.begin()
            self._since = time.monotonic()
        deadline = Deadline(adapter, task.timeout)
        started = time.monotonic()
        try:
            result = publish_held(adapter, task, self.root, stamp, send)
        except TaskFailed as exc:
            deadline.cancel()
            if self.held and task.kind != "swap":  # the transaction is still good
                try:
                    adapter.drop(task.temp)
                    return failure(exc), False
                except AdapterError:
                    pass  # then as any failed statement
            adapter.rollback()
            return replace(failure(exc), settles=self._redo()), False
        except (AdapterError, Redo) as exc:
            deadline.cancel()  # before the redo: it must not interrupt it
            # its own outcome first: a timeout's message counts its own time only
            own = timed_out(task, started) if deadline.fired else None
            adapter.rollback()
            settles = self._redo()
            if any(u in self._failed for u in task.upstream):
                own = _not_redone()
            elif isinstance(exc, Redo):
                own = execute_with_timeout(self.adapter, task, self.root, stamp, self.creating)
            elif own is None:
                own = failure(exc)
            return replace(own, settles=settles), False
        except Exception as exc:  # a bug in pipe: the group's tasks are not published
            deadline.cancel()
            adapter.rollback()
            bug = _bug(exc)
            held, self.held = self.held, []
            return replace(bug, settles=tuple((t.id, bug) for t, _, _ in held)), False
        finally:
            deadline.cancel()
        return result, True

    def commit(self) -> tuple:
        """COMMIT: the held tasks are done, (task id, result) each. A COMMIT that fails
        rolled them back: each is redone alone. Whatever happens, the group is empty
        after it (a bug: rolled back, and each held task failed with it)."""
        if not self.held:
            return ()
        assert self.adapter is not None
        try:
            self.adapter.commit()
        except AdapterError:
            return self._redo()
        except Exception as exc:
            self.adapter.rollback()
            held, self.held = self.held, []
            return tuple((t.id, _bug(exc)) for t, _, _ in held)
        held, self.held = self.held, []
        self._failed = set()
        return tuple((t.id, r) for t, _, r in held)

    def _redo(self) -> tuple:
        """The held tasks after their transaction ended without a COMMIT: each again in a
        transaction of its own, in the order they ran (an upstream before its downstream),
        and again after a retryable failure as its `retries` allow (the scheduler took
        them as done for their downstream; it does not retry them); one whose upstream
        failed here is not run."""
        held, self.held = self.held, []
        if not held:
            return ()
        try:
            self.adapter = self.connect()  # a new one when the failure broke it
        except AdapterError as exc:  # no connection: each fails, saying why
            self._failed.update(t.id for t, _, _ in held)
            return tuple((t.id, failure(exc)) for t, _, _ in held)
        out = []
        for task, stamp, _ in held:
            result = _not_redone()
            for attempt in range(1, task.retries + 2):
                if self.stopped():  # the second Ctrl-C: nothing more runs
                    result = TaskResult("failed", error="interrupted")
                    break
                if any(u in self._failed for u in task.upstream):
                    break
                if attempt > 1:  # a backoff, as the scheduler's between attempts
                    time.sleep(retry_wait(task.retry_delay, attempt - 1, random.random()))
                    self.adapter = self.connect()
                result = execute_with_timeout(self.adapter, task, self.root, stamp, self.creating)
                if result.status == "success" or not result.retryable:
                    break
            if result.status != "success":
                self._failed.add(task.id)
            out.append((task.id, result))
        return tuple(out)


def _bug(exc: Exception) -> TaskResult:
    return TaskResult(
        "failed",
        retryable=False,
        error=f"internal error (a bug in pipe, please report it): {type(exc).__name__}: {exc}",
    )


def _not_redone() -> TaskResult:
    return TaskResult(
        "failed",
        error="not run: an upstream task failed when its group's transaction was redone",
        retryable=False,
    )
