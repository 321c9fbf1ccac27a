"""The scheduler: caps are never exceeded (asserted from the start and finish times a real
run records in .pipe/state.db), depends_on_past runs intervals in order, sensors poke
without a worker slot, stop() lets running tasks finish, a crashing worker fails its task.

The first tests drive `Scheduler` directly with plain Python work functions on real threads;
the last ones run real projects."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from pipe.executor import TaskResult
from pipe.intervals import Interval, from_iso
from pipe.plan import Task
from pipe.scheduler import Caps, Listener, Poke, Scheduler, retry_wait
from runner_helpers import attempts, peak_overlap, run, statuses_by_model

DAY = Interval(from_iso("2026-06-01T00:00:00"), from_iso("2026-06-02T00:00:00"))


def task(tid: str, *, upstream=(), kind="full", model=None, **kw) -> Task:
    return Task(tid, model or f"m.{tid}", kind, DAY, tuple(upstream), "fp", f"m.{tid}", **kw)


def Done(status: str = "success", error: str | None = None, retryable: bool = True):  # noqa: N802
    return TaskResult(status, error=error, retryable=retryable)


class Tracker:
    """A work function that records how many tasks ran at once, overall and per group."""

    def __init__(self, hold: float = 0.02, fail: frozenset = frozenset()):
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.hold, self.fail = hold, fail
        self.calls: list[tuple[str, int]] = []

    def _enter(self, groups, delta):
        with self.lock:
            for g in groups:
                self.active[g] = self.active.get(g, 0) + delta
                self.peak[g] = max(self.peak.get(g, 0), self.active[g])

    def __call__(self, t: Task, attempt: int):
        groups = ["*", f"model:{t.model}"] + ([f"pool:{t.pool}"] if t.pool else [])
        self._enter(groups, 1)
        with self.lock:
            self.calls.append((t.id, attempt))
        time.sleep(self.hold)  # a task's duration, not a synchronisation
        self._enter(groups, -1)
        return Done("failed", "boom") if t.id in self.fail else Done()


def test_caps_hold_for_threads_pools_and_models():
    tasks = (
        [task(f"p{i}", model="m.pooled", pool="p") for i in range(8)]
        + [task(f"q{i}", model="m.other_pooled", pool="p") for i in range(4)]
        + [task(f"s{i}", model="m.solo", max_concurrency=1) for i in range(6)]
        + [task(f"f{i}", model="m.free") for i in range(8)]
    )
    work = Tracker()
    outcomes = Scheduler(tasks, Caps(4, {"p": 2}), work).run()
    assert {o.status for o in outcomes.values()} == {"success"}
    assert work.peak["*"] == 4
    assert work.peak["pool:p"] == 2
    assert work.peak["model:m.solo"] == 1
    assert len(work.calls) == len(tasks)


def test_upstream_failure_marks_all_downstream_and_spares_other_branches():
    tasks = [
        task("a"),
        task("b", upstream=["a"]),
        task("c", upstream=["b"]),
        task("d", upstream=["a", "x"]),
        task("x"),
        task("y", upstream=["x"]),
    ]
    outcomes = Scheduler(tasks, Caps(2), Tracker(hold=0, fail=frozenset({"a"}))).run()
    got = {tid: (o.status, o.reason) for tid, o in outcomes.items()}
    assert got == {
        "a": ("failed", "boom"),
        "b": ("upstream_failed", "upstream m.a failed"),
        "c": ("upstream_failed", "upstream m.a failed"),
        "d": ("upstream_failed", "upstream m.a failed"),
        "x": ("success", None),
        "y": ("success", None),
    }


def test_already_published_tasks_are_skipped_and_do_not_block():
    tasks = [task("a"), task("b", upstream=["a"])]
    work = Tracker(hold=0)
    outcomes = Scheduler(tasks, Caps(1), work, done={"a"}).run()
    assert (outcomes["a"].status, outcomes["b"].status) == ("skipped", "success")
    assert work.calls == [("b", 1)]


def test_retries_count_attempts_and_stop_at_the_limit():
    work = Tracker(hold=0, fail=frozenset({"a"}))
    outcomes = Scheduler([task("a", retries=2, retry_delay=0.01)], Caps(1), work).run()
    assert outcomes["a"].status == "failed" and outcomes["a"].attempts == 3
    assert work.calls == [("a", 1), ("a", 2), ("a", 3)]


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_retry_waits_grow_exponentially_with_at_most_a_quarter_of_jitter(attempt):
    base = 0.5 * 2 ** (attempt - 1)
    assert retry_wait(0.5, attempt, 0.0) == base
    assert retry_wait(0.5, attempt, 0.5) == base * 1.125
    assert base <= retry_wait(0.5, attempt, 0.999999) < base * 1.25


def test_a_non_retryable_failure_is_not_retried():
    def work(t, attempt):
        return Done("failed", "check failed", retryable=False)

    outcomes = Scheduler([task("a", retries=3, retry_delay=0.01)], Caps(1), work).run()
    assert outcomes["a"].attempts == 1 and outcomes["a"].status == "failed"


def test_a_crashing_worker_fails_its_task_instead_of_hanging():
    def work(t, attempt):
        raise RuntimeError("bug in a worker")

    outcomes = Scheduler([task("a", retries=2), task("b", upstream=["a"])], Caps(1), work).run()
    assert outcomes["a"].status == "failed" and outcomes["a"].attempts == 1
    assert "RuntimeError: bug in a worker" in outcomes["a"].reason
    assert outcomes["b"].status == "upstream_failed"


class Recording(Listener):
    """Reads every result as the runner's recorder does (rows, leaked, error, checks)."""

    def __init__(self):
        self.seen = []

    def finished(self, task, attempt, result, started_at, finished_at, final):
        self.seen.append((task.id, result.status, result.rows, result.leaked, result.error))


@pytest.mark.parametrize(
    "work",
    [
        pytest.param(lambda t, attempt: 1 / 0, id="raises"),
        pytest.param(lambda t, attempt: {"status": "success"}, id="returns-a-dict"),
    ],
)
def test_a_broken_worker_hands_the_listener_a_task_result(work):
    """The recorder reads result.rows: a worker that raises (or returns something else)
    must still reach it as a TaskResult, or the run crashed and stayed 'running'."""
    listener = Recording()
    tasks = [task("a", retries=2), task("b", upstream=["a"])]
    outcomes = Scheduler(tasks, Caps(1), work, listener=listener).run()
    assert len(listener.seen) == 1, listener.seen
    [(tid, status, rows, leaked, error)] = listener.seen
    assert (tid, status, rows, leaked) == ("a", "failed", None, 0)
    assert error.startswith("internal error: ")
    assert isinstance(outcomes["a"].result, TaskResult)
    assert (outcomes["a"].status, outcomes["b"].status) == ("failed", "upstream_failed")


def test_a_sensor_whose_query_is_wrong_fails_at_once_without_waiting():
    def poke(t):
        return Poke(False, "wait_for of m.sense failed: Binder Error", failed=True)

    tasks = [
        task("sense", kind="sensor", poke_every=0.05, wait_timeout=30),
        task("gated", upstream=["sense"]),
    ]
    started = time.monotonic()
    outcomes = Scheduler(tasks, Caps(1), Tracker(hold=0), poke=poke).run()
    assert time.monotonic() - started < 5
    assert outcomes["sense"].status == "failed"
    assert outcomes["sense"].reason == "wait_for of m.sense failed: Binder Error"
    assert outcomes["gated"].status == "upstream_failed"


def test_a_sensor_is_polled_while_every_slot_is_busy():
    """The only slot runs a task that finishes only once the sensor was poked twice."""
    poked = []
    second_poke = threading.Event()

    def poke(t):
        poked.append(time.monotonic())
        if len(poked) >= 2:
            second_poke.set()
        return Poke(len(poked) >= 3)

    def work(t, attempt):
        if t.id == "long":
            return Done() if second_poke.wait(10) else Done("failed", "sensor starved")
        return Done()

    tasks = [
        task("long"),
        task("sense", kind="sensor", poke_every=0.01, wait_timeout=30),
        task("gated", upstream=["sense"]),
    ]
    outcomes = Scheduler(tasks, Caps(1), work, poke=poke).run()
    assert {tid: o.status for tid, o in outcomes.items()} == {
        "long": "success",
        "sense": "success",
        "gated": "success",
    }


def test_a_sensor_times_out():
    tasks = [
        task("sense", kind="sensor", poke_every=0.05, wait_timeout=0.3),
        task("gated", upstream=["sense"]),
    ]
    started = time.monotonic()
    outcomes = Scheduler(tasks, Caps(1), Tracker(hold=0), poke=lambda t: Poke(False)).run()
    assert 0.3 <= time.monotonic() - started < 10  # its wait_timeout, not a hang
    assert outcomes["sense"].status == "failed"
    assert outcomes["sense"].reason.startswith("sensor timed out")
    assert outcomes["gated"].status == "upstream_failed"


def test_stop_lets_running_tasks_finish_and_starts_nothing_new():
    started = threading.Event()
    release = threading.Event()
    finished = []

    def work(t, attempt):
        started.set()
        release.wait(10)
        finished.append(t.id)
        return Done()

    tasks = [task("a"), task("b"), task("c", upstream=["a"])]
    scheduler = Scheduler(tasks, Caps(1), work)
    result = {}
    thread = threading.Thread(target=lambda: result.update(scheduler.run()))
    thread.start()
    assert started.wait(10)
    scheduler.stop()
    release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert finished == ["a"]
    assert {tid: o.status for tid, o in result.items()} == {
        "a": "success",
        "b": "not_run",
        "c": "not_run",
    }
    assert result["b"].reason == "interrupted"


# ---------------------------------------------------------------- real runs

HEAVY = "select sum(i % 7)::bigint as s, {{ interval_start }} as ts from range(1500000) t(i)"
INCREMENTAL_HOURLY = "kind: incremental\ntime_column: ts\ngrain: hourly\n"
CAPPED = {
    "models/a/pooled_one.sql": HEAVY,
    "models/a/pooled_one.yml": INCREMENTAL_HOURLY + "pool: p\n",
    "models/a/pooled_two.sql": HEAVY,
    "models/a/pooled_two.yml": INCREMENTAL_HOURLY + "pool: p\n",
    "models/b/solo.sql": HEAVY,
    "models/b/solo.yml": INCREMENTAL_HOURLY + "max_concurrency: 1\n",
    "models/c/free.sql": HEAVY,
    "models/c/free.yml": INCREMENTAL_HOURLY,
    "models/d/past.sql": HEAVY,
    "models/d/past.yml": INCREMENTAL_HOURLY + "depends_on_past: true\n",
}
PIPE_YML_POOLS = """\
name: t
start: 2026-06-01
schedule: daily
concurrency: 8
pools: {p: 2}
default_target: dev
targets:
  dev: {adapter: duckdb, path: warehouse.duckdb}
"""


@pytest.mark.parametrize("concurrency", [3])
def test_recorded_attempts_never_exceed_the_caps(write_project, concurrency):
    root = write_project(CAPPED, pipe_yml=PIPE_YML_POOLS)
    code, out = run(
        root, "--concurrency", str(concurrency), interval="2026-06-01T00:00/2026-06-01T08:00"
    )
    assert code == 0, out
    done = attempts(root)
    assert len(done) == 5 * 8 and {a["status"] for a in done} == {"success"}

    def spans(models):
        return [(a["started_at"], a["finished_at"]) for a in done if a["model"] in models]

    assert peak_overlap(spans({a["model"] for a in done})) == concurrency
    assert peak_overlap(spans({"a.pooled_one", "a.pooled_two"})) == 2
    assert peak_overlap(spans({"b.solo"})) == 1
    # depends_on_past: each hour starts after the previous one finished
    past = sorted(
        (a["interval_start"], a["started_at"], a["finished_at"])
        for a in done
        if a["model"] == "d.past"
    )
    assert all(prev[2] <= nxt[1] for prev, nxt in itertools.pairwise(past))
    assert statuses_by_model(root) == {
        m: {"success"} for m in ("a.pooled_one", "a.pooled_two", "b.solo", "c.free", "d.past")
    }


def test_depends_on_past_refuses_an_interval_whose_previous_one_is_missing(write_project):
    root = write_project(
        {
            "models/d/past.sql": HEAVY.replace("1500000", "10"),
            "models/d/past.yml": "kind: incremental\ntime_column: ts\ndepends_on_past: true\n",
        }
    )
    code, out = run(root, interval="2026-06-02")
    assert code == 1, out
    assert "depends_on_past: d.past 2026-06-01 is not published yet" in out, out
    assert run(root, interval="2026-06-01")[0] == 0
    code, out = run(root, interval="2026-06-02")
    assert code == 0, out


def test_a_job_that_raises_does_not_end_its_worker_thread():
    """A worker of the scheduler's pool outlives a job that raises (as concurrent.futures'
    did): the next job still runs on the pool's one thread."""
    import threading

    from pipe.scheduler import Workers

    said: list[type] = []
    hook, threading.excepthook = threading.excepthook, lambda args: said.append(args.exc_type)
    pool = Workers(1, "t")
    ran = threading.Event()
    try:
        pool.submit(lambda: 1 / 0)
        pool.submit(ran.set)
        assert ran.wait(30), "the second job never ran"
    finally:
        pool.shutdown()
        threading.excepthook = hook
    assert said == [ZeroDivisionError]
