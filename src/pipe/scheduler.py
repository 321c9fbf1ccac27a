"""Readiness, caps, retries and sensors: the scheduler alone decides what runs when.

A task is handed to a worker when every upstream task has succeeded (or was already
published and skipped) and every cap allows it: the global concurrency, its pool, its
model's `max_concurrency`. Workers only execute what they are handed and report back
through a queue; the scheduler thread is the only one that records anything, through
the `Listener` it was given. There is no batch barrier: a task starts as soon as a slot
frees and its upstream is done (a sliding window over intervals).

Sensors (a source's `wait_for`) are polled here between completions and hold no worker
slot. Retries wait `retry_delay * 2**(attempt-1)` seconds plus up to 25% jitter. A failed
task marks everything downstream `upstream_failed`; unrelated branches go on. `stop()`
(first Ctrl-C) starts nothing new and lets running tasks finish.
"""

from __future__ import annotations

import heapq
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Caps:
    concurrency: int
    pools: dict[str, int] = field(default_factory=dict)


@dataclass
class Outcome:
    status: str = "pending"  # success | skipped | failed | upstream_failed | not_run
    reason: str | None = None
    attempts: int = 0
    result: object = None


class Listener:
    """What the scheduler tells the world; the runner records state and prints."""

    def started(self, task, attempt: int, queued_at: float, started_at: float) -> None: ...

    def finished(
        self, task, attempt: int, result, started_at: float, finished_at: float, final: bool
    ) -> None: ...

    def settled(self, task, outcome: Outcome) -> None: ...

    def idle(self) -> float | None:
        """Called before the scheduler blocks waiting: a good moment to commit. May return
        seconds after which it wants to be called again (a commit it put off)."""


class Scheduler:
    def __init__(
        self,
        tasks: Sequence,
        caps: Caps,
        work: Callable,
        *,
        done: set[str] = frozenset(),
        priority: Callable | None = None,
        poke: Callable | None = None,
        listener: Listener | None = None,
        workers: ThreadPoolExecutor | None = None,
        blocked: dict[str, str] | None = None,
    ):
        self.tasks = {t.id: t for t in tasks}
        self.caps = caps
        self.work = work  # work(task, attempt) -> result with .status and .retryable
        self.poke = poke
        self.listener = listener or Listener()
        self._pool = workers
        order = {t.id: i for i, t in enumerate(tasks)}
        self.priority = priority or (lambda t: order[t.id])
        self.outcomes: dict[str, Outcome] = {tid: Outcome() for tid in self.tasks}
        self._stop = threading.Event()
        self._done_q: queue.Queue = queue.Queue()
        self._blocked = dict(blocked or {})  # task id -> why it cannot run (fails it)
        for tid in done:
            if tid in self.outcomes:
                self.outcomes[tid].status = "skipped"

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ---------------------------------------------------------------- the loop
    def run(self) -> dict[str, Outcome]:
        tasks, outcomes = self.tasks, self.outcomes
        downstream: dict[str, list[str]] = {tid: [] for tid in tasks}
        remaining: dict[str, int] = {}
        for t in tasks.values():
            n = 0
            for u in t.upstream:
                if u in tasks:
                    downstream[u].append(t.id)
                    if outcomes[u].status != "skipped":
                        n += 1
            remaining[t.id] = n
        ready: list = []
        seq = 0
        now = time.monotonic
        queued_at: dict[str, float] = {}

        sensors: list[str] = []  # due sensor pokes: they take no worker slot

        def push(tid: str) -> None:
            nonlocal seq
            if tasks[tid].kind == "sensor":
                sensors.append(tid)
                return
            seq += 1
            heapq.heappush(ready, (self.priority(tasks[tid]), seq, tid))
            queued_at.setdefault(tid, time.time())

        for tid in tasks:
            if outcomes[tid].status == "pending" and remaining[tid] == 0:
                push(tid)

        running = 0
        pool_used: dict[str, int] = {}
        model_used: dict[str, int] = {}
        parked_pool: dict[str, list[str]] = {}
        parked_model: dict[str, list[str]] = {}
        delayed: list = []  # (due, task id): retries and sensor pokes
        sensor_since: dict[str, float] = {}
        own_pool = self._pool is None
        pool = self._pool or ThreadPoolExecutor(
            max_workers=self.caps.concurrency, thread_name_prefix="pipe-worker"
        )
        pools_cap = self.caps.pools

        def settle(tid: str, status: str, reason: str | None = None) -> None:
            o = outcomes[tid]
            o.status, o.reason = status, reason
            self.listener.settled(tasks[tid], o)
            if status == "success":
                for d in downstream[tid]:
                    remaining[d] -= 1
                    if remaining[d] == 0 and outcomes[d].status == "pending":
                        push(d)
            elif status == "failed":
                stack = list(downstream[tid])
                while stack:
                    d = stack.pop()
                    if outcomes[d].status == "pending":
                        outcomes[d].status = "upstream_failed"
                        outcomes[d].reason = f"upstream {tasks[tid].model} failed"
                        self.listener.settled(tasks[d], outcomes[d])
                        stack.extend(downstream[d])

        def release(t) -> None:
            nonlocal running
            running -= 1
            if t.pool:
                pool_used[t.pool] -= 1
                for p in parked_pool.pop(t.pool, ()):
                    push(p)
            if t.max_concurrency:
                model_used[t.model] -= 1
                for p in parked_model.pop(t.model, ()):
                    push(p)

        def submit(tid: str) -> None:
            nonlocal running
            t = tasks[tid]
            o = outcomes[tid]
            o.attempts += 1
            attempt = o.attempts
            running += 1
            if t.pool:
                pool_used[t.pool] = pool_used.get(t.pool, 0) + 1
            if t.max_concurrency:
                model_used[t.model] = model_used.get(t.model, 0) + 1
            started = time.time()
            self.listener.started(t, attempt, queued_at.get(tid, started), started)
            pool.submit(self._worker, t, attempt, started)

        def fill() -> None:
            # sensors first, whatever the slots: polling one holds no worker
            while sensors and not self._stop.is_set():
                self._poke(tasks[sensors.pop(0)], settle, delayed, sensor_since)
            while ready and running < self.caps.concurrency and not self._stop.is_set():
                _, _, tid = heapq.heappop(ready)
                t = tasks[tid]
                if t.pool and pool_used.get(t.pool, 0) >= pools_cap.get(t.pool, 1 << 30):
                    parked_pool.setdefault(t.pool, []).append(tid)
                    continue
                if t.max_concurrency and model_used.get(t.model, 0) >= t.max_concurrency:
                    parked_model.setdefault(t.model, []).append(tid)
                    continue
                submit(tid)

        for tid, reason in sorted(self._blocked.items()):
            if outcomes[tid].status == "pending":
                settle(tid, "failed", reason)
        ready[:] = [r for r in ready if outcomes[r[2]].status == "pending"]
        heapq.heapify(ready)
        sensors[:] = [tid for tid in sensors if outcomes[tid].status == "pending"]

        try:
            while True:
                tnow = now()
                while delayed and delayed[0][0] <= tnow and not self._stop.is_set():
                    _, tid = heapq.heappop(delayed)
                    queued_at.pop(tid, None)  # a retry is ready again only now: its backoff
                    push(tid)  # and earlier attempts are no queue wait
                fill()
                if running == 0 and (self._stop.is_set() or not delayed):
                    break  # nothing runs and nothing more can start
                try:
                    item = self._done_q.get_nowait()
                except queue.Empty:
                    again = self.listener.idle()
                    wait = max(0.0, delayed[0][0] - now()) if delayed else None
                    if again is not None:
                        wait = again if wait is None else min(wait, again)
                    try:
                        # waits for a worker to report, or for the next retry/poke time
                        item = self._done_q.get(timeout=wait)
                    except queue.Empty:
                        continue
                t, attempt, result, started, finished = item
                release(t)
                o = outcomes[t.id]
                o.result = result
                if result.status == "success":
                    # the worker that reported is idle: hand it the next task first, then
                    # record, while it runs (a worker waited ~7% of a c1 run on this)
                    for d in downstream[t.id]:
                        remaining[d] -= 1
                        if remaining[d] == 0 and outcomes[d].status == "pending":
                            push(d)
                    o.status = "success"
                    fill()
                    self.listener.finished(t, attempt, result, started, finished, True)
                    self.listener.settled(t, o)
                elif (
                    getattr(result, "retryable", True)
                    and attempt <= t.retries
                    and not self._stop.is_set()
                ):
                    self.listener.finished(t, attempt, result, started, finished, False)
                    delay = t.retry_delay * 2 ** (attempt - 1) * (1 + random.uniform(0, 0.25))
                    heapq.heappush(delayed, (now() + delay, t.id))
                else:
                    self.listener.finished(t, attempt, result, started, finished, True)
                    settle(t.id, "failed", result.error)
        finally:
            if own_pool:
                pool.shutdown(wait=True)
        for o in outcomes.values():
            if o.status == "pending":
                o.status = "not_run"
                o.reason = "interrupted" if self._stop.is_set() else "not reached"
        self.listener.idle()
        return outcomes

    def _worker(self, task, attempt: int, started: float) -> None:
        try:
            result = self.work(task, attempt)
        except BaseException as exc:  # a bug in the worker must not hang the scheduler
            result = _Crash(f"internal error: {type(exc).__name__}: {exc}")
        self._done_q.put((task, attempt, result, started, time.time()))

    def _poke(self, t, settle, delayed, sensor_since) -> None:
        first = sensor_since.setdefault(t.id, time.monotonic())
        try:
            ok = bool(self.poke(t)) if self.poke else True
            error = None
        except Exception as exc:  # a failing sensor query counts as "not yet"
            ok, error = False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if ok:
            self.outcomes[t.id].attempts += 1
            settle(t.id, "success")
            return
        waited = time.monotonic() - first
        if waited >= (t.wait_timeout or 0):
            settle(
                t.id,
                "failed",
                f"sensor timed out after {waited:.0f}s"
                + (f" (last error: {error})" if error else ""),
            )
            return
        due = time.monotonic() + min(t.poke_every or 30.0, max(0.0, t.wait_timeout - waited))
        heapq.heappush(delayed, (due, t.id))


@dataclass(frozen=True)
class _Crash:
    error: str
    status: str = "failed"
    retryable: bool = False
