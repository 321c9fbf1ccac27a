"""Crash safety: SIGKILL a real `pipe run` subprocess at several moments, resume, and end
with the same tables as an uninterrupted run, no temporary table left, and the killed runs
recorded as crashed; after every kill, no table or interval is half-published. SIGINT stops
scheduling, lets running tasks finish, records the run as interrupted and exits 130.

Moments are chosen by reading the run's task lines from its stdout, never by sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

from conftest import pipe_executable, run_cli_json
from runner_helpers import TEMP_MARK, run, snapshot, state, tables_of, warehouse

HOURLY = "kind: incremental\ntime_column: ts\ngrain: hourly\n"


def generated_project() -> dict[str, str]:
    """~45 tasks of 20-80 ms that compute much and keep little (so comparing tables is
    cheap): an hourly incremental fan-in, a chain of full models, views, a daily
    incremental. Integer arithmetic only: every run computes identical rows."""
    files = {
        "models/s/base.sql": ("select i % 97 as k, sum((i * 7919) % 1000)::bigint as v\n"
                              "from range(3000000) t(i) group by 1"),
        "models/s/events.sql": (
            "select k, sum(v)::bigint as v, {{ interval_start }} + k * interval 1 minute as ts\n"
            "from (select i % 50 as k, (i * 31) % 1000 as v from range(1500000) t(i))\n"
            "group by k"),
        "models/s/events.yml": HOURLY,
        "models/s/daily.sql": (
            "select k, count(*) as n, sum(v)::bigint as v, min(ts) as ts from s.events\n"
            "where ts >= {{ interval_start }} and ts < {{ interval_end }} group by k"),
        "models/s/daily.yml": "kind: incremental\ntime_column: ts\n"
                              "checks:\n  - unique: [k]\n",
    }
    previous = "s.base"
    for i in range(1, 16):
        name = f"m.step_{i:02d}"
        files[f"models/m/step_{i:02d}.sql"] = (
            f"select b.k, b.v + p.v + w.n as v\n"
            f"from s.base as b join {previous} as p using (k)\n"
            f"cross join (select sum(i % {i + 6})::bigint as n from range(2000000) t(i)) as w")
        files[f"models/m/step_{i:02d}.yml"] = "checks:\n  - unique: [k]\n  - row_count: {min: 1}\n"
        previous = name
    files["models/r/summary.sql"] = (
        "select d.k, d.n, d.v, e.n as hourly_rows from s.daily as d join "
        "(select k, count(*) as n from s.events group by k) as e using (k)")
    files["models/r/last_step.sql"] = f"select * from {previous}"
    files["models/r/last_step.yml"] = "kind: view\n"
    files["models/r/summary_view.sql"] = "select k, n from r.summary where k < 5"
    files["models/r/summary_view.yml"] = "kind: view\n"
    return files


PIPE_YML = """\
name: killme
start: 2026-06-01
schedule: daily
concurrency: 2
default_target: dev
targets:
  dev: {adapter: duckdb, path: warehouse.duckdb}
"""
TASK_LINE = ("OK ", "FAIL ", "RETRY ")


class Run:
    """`pipe run` in a subprocess whose task lines the test reads one by one."""

    def __init__(self, root: Path, *args: str):
        self.root = root
        self.err = open(root / f"stderr-{id(self)}.txt", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [pipe_executable(), "run", "--interval", "2026-06-01", *args], cwd=root,
            stdout=subprocess.PIPE, stderr=self.err, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        # a hung run must fail the test, not hang it
        self.watchdog = threading.Timer(60, self.proc.kill)
        self.watchdog.start()
        self.lines: list[str] = []

    def read_until(self, tasks: int = 0, header: bool = True) -> None:
        """Read stdout until the 'running ...' header and `tasks` finished-task lines."""
        seen_header = not header
        done = 0
        while not seen_header or done < tasks:
            line = self.proc.stdout.readline()
            assert line, f"the run ended early:\n{''.join(self.lines)}{self.stderr()}"
            self.lines.append(line)
            seen_header = seen_header or line.startswith("running ")
            done += line.startswith(TASK_LINE)

    def read_line(self, prefix: str) -> str:
        """Read stdout up to the first line starting with `prefix`; return it."""
        while True:
            line = self.proc.stdout.readline()
            assert line, f"no line {prefix!r}:\n{''.join(self.lines)}{self.stderr()}"
            self.lines.append(line)
            if line.startswith(prefix):
                return line

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self) -> tuple[int, str]:
        self.lines.append(self.proc.stdout.read())
        code = self.proc.wait(60)
        self.watchdog.cancel()
        self.proc.stdout.close()
        out = "".join(self.lines) + self.stderr()
        self.err.close()
        return code, out

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read()


def reference_tables(write_project) -> dict:
    root = write_project(generated_project(), pipe_yml=PIPE_YML, name="reference")
    code, out = run(root)
    assert code == 0, out
    return snapshot(root)


def assert_nothing_half_published(root: Path, reference: dict) -> None:
    """Each table a killed run left is either absent or whole: a full table or view equals
    the reference; an incremental table holds whole intervals of the reference's rows (the
    first interval creates it empty, so it may also be empty)."""
    got = snapshot(root, temp_ok=True)
    for table, (kind, cols, rows) in got.items():
        if table.startswith("_pipe."):
            continue
        if table in INCREMENTAL:
            ts = [c[0] for c in cols].index("ts")
            whole = INCREMENTAL[table]
            present = {whole(r[ts]) for r in rows}
            want = [r for r in reference[table][2] if whole(r[ts]) in present]
            assert (kind, cols, rows) == (*reference[table][:2], want), table
        else:
            assert got[table] == reference[table], table


INCREMENTAL = {"s.events": lambda ts: ts.replace(minute=0, second=0),
               "s.daily": lambda ts: ts.date()}


def test_sigkill_at_several_moments_then_resume(write_project):
    reference = reference_tables(write_project)
    root = write_project(generated_project(), pipe_yml=PIPE_YML, name="killed")

    killed = 0
    for tasks in (0, 1, 4, 9):  # task lines seen before the kill, in each successive run
        r = Run(root)
        r.read_until(tasks)
        r.signal(signal.SIGKILL)
        code, out = r.finish()
        assert code == -signal.SIGKILL, out
        killed += 1
        assert_nothing_half_published(root, reference)
        # before any resume, status already knows the run is dead
        report = run_cli_json(["status", "--json", "--project", root])
        assert report["runs"][0]["status"] == "crashed"
        assert report["in_progress"]["status"] == "crashed"

    r = Run(root)
    r.read_until(0)
    code, out = r.finish()
    assert code == 0, out
    header = next(line for line in out.splitlines() if line.startswith("running "))
    assert not header.endswith(" 0 already published"), header  # the resume skipped work
    assert snapshot(root) == reference  # also: no __pipe_tmp_ table left

    runs = state(root, "select status from runs order by run_id")
    assert runs == [("crashed",)] * killed + [("success",)]
    # the kills hit tasks in flight: their attempts are recorded as abandoned
    assert state(root, "select count(*) > 0 from attempts where status = 'abandoned'") == [(1,)]
    assert state(root, "select count(*) from attempts where status = 'running'") == [(0,)]
    # published exactly once per (model, interval): nothing recorded twice
    assert state(root, "select count(*) from published") == [
        (len({(m, s) for m, s in state(root, "select model, interval_start from published")}),)]


def test_sigint_finishes_running_tasks_exits_130_and_rerun_completes(write_project):
    reference = reference_tables(write_project)
    root = write_project(generated_project(), pipe_yml=PIPE_YML, name="interrupted")

    r = Run(root)
    r.read_until(3)
    r.signal(signal.SIGINT)
    code, out = r.finish()
    assert code == 130, out
    assert "stopping: no new tasks" in out, out
    assert "INTERRUPTED: run 1" in out and "run the same command again to resume" in out, out

    [(status, summary)] = state(root, "select status, summary from runs")
    assert status == "interrupted"
    assert '"not_run"' in summary, summary
    # the tasks in flight at the signal finished: every attempt has an end
    tries = state(root, "select status, finished_at from attempts")
    assert tries and all(s == "success" and f is not None for s, f in tries), tries
    assert_nothing_half_published(root, reference)
    with warehouse(root) as con:
        assert not [t for t in tables_of(con) if TEMP_MARK in t]

    r = Run(root)
    r.read_until(0)
    code, out = r.finish()
    assert code == 0, out
    assert f"{len(tries)} already published" in out, out
    assert snapshot(root) == reference
    assert state(root, "select status from runs order by run_id") == [
        ("interrupted",), ("success",)]


def test_a_second_sigint_interrupts_running_tasks_which_roll_back(write_project):
    root = write_project({
        "models/a/slow.sql": "select sum(hash(i)) as s from range(10000000000) t(i)",
        "models/b/fast.sql": "select 1 as x",
        "models/b/after_fast.sql": "select * from b.fast",
    }, pipe_yml=PIPE_YML, name="twice")
    r = Run(root)
    r.read_until(2)  # b.fast and b.after_fast: a.slow is what still runs
    r.signal(signal.SIGINT)
    assert "waiting for 1 running task(s)" in r.read_line("stopping: ")
    r.signal(signal.SIGINT)
    code, out = r.finish()
    assert code == 130, out
    assert "failed: a.slow 2026-06-01: interrupted" in out, out
    [(status,)] = state(root, "select status from runs")
    assert status == "interrupted"
    assert state(root, "select model, status, error from attempts where model = 'a.slow'") == [
        ("a.slow", "failed", "interrupted")]
    with warehouse(root) as con:
        tables = tables_of(con)
    assert "a.slow" not in tables and not [t for t in tables if TEMP_MARK in t], tables
