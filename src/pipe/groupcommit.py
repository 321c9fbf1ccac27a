"""Group commit: at `--concurrency 1` the one worker runs several tasks in one transaction.

A COMMIT costs DuckDB or Postgres about a tenth of a small model's time (the log's write
and sync, the catalog's bookkeeping: docs/benchmarks.md). With one worker every task runs
on one connection, and a task's downstream reads what the task published before it is
committed, as it reads its own. So the worker keeps its transaction open from one task to
the next, and the scheduler asks for the COMMIT (`Group.commit`, through its `Grouping`)
after GROUP_TASKS tasks or GROUP_SECONDS, and whenever it has nothing to hand out (a
retry's backoff, a sensor's wait, a stop, the run's end).

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
(or one long task) later than one commit a task would show them.
"""

from __future__ import annotations

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

GROUP_TASKS = 10  # a tenth of the commits: 1.21x -> 1.11x the floor's CPU (bench_commits)
GROUP_SECONDS = 0.5  # what a kill -9 may cost in redone work, and readers in delay


class Group:
    """The tasks a worker holds in its open transaction, and what ends it: `commit`, or a
    failing task (`run`), which rolls it back and redoes the others one by one."""

    def __init__(
        self,
        root: Path,
        creating: Creating,
        stopped: Callable[[], bool],
        connect: Callable[[], Adapter],
    ):
        """`connect()`: the worker's connection, a new one when the last one broke."""
        self.root, self.creating, self.stopped, self.connect = root, creating, stopped, connect
        self.adapter: Adapter | None = None
        self.held: list[tuple[Task, Stamp, TaskResult]] = []
        self._failed: set[str] = set()  # tasks whose redo failed, since the last commit

    def run(self, task: Task, stamp: Stamp) -> TaskResult:
        """`task` in the open transaction: a success is `held`; a failure rolls the
        transaction back and says how each earlier task's redo ended (`settles`)."""
        adapter = self.connect()
        settles: tuple = ()
        if adapter is not self.adapter:  # a new connection: the open transaction is gone
            self.adapter = adapter
            settles = self._redo()
        if self._failed and any(u in self._failed for u in task.upstream):
            return replace(_not_redone(), settles=settles)
        if not self.held:
            adapter.begin()
        deadline = Deadline(adapter, task.timeout)
        started = time.monotonic()
        try:
            result = publish_held(adapter, task, self.root, stamp)
        except (TaskFailed, AdapterError, Redo) as exc:
            deadline.cancel()
            adapter.rollback()
            settles += self._redo()
            if any(u in self._failed for u in task.upstream):
                own = _not_redone()
            elif isinstance(exc, Redo):
                own = execute_with_timeout(self.adapter, task, self.root, stamp, self.creating)
            elif deadline.fired:
                own = timed_out(task, started)
            else:
                own = failure(exc)
            return replace(own, settles=settles)
        except BaseException:
            deadline.cancel()
            adapter.rollback()  # a bug in pipe: the group's tasks are not published (the
            self.held = []  # scheduler fails the ones no commit settles)
            raise
        deadline.cancel()
        self.held.append((task, stamp, result))
        return replace(result, held=True, settles=settles)

    def commit(self) -> tuple:
        """COMMIT: the held tasks are done, (task id, result) each. A COMMIT that fails
        rolled them back: each is redone alone."""
        if not self.held:
            return ()
        assert self.adapter is not None
        try:
            self.adapter.commit()
        except AdapterError:
            return self._redo()
        held, self.held = self.held, []
        self._failed = set()
        return tuple((t.id, r) for t, _, r in held)

    def _redo(self) -> tuple:
        """The held tasks after their transaction ended without a COMMIT: each again in a
        transaction of its own, in the order they ran (an upstream before its downstream);
        one whose upstream failed here is not run."""
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
            if self.stopped():  # the second Ctrl-C: nothing more runs
                result = TaskResult("failed", error="interrupted")
            elif any(u in self._failed for u in task.upstream):
                result = _not_redone()
            else:
                result = execute_with_timeout(self.adapter, task, self.root, stamp, self.creating)
            if result.status != "success":
                self._failed.add(task.id)
            out.append((task.id, result))
        return tuple(out)


def _not_redone() -> TaskResult:
    return TaskResult(
        "failed",
        error="not run: an upstream task failed when its group's transaction was redone",
        retryable=False,
    )
