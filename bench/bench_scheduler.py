"""The scheduler alone: readiness, caps and state writes, with workers that do nothing.

    python bench/bench_scheduler.py [--days 365] [--models 100] [--concurrency 4]

Builds the task graph of a backfill (days x models incremental tasks, each model reading
the previous one, every model in a pool, some with max_concurrency), runs it through
pipe.scheduler.Scheduler with the runner's real state recorder (SQLite WAL under a temp
.pipe/), and a work function that returns success at once, with the ledger entry a real
task returns (stamped by the runner's own Stamper: a version, the upstream publishes it
read). Reports tasks a minute, and the time `decide()` takes to say what runs (once per
command, before the loop). The target is >= 200,000 tasks a minute. A benchmark, not a
test.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from pipe.decide import decide
from pipe.executor import TaskResult
from pipe.intervals import Interval
from pipe.ledger import Entry
from pipe.plan import Task, task_id
from pipe.recorder import Recorder, Reporter, Stamper
from pipe.scheduler import Caps, Scheduler
from pipe.state import StateStore


def make_tasks(days: int, models: int) -> list[Task]:
    tasks = []
    start = datetime(2025, 1, 1)
    for d in range(days):
        iv = Interval(start + timedelta(days=d), start + timedelta(days=d + 1))
        prev = None
        for m in range(models):
            name = f"s{m % 10}.m{m:04d}"
            tid = task_id(name, iv)
            tasks.append(
                Task(
                    tid,
                    name,
                    "incremental",
                    iv,
                    (prev,) if prev else (),
                    "f" * 16,
                    name,
                    pool="warehouse" if m % 3 == 0 else None,
                    max_concurrency=2 if m % 5 == 0 else None,
                )
            )
            prev = tid
    return tasks


def run(days: int, models: int, concurrency: int) -> dict:
    tasks = make_tasks(days, models)
    context = {t.id: t for t in tasks}
    t0 = time.perf_counter()
    decision = decide(tasks, context, {}, {}, execution_time=datetime(2030, 1, 1))
    decide_seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        state = StateStore(Path(tmp))
        run_id = state.start_run("backfill", "dev", "bench", "", "", {}, len(tasks))
        current: dict = {}
        recorder = Recorder(state, run_id, "dev", Reporter(), current, decision.run)
        stamps = Stamper(context, current, decision)

        def work(task, attempt):
            stamp = stamps.stamp(task)
            result = TaskResult(
                "success",
                rows=1,
                entry=Entry(task.fingerprint, stamp.published_at, 1, stamp.reads, stamp.partial),
            )
            stamps.published(task, result)  # as the runner's worker does
            return result

        scheduler = Scheduler(tasks, Caps(concurrency, {"warehouse": 2}), work, listener=recorder)
        t0 = time.perf_counter()
        outcomes = scheduler.run()
        recorder.close()
        seconds = time.perf_counter() - t0
        state.close()
    assert all(o.status == "success" for o in outcomes.values())
    assert len(current) == len(tasks)
    return {
        "tasks": len(tasks),
        "seconds": round(seconds, 3),
        "tasks_per_minute": round(len(tasks) / seconds * 60),
        "decide_seconds": round(decide_seconds, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    result = run(args.days, args.models, args.concurrency)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
