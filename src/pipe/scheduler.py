"""Readiness, caps, retries and sensors: the scheduler alone decides what runs when.

A task is handed to a worker when every upstream task has succeeded (or was already
published and skipped) and every cap allows it: the global concurrency, its pool, its
model's `max_concurrency`. Workers only execute what they are handed and report back
through a queue; the scheduler thread is the only one that records anything, through
the `Listener` it was given. There is no batch barrier: a task starts as soon as a slot
frees and its upstream is done (a sliding window over intervals).

Sensors (a source's `wait_for`) are polled here between completions and hold no worker
slot; a poke answers with a `Poke`: ready, not yet, or failed (its query is wrong).
Retries wait `retry_delay * 2**(attempt-1)` seconds plus up to 25% jitter. A failed
task marks everything downstream `upstream_failed`; unrelated branches go on. `stop()`
(first Ctrl-C) starts nothing new and lets running tasks finish.

The boundary is typed: `work(task, attempt)` returns an executor `TaskResult`, a poke a
`Poke`, and the listener and the caller see frozen `Outcome`s. A worker that raises, or
returns anything else, fails its task as a bug in pipe (not retried).
"""

from __future__ import annotations

import heapq
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .executor import TaskResult
from .plan import Task


def retry_wait(delay: float, attempt: int, draw: float) -> float:
    """Seconds before retrying after failed attempt `attempt` (1, 2, ...):
    `delay * 2**(attempt-1)` plus up to 25% jitter; `draw` is uniform in [0, 1)."""
    return delay * 2 ** (attempt - 1) * (1 + 0.25 * draw)


@dataclass(frozen=True)
class Caps:
    """The concurrency of a run, and of each pool."""

    concurrency: int
    pools: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """A task's outcome as the scheduler settled it."""

    status: str = "pending"  # success | skipped | failed | upstream_failed | not_run
    reason: str | None = None
    attempts: int = 0
    result: TaskResult | None = None  # the last attempt's


@dataclass(frozen=True)
class Poke:
    """A sensor's answer. Not ready: `error` says why the condition could not be read yet
    (its table is not there yet). Failed: the sensor's query itself is wrong; it fails
    with `error` at once instead of waiting for its timeout."""

    ready: bool
    error: str | None = None
    failed: bool = False


Work = Callable[[Task, int], TaskResult]
Poker = Callable[[Task], Poke]


@dataclass(frozen=True)
class Grouping:
    """Workers that hold tasks in an open transaction (groupcommit.py). A worker that
    finds no work for `idle` seconds calls `commit()` on its own thread: it commits what
    it holds and returns (task id, TaskResult) of each task it held."""

    commit: Callable[[], tuple]
    idle: float


class Listener:
    """What the scheduler tells the world; the runner records state and prints."""

    def started(self, task: Task, attempt: int, queued_at: float, started_at: float) -> None: ...

    def finished(
        self,
        task: Task,
        attempt: int,
        result: TaskResult,
        started_at: float,
        finished_at: float,
        final: bool,
    ) -> None: ...

    def settled(self, task: Task, outcome: Outcome) -> None: ...

    def idle(self) -> float | None:
        """Called before the scheduler blocks waiting: a good moment to commit. May return
        seconds after which it wants to be called again (a commit it put off)."""


class Pool(Protocol):
    """Where tasks run: `Workers`, or a concurrent.futures executor (tests pass one)."""

    def submit(self, fn: Callable, /, *args) -> object: ...

    def shutdown(self, wait: bool = True) -> None: ...


class Workers:
    """At most `size` worker threads, each started when a task finds none idle (as
    ThreadPoolExecutor starts them: a worker keeps its warehouse connection between
    tasks), ended by `shutdown`. Not concurrent.futures': importing it imports logging,
    a tenth of `pipe run`'s imports before its first task."""

    def __init__(self, size: int, name: str, on_idle: tuple[float, Callable] | None = None):
        """`on_idle`: (seconds, fn): a worker that waited that long for work calls fn()."""
        self.size, self.name, self._on_idle = size, name, on_idle
        # a timed get needs queue.Queue: SimpleQueue.get(timeout=...) of CPython 3.11 can
        # block for good when another worker takes the item it woke for (its deadline,
        # once past, becomes an endless wait)
        self._work: queue.SimpleQueue | queue.Queue = (
            queue.Queue() if on_idle else queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)  # released by a worker waiting for work
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable, /, *args) -> None:
        self._work.put((fn, args))
        if not self._idle.acquire(blocking=False) and len(self._threads) < self.size:
            t = threading.Thread(target=self._loop, name=f"{self.name}_{len(self._threads)}")
            t.start()
            self._threads.append(t)

    def _loop(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)  # Scheduler._worker: reports everything, raises nothing
            except BaseException:  # noqa: BLE001 - said, and the worker lives on
                threading.excepthook(threading.ExceptHookArgs((*sys.exc_info(), None)))
            finally:
                self._idle.release()

    def _next(self):
        if self._on_idle is None:
            return self._work.get()
        seconds, fn = self._on_idle
        try:
            return self._work.get(timeout=seconds)
        except queue.Empty:
            pass
        try:
            fn()  # Scheduler._idle_commit: reports everything, raises nothing
        except BaseException:  # noqa: BLE001 - said, and the worker lives on
            threading.excepthook(threading.ExceptHookArgs((*sys.exc_info(), None)))
        return self._work.get()

    def shutdown(self, wait: bool = True) -> None:
        for _ in self._threads:
            self._work.put(None)
        if wait:
            for t in self._threads:
                t.join()


# a worker's report to the scheduler thread: (task, attempt, result, started_at,
# finished_at, the worker's thread ident); a plain tuple, built once a task on the
# worker's thread. Task None: an idle worker's commit (Grouping)
_Report = tuple[Task | None, int, TaskResult, float, float, int]


def _crash(text: str) -> TaskResult:
    return TaskResult("failed", error=f"internal error: {text}", retryable=False)


class Scheduler:
    """Runs once: `run()` hands every task to `work` as caps and upstream allow and
    returns each task's `Outcome`. Its mutable bookkeeping lives on the instance and is
    touched only by the thread that called `run()`; a task's frozen Outcome is built when
    it settles (and for the caller at the end), not at every change."""

    def __init__(
        self,
        tasks: Sequence[Task],
        caps: Caps,
        work: Work,
        *,
        done: Collection[str] = frozenset(),
        priority: Callable[[Task], object] | None = None,
        poke: Poker | None = None,
        listener: Listener | None = None,
        workers: Pool | None = None,
        blocked: dict[str, str] | None = None,
        grouping: Grouping | None = None,
    ):
        self.tasks = {t.id: t for t in tasks}
        self.caps = caps
        self.work = work
        self.poke = poke
        self.listener = listener or Listener()
        self._pool = workers
        order = {t.id: i for i, t in enumerate(tasks)}
        self.priority = priority or (lambda t: order[t.id])
        self._stop = threading.Event()
        # the C queue: a worker's report wakes this thread without Queue's Python-level
        # Condition (the hand-off between two tasks is on a c1 run's critical path)
        self._done_q: queue.SimpleQueue[_Report] = queue.SimpleQueue()
        self._blocked = dict(blocked or {})  # task id -> why it cannot run (fails it)
        # each task's outcome so far, in parts (see outcome())
        self._status: dict[str, str] = dict.fromkeys(self.tasks, "pending")
        self._reason: dict[str, str | None] = {}
        self._attempts: dict[str, int] = dict.fromkeys(self.tasks, 0)
        self._result: dict[str, TaskResult] = {}
        self._settled: dict[str, Outcome] = {}  # as the listener was told
        for tid in done:
            if tid in self._status:
                self._status[tid] = "skipped"
        # the loop's bookkeeping (set up by run)
        self._downstream: dict[str, list[str]] = {tid: [] for tid in self.tasks}
        self._remaining: dict[str, int] = {}
        self._ready: list = []  # heap of (priority, seq, task id)
        self._seq = 0
        self._queued_at: dict[str, float] = {}
        self._sensors: list[str] = []  # due sensor pokes: they take no worker slot
        self._delayed: list = []  # heap of (due, task id): retries and sensor pokes
        self._sensor_since: dict[str, float] = {}
        self._running = 0
        self._pool_used: dict[str, int] = {}
        self._model_used: dict[str, int] = {}
        self._parked_pool: dict[str, list[str]] = {}
        self._parked_model: dict[str, list[str]] = {}
        # tasks a worker holds, done only once its group commits: id -> (attempt,
        # started_at, finished_at, the worker's thread ident); their downstream may run
        # meanwhile (on the same worker: groupcommit.py)
        self.grouping = grouping
        self._held: dict[str, tuple[int, float, float, int]] = {}

    def stop(self) -> None:
        self._stop.set()

    def outcome(self, tid: str) -> Outcome:
        return Outcome(
            self._status[tid], self._reason.get(tid), self._attempts[tid], self._result.get(tid)
        )

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ---------------------------------------------------------------- the loop
    def run(self) -> dict[str, Outcome]:
        self._prepare()
        own_pool = self._pool is None
        g = self.grouping
        idle = (g.idle, self._idle_commit) if g else None
        pool = self._pool or Workers(self.caps.concurrency, "pipe-worker", idle)
        try:
            while True:
                if self._delayed:
                    self._release_delayed()
                self._fill(pool)
                # (held tasks: the idle workers commit them, and say so)
                if (
                    self._running == 0
                    and not self._held
                    and (self._stop.is_set() or not self._delayed)
                ):
                    break  # nothing runs and nothing more can start
                report = self._next_report()
                if report is not None:
                    self._handle(report, pool)
        finally:
            if own_pool:
                pool.shutdown(wait=True)
        reason = "interrupted" if self._stop.is_set() else "not reached"
        for tid, status in self._status.items():
            if status == "pending":
                self._status[tid], self._reason[tid] = "not_run", reason
        self.listener.idle()
        settled = self._settled
        return {tid: settled.get(tid) or self.outcome(tid) for tid in self.tasks}

    def _prepare(self) -> None:
        """Count each task's unfinished upstream, queue the ready ones, fail the blocked."""
        status = self._status
        for t in self.tasks.values():
            n = 0
            for u in t.upstream:
                if u in self.tasks:
                    self._downstream[u].append(t.id)
                    if status[u] != "skipped":
                        n += 1
            self._remaining[t.id] = n
        for tid in self.tasks:
            if status[tid] == "pending" and self._remaining[tid] == 0:
                self._push(tid)
        for tid, reason in sorted(self._blocked.items()):
            if status[tid] == "pending":
                self._settle(tid, "failed", reason)
        self._ready[:] = [r for r in self._ready if status[r[2]] == "pending"]
        heapq.heapify(self._ready)
        self._sensors[:] = [tid for tid in self._sensors if status[tid] == "pending"]

    def _release_delayed(self) -> None:
        """Retries whose backoff ended and sensors due for a poke become ready."""
        delayed, tnow = self._delayed, time.monotonic()
        while delayed and delayed[0][0] <= tnow and not self._stop.is_set():
            _, tid = heapq.heappop(delayed)
            # a retry is ready again only now: its backoff and earlier attempts are no
            # queue wait
            self._queued_at.pop(tid, None)
            self._push(tid)

    def _next_report(self) -> _Report | None:
        """The next worker report; None when it is time to look at the delayed ones."""
        try:
            return self._done_q.get_nowait()
        except queue.Empty:
            pass
        again = self.listener.idle()
        wait = max(0.0, self._delayed[0][0] - time.monotonic()) if self._delayed else None
        if again is not None:
            wait = again if wait is None else min(wait, again)
        try:
            # waits for a worker to report, or for the next retry/poke time
            return self._done_q.get(timeout=wait)
        except queue.Empty:
            return None

    def _handle(self, report: _Report, pool: Pool) -> None:
        t, attempt, result, started_at, finished_at, worker = report
        if t is None:  # an idle worker's commit: it holds nothing more
            self._settle_held(result, worker)
            return
        self._release(t)
        if result.settles:
            self._settle_held(result)
            if self._status[t.id] != "pending":  # a held upstream's redo failed: settled
                self._result[t.id] = result
                self._not_done(t, attempt, started_at, finished_at, self._reason.get(t.id))
                return
        self._result[t.id] = result
        if result.status == "success":
            # the worker that reported is idle: hand it the next task first, then
            # record, while it runs (a worker waited ~7% of a c1 run on this)
            self._unblock_downstream(t.id)
            self._status[t.id] = "success"
            if result.held:
                assert self.grouping is not None, "a held result without a Grouping"
                self._held[t.id] = (attempt, started_at, finished_at, worker)
                self._fill(pool)
                return
            self._fill(pool)
            self.listener.finished(t, attempt, result, started_at, finished_at, True)
            o = self._settled[t.id] = Outcome("success", None, self._attempts[t.id], result)
            self.listener.settled(t, o)
        elif why := self._failed_upstream(t):  # it ran on a held upstream whose redo failed
            self._not_done(t, attempt, started_at, finished_at, why)
            self._settle(t.id, "upstream_failed", why)
        elif result.retryable and attempt <= t.retries and not self._stop.is_set():
            self.listener.finished(t, attempt, result, started_at, finished_at, False)
            delay = retry_wait(t.retry_delay, attempt, random.random())
            heapq.heappush(self._delayed, (time.monotonic() + delay, t.id))
        else:
            self.listener.finished(t, attempt, result, started_at, finished_at, True)
            self._settle(t.id, "failed", result.error)

    # ---------------------------------------------------------------- group commit
    def _idle_commit(self) -> None:
        """On a worker's thread, after it found no work for a while: commit what it
        holds, reported as a task-less report (after which it holds nothing)."""
        started = time.time()
        try:
            result = TaskResult("success", settles=self.grouping.commit())
        except BaseException as exc:  # noqa: BLE001 - the held tasks fail, said
            result = _crash(f"{type(exc).__name__}: {exc}")
        self._done_q.put((None, 0, result, started, time.time(), threading.get_ident()))

    def _settle_held(self, result: TaskResult, worker: int | None = None) -> None:
        """Settle the held tasks `result` names: done, or failed when redone. After an
        idle commit, `worker` holds nothing: a task of its still held here was lost by
        a bug in pipe (or the commit raised), and fails rather than wait forever."""
        for tid, res in result.settles:
            if tid in self._held:
                self._settle_one(tid, res)
        if worker is not None:
            lost = result if result.status == "failed" else _crash("its worker's group lost it")
            for tid in [tid for tid, h in self._held.items() if h[3] == worker]:
                self._settle_one(tid, lost)

    def _settle_one(self, tid: str, res: TaskResult) -> None:
        attempt, started_at, finished_at, _ = self._held.pop(tid)
        t = self.tasks[tid]
        self._result[tid] = res
        if res.status == "success":
            self.listener.finished(t, attempt, res, started_at, finished_at, True)
            o = self._settled[tid] = Outcome("success", None, self._attempts[tid], res)
            self.listener.settled(t, o)
        elif why := self._failed_upstream(t):
            self._not_done(t, attempt, started_at, finished_at, why)
            self._settle(tid, "upstream_failed", why)
        else:
            self.listener.finished(t, attempt, res, started_at, finished_at, True)
            self._settle(tid, "failed", res.error)

    def _not_done(self, t: Task, attempt: int, started: float, finished: float, why) -> None:
        """Close the attempt of a task that ran on a held upstream whose redo failed: it
        is upstream_failed (the console prints its SKIP line, not a FAIL)."""
        shown = TaskResult("upstream_failed", error=why)
        self.listener.finished(t, attempt, shown, started, finished, True)

    def _failed_upstream(self, t: Task) -> str | None:
        """'upstream X failed' when an upstream task of `t` failed: after a held task's
        redo failed, a downstream task that ran on it is not done either."""
        if self.grouping is None:
            return None
        for u in t.upstream:
            if self._status.get(u) in ("failed", "upstream_failed"):
                return f"upstream {self.tasks[u].model} failed"
        return None

    # ---------------------------------------------------------------- bookkeeping
    def _push(self, tid: str) -> None:
        task = self.tasks[tid]
        if task.kind == "sensor":
            self._sensors.append(tid)
            return
        self._seq += 1
        heapq.heappush(self._ready, (self.priority(task), self._seq, tid))
        self._queued_at.setdefault(tid, time.time())

    def _unblock_downstream(self, tid: str) -> None:
        remaining, status = self._remaining, self._status
        for d in self._downstream[tid]:
            remaining[d] -= 1
            if remaining[d] == 0 and status[d] == "pending":
                self._push(d)

    def _settle(self, tid: str, status: str, reason: str | None = None) -> None:
        self._status[tid], self._reason[tid] = status, reason
        o = self._settled[tid] = self.outcome(tid)
        self.listener.settled(self.tasks[tid], o)
        if status == "success":
            self._unblock_downstream(tid)
        elif status in ("failed", "upstream_failed"):
            why = f"upstream {self.tasks[tid].model} failed"
            stack = list(self._downstream[tid])
            while stack:
                d = stack.pop()
                if self._status[d] == "pending":
                    self._status[d], self._reason[d] = "upstream_failed", why
                    o = self._settled[d] = self.outcome(d)
                    self.listener.settled(self.tasks[d], o)
                    stack.extend(self._downstream[d])

    def _fill(self, pool: Pool) -> None:
        # sensors first, whatever the slots: polling one holds no worker
        while self._sensors and not self._stop.is_set():
            self._poke(self.tasks[self._sensors.pop(0)])
        ready, caps = self._ready, self.caps
        while ready and self._running < caps.concurrency and not self._stop.is_set():
            _, _, tid = heapq.heappop(ready)
            if self._status[tid] != "pending":  # failed since it was queued (a group's redo)
                continue
            t = self.tasks[tid]
            if t.pool and self._pool_used.get(t.pool, 0) >= caps.pools.get(t.pool, 1 << 30):
                self._parked_pool.setdefault(t.pool, []).append(tid)
                continue
            if t.max_concurrency and self._model_used.get(t.model, 0) >= t.max_concurrency:
                self._parked_model.setdefault(t.model, []).append(tid)
                continue
            self._submit(t, pool)

    def _submit(self, t: Task, pool: Pool) -> None:
        attempt = self._attempts[t.id] = self._attempts[t.id] + 1
        self._running += 1
        if t.pool:
            self._pool_used[t.pool] = self._pool_used.get(t.pool, 0) + 1
        if t.max_concurrency:
            self._model_used[t.model] = self._model_used.get(t.model, 0) + 1
        started = time.time()
        pool.submit(self._worker, t, attempt, started)
        # recorded while the worker starts: its report is handled on this thread, so
        # never before this returns
        self.listener.started(t, attempt, self._queued_at.get(t.id, started), started)

    def _release(self, t: Task) -> None:
        self._running -= 1
        if t.pool:
            self._pool_used[t.pool] -= 1
            for p in self._parked_pool.pop(t.pool, ()):
                self._push(p)
        if t.max_concurrency:
            self._model_used[t.model] -= 1
            for p in self._parked_model.pop(t.model, ()):
                self._push(p)

    # ---------------------------------------------------------------- workers, sensors
    def _worker(self, task: Task, attempt: int, started: float) -> None:
        """On a worker thread: always reports a TaskResult, or the scheduler would wait
        for it forever (a bug in the work function fails its task, not the run)."""
        try:
            result = self.work(task, attempt)
            if not isinstance(result, TaskResult):
                result = _crash(f"the work of {task.id} returned {type(result).__name__}")
        except BaseException as exc:  # noqa: BLE001 - reported as the task's failure
            result = _crash(f"{type(exc).__name__}: {exc}")
        self._done_q.put((task, attempt, result, started, time.time(), threading.get_ident()))

    def _poke(self, t: Task) -> None:
        first = self._sensor_since.setdefault(t.id, time.monotonic())
        try:
            answer = self.poke(t) if self.poke else Poke(True)
        except Exception as exc:  # noqa: BLE001 - a bug in the poke: the sensor fails, said
            answer = Poke(False, f"internal error: {type(exc).__name__}: {exc}", failed=True)
        if answer.ready:
            self._attempts[t.id] += 1
            self._settle(t.id, "success")
            return
        if answer.failed:  # no attempt: a poke is not a run of the task
            self._settle(t.id, "failed", answer.error)
            return
        waited = time.monotonic() - first
        if waited >= (t.wait_timeout or 0):
            last = f" (last error: {answer.error})" if answer.error else ""
            self._settle(t.id, "failed", f"sensor timed out after {waited:.0f}s{last}")
            return
        due = time.monotonic() + min(t.poke_every or 30.0, max(0.0, t.wait_timeout - waited))
        heapq.heappush(self._delayed, (due, t.id))
