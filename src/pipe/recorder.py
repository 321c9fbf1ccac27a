"""What a run tells the world as it goes: the `Reporter` hooks the console implements,
the `Recorder` that turns scheduler events into state-store rows (batched commits), and
the `Stamper` that gives each task's publish its ledger stamp.

The recorder runs on the scheduler thread only; the stamper is shared with the workers
(a task's publish becomes current for its downstream tasks before they start).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from .decide import Decision
from .executor import Stamp, TaskResult
from .intervals import iso
from .ledger import Entry, Key, Read
from .plan import Task
from .scheduler import Listener, Outcome
from .state import StateStore


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


class Recorder(Listener):
    """Scheduler events -> state store (batched commits) and the reporter."""

    def __init__(
        self,
        state: StateStore,
        run_id: int,
        target: str,
        reporter: Reporter,
        current: dict[Key, Entry],
        why: Mapping[str, str],
        later: Callable[[], object] | None = None,
    ):
        """`later`: state-store work the start put off (its mirror of the ledger), done
        in a transaction of its own once the first task is handed out, before anything
        of the run's tasks is recorded as finished."""
        self.state, self.run_id, self.target, self.reporter = state, run_id, target, reporter
        self.current, self.why = current, why
        self._later = later
        self.last_commit = 0.0  # the first commit is not put off
        self.started_at: dict[str, float] = {}
        self.running = 0
        state.begin()

    def started(self, task, attempt, queued_at, started_at):
        self.running += 1
        self.state.attempt_started(self.run_id, task.id, attempt, task.key, queued_at, started_at)
        self.reporter.task_started(task, attempt)
        if self._later is not None:
            self._catch_up()
        self._maybe_commit()

    def _catch_up(self) -> None:
        """The put-off work (`later`), between two transactions of the recorder's."""
        later, self._later = self._later, None
        if later is not None:
            self.state.commit()
            try:
                later()
            finally:  # the recorder's transaction goes on whatever `later` raised
                self.state.begin()

    def finished(self, task, attempt, result, started_at, finished_at, final):
        self._catch_up()
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
            types = {c.name: c.type for c in task.checks}
            self.state.check_results(self.run_id, task.id, attempt, task.key, result.checks, types)
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
        self._catch_up()
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
        self._catch_up()
        due = self.last_commit + COMMIT_EVERY - time.monotonic()
        if due > 0:
            return due
        self.state.commit()
        self.state.begin()
        self.last_commit = time.monotonic()
        return None

    def close(self):
        self._catch_up()
        self.state.commit()


class Stamper:
    """The ledger stamp of each task as it starts: a version newer than any before it,
    the upstream publishes it reads (as they are now: upstream tasks of this command have
    published already), and whether its data may be incomplete."""

    def __init__(self, context: Mapping[str, Task], current: dict[Key, Entry], decision: Decision):
        self.context, self.current, self.partial = context, current, decision.partial
        self.stand_in = decision.stand_in  # unpublished full/view key -> the build read
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
            key = self.stand_in.get(key, key) if key not in self.current else key
            entry = self.current.get(key)
            if entry is not None:
                reads.append(Read(key, entry.published_at))
                partial = partial or entry.partial
        return Stamp(self.version(), tuple(reads), partial, task.key in self.current)
