"""Run telemetry: queue wait, execution time and run records, checked against runs whose
timings are known by construction (a task's retry cannot be ready before its backoff)."""

from __future__ import annotations

import threading
import time

from pipe.intervals import Interval, from_iso
from pipe.plan import Task
from pipe.scheduler import Caps, Listener, Scheduler

DAY = Interval(from_iso("2026-06-01T00:00:00"), from_iso("2026-06-02T00:00:00"))


class Flaky:
    """Fails the first attempt of every task, then succeeds."""

    def __call__(self, t: Task, attempt: int):
        from pipe.executor import TaskResult

        time.sleep(0.01)  # a task's duration, not a synchronisation
        return TaskResult("failed", error="flaky") if attempt == 1 else TaskResult("success")


class Times(Listener):
    def __init__(self):
        self.lock = threading.Lock()
        self.started_at: dict[tuple[str, int], tuple[float, float]] = {}
        self.finished_at: dict[tuple[str, int], float] = {}

    def started(self, task, attempt, queued_at, started_at):
        with self.lock:
            self.started_at[(task.id, attempt)] = (queued_at, started_at)

    def finished(self, task, attempt, result, started_at, finished_at, final):
        with self.lock:
            self.finished_at[(task.id, attempt)] = finished_at


def test_a_retry_is_queued_when_its_backoff_ends_not_before():
    delay = 0.3
    tasks = [Task("a", "m.a", "full", DAY, (), "fp", "m.a", retries=1, retry_delay=delay)]
    times = Times()
    outcomes = Scheduler(tasks, Caps(1), Flaky(), listener=times).run()
    assert outcomes["a"].status == "success" and outcomes["a"].attempts == 2
    queued_2, started_2 = times.started_at[("a", 2)]
    # the backoff (delay, plus jitter) lies between attempt 1's end and attempt 2 being ready
    assert queued_2 >= times.finished_at[("a", 1)] + delay * 0.99
    assert started_2 >= queued_2
