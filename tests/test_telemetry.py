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


# ---------------------------------------------------------------- the critical path


def _task(tid, ready, start, end, status="success"):
    from pipe.runrecord import AttemptRecord, TaskRecord

    return TaskRecord(
        tid,
        f"m.{tid}",
        "2026-06-01T00:00:00",
        "2026-06-02T00:00:00",
        status,
        None,
        (AttemptRecord(1, status, ready, start, end, 1, None),),
    )


def test_the_critical_path_follows_the_upstream_that_finished_last():
    """a -> (b, c) -> d, and e alone: b finished after c, so d waited for b."""
    from pipe.runrecord import critical_path

    tasks = (
        _task("a", 0.0, 0.0, 1.0),
        _task("b", 1.0, 1.5, 4.0),
        _task("c", 1.0, 1.0, 3.0),
        _task("d", 4.0, 4.5, 6.0),
        _task("e", 0.0, 0.0, 5.0),
    )
    edges = {"b": ("a",), "c": ("a",), "d": ("b", "c")}
    assert critical_path(tasks, edges) == ("a", "b", "d")
    # a failed task that finished last ends the path: it is what the run waited for
    tasks += (_task("f", 4.0, 4.0, 7.0, "failed"),)
    assert critical_path(tasks, {**edges, "f": ("c",)}) == ("a", "c", "f")
    assert critical_path((), edges) == ()


def test_a_task_whose_edges_are_unknown_steps_to_what_finished_as_it_was_queued():
    """The site's rule for a task the project no longer has (runrecord.chain with queue
    times): the task that finished within the gap of its being queued held it up."""
    from pipe.runrecord import chain

    finished = {"a": 1.0, "b": 3.0, "c": 0.5, "d": 2.0}
    queued = {"a": 0.0, "b": 1.02, "c": 0.0, "d": 0.52}
    assert chain(finished, {}, queued, gap=0.05) == ("a", "b")
    assert chain(finished, {}) == ("b",)  # no queue times: edges only
    # known edges win over the queue-time rule, and the walk goes on by queue time
    assert chain(finished, {"b": ("d",)}, queued, gap=0.05) == ("c", "d", "b")
    assert chain({}, {}, {}, gap=0.05) == ()


# ---------------------------------------------------------------- records of real runs

CHAIN = {
    "seeds/raw/n.csv": "id\n1\n2\n3\n",
    "models/s/a.sql": "select id from raw.n\n",
    "models/s/a.yml": "checks:\n  - not_null: [id]\n  - row_count: {min: 5}\n    severity: warn\n",
    "models/s/b.sql": "select id * 2 as id2 from s.a\n",
    "models/s/c.sql": "select count(*) as n from s.b\n",
}


def record_of(root, run_id):
    from conftest import run_cli

    code, out = run_cli(["status", "--run", str(run_id), "--json", "--project", root])
    assert code == 0, out
    import json

    return json.loads(out)


def test_a_run_record_has_every_attempt_and_the_critical_path(write_project):
    from conftest import run_cli

    root = write_project(CHAIN)
    code, out = run_cli(["run", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    rec = record_of(root, 1)
    assert (rec["run_id"], rec["kind"], rec["label"], rec["status"]) == (
        1,
        "run",
        "2026-06-01",
        "success",
    )
    assert [t["model"] for t in rec["critical_path"]["tasks"]] == ["raw.n", "s.a", "s.b", "s.c"]
    by_model = {t["model"]: t for t in rec["tasks"]}
    assert {m: (t["status"], len(t["attempts"])) for m, t in by_model.items()} == {
        "raw.n": ("success", 1),
        "s.a": ("success", 1),
        "s.b": ("success", 1),
        "s.c": ("success", 1),
    }
    assert [a["rows"] for t in rec["tasks"] for a in t["attempts"]] == [3, 3, 3, 1]
    [a] = by_model["s.a"]["attempts"]
    assert [(c["name"], c["status"], c["failures"]) for c in a["checks"]] == [
        ("not_null(id)", "pass", 0),
        ("row_count", "warn", 1),
    ]
    first, last = rec["critical_path"]["tasks"][0], rec["critical_path"]["tasks"][-1]
    assert first["ready_at"] <= last["finished_at"] <= rec["finished_at"]
    for t in rec["tasks"]:
        for a in t["attempts"]:
            assert a["queued_at"] <= a["started_at"] <= a["finished_at"]
            assert a["queue_wait"] >= 0 and a["execution"] >= 0
    # a task starts only once its upstream finished
    ready_b = by_model["s.b"]["attempts"][0]["queued_at"]
    assert _seconds(ready_b) >= _seconds(by_model["s.a"]["attempts"][0]["finished_at"])
    assert rec["failed_dependencies"] == 0 and rec["late_rows"] == {"total": 0, "intervals": []}
    code, out = run_cli(["status", "--run", "1", "--project", root])
    assert code == 0, out
    assert "critical path (" in out and "raw.n -> s.a 2026-06-01T00:00 -> s.b" in out
    assert "failed dependencies: 0" in out


def test_retries_failed_dependencies_and_errors(write_project):
    from conftest import run_cli

    root = write_project(
        {
            **CHAIN,
            "models/s/a.sql": "select cast('x' || id as int) as id from raw.n\n",
            "models/s/a.yml": "retries: 1\nretry_delay: 200ms\n",
        }
    )
    code, out = run_cli(["run", "--interval", "2026-06-01", "--project", root])
    assert code == 1, out
    rec = record_of(root, 1)
    by_model = {t["model"]: t for t in rec["tasks"]}
    first, second = by_model["s.a"]["attempts"]
    assert (first["status"], second["status"]) == ("failed", "failed")
    assert "Conversion Error" in second["error"]
    # the retry was queued when its backoff ended: the backoff is not queue wait
    gap = _seconds(second["queued_at"]) - _seconds(first["finished_at"])
    assert gap >= 0.2 * 0.99 - 0.001
    assert rec["failed_dependencies"] == 2  # s.b and s.c
    assert by_model["s.c"]["status"] == "upstream_failed" and by_model["s.c"]["attempts"] == []


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_late_rows_are_the_change_of_a_republished_interval(write_project):
    from conftest import run_cli

    root = write_project(
        {
            "seeds/raw/e.csv": "ts,v\n2026-06-01 10:00:00,1\n",
            "models/s/inc.sql": "select ts, v from raw.e where ts >= {{ interval_start }} and "
            "ts < {{ interval_end }}\n",
            "models/s/inc.yml": "kind: incremental\ntime_column: ts\n",
        }
    )
    code, out = run_cli(["run", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    (root / "seeds/raw/e.csv").write_text(
        "ts,v\n2026-06-01 10:00:00,1\n2026-06-01 11:00:00,2\n2026-06-01 12:00:00,3\n"
    )
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    code, out = run_cli(["run", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    rec = record_of(root, 2)
    assert rec["late_rows"] == {
        "total": 2,
        "intervals": [
            {
                "model": "s.inc",
                "start": "2026-06-01T00:00:00",
                "end": "2026-06-02T00:00:00",
                "rows": 2,
            }
        ],
    }


def test_a_backfill_record_has_its_progress_by_interval(write_project):
    from conftest import run_cli

    root = write_project(CHAIN)
    code, out = run_cli(
        ["backfill", "--start", "2026-06-01", "--end", "2026-06-03", "--project", root]
    )
    assert code == 0, out
    rec = record_of(root, 1)
    assert rec["kind"] == "backfill"
    assert rec["backfill"]["intervals_done"] == rec["backfill"]["intervals_total"]
    assert rec["backfill"]["tasks_done"] == rec["backfill"]["tasks_total"] == 4
    assert [t["model"] for t in rec["critical_path"]["tasks"]] == ["raw.n", "s.a", "s.b", "s.c"]


def test_an_unknown_run_is_exit_2(write_project):
    from conftest import run_cli

    root = write_project(CHAIN)
    code, out = run_cli(["status", "--run", "3", "--project", root])
    assert code == 2
    assert "no run 3 on target 'dev' (nothing has run on this target yet)" in out


def test_status_of_an_older_backfill_counts_its_own_selection(write_project):
    """`pipe status --interval` shows an older backfill's progress over the models that
    backfill selected, not over the newest run's selection."""
    from conftest import run_cli, run_cli_json

    root = write_project(CHAIN)
    for args in (
        ["backfill", "--start", "2026-06-01", "--end", "2026-06-02", "--select", "+s.a"],
        ["run", "--interval", "2026-06-02"],
    ):
        code, out = run_cli([*args, "--project", root])
        assert code == 0, out
    found = run_cli_json(["status", "--interval", "2026-06-01", "--json", "--project", root])
    assert [r["kind"] for r in found["runs"]] == ["backfill"]
    assert found["backfill"]["tasks_done"] == found["backfill"]["tasks_total"] == 2
    assert found["backfill"]["intervals_done"] == found["backfill"]["intervals_total"] == 1
