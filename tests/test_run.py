"""`pipe run` end to end on real DuckDB files: the tables equal the plan's SQL run directly,
reruns are idempotent, incremental intervals are replaced exactly, stale plans and a held
lock are refused, and `pipe status` explains a failed run."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from datetime import date

from conftest import files_under, pipe_executable, run_cli, run_cli_json, run_pipe
from pipe.state import ProjectLock
from runner_helpers import (
    Background,
    attempts,
    contents,
    outcomes,
    replay_plans,
    rows,
    run,
    snapshot,
    state,
    statuses_by_model,
    tables_of,
    temp_tables,
    wait_until,
    warehouse,
)


def test_example_tables_equal_the_plan_sql_run_directly(example_project):
    root = example_project
    for day in ("2026-06-01", "2026-06-02"):
        code, out = run(root, interval=day)
        assert code == 0, out
    got = snapshot(root)
    plans = [root / "plans" / "dev" / f"{d}.json" for d in ("2026-06-01", "2026-06-02")]
    oracle = replay_plans(root, plans)
    try:
        expected = {t: (k, *contents(oracle, t)) for t, k in tables_of(oracle).items()}
    finally:
        oracle.close()
    assert sorted(t for t in got if not t.startswith("_pipe.")) == sorted(expected)
    for table, want in expected.items():
        assert got[table] == want, table
    # the incremental models hold both days; nothing is empty by accident
    assert [r[0] for r in got["marts.daily_revenue"][2]] == [date(2026, 6, 1), date(2026, 6, 2)]
    assert all(got[t][2] for t in ("staging.orders", "marts.customer_orders",
                                   "reports.vip_customers", "staging.page_views"))


def test_rerun_is_idempotent_and_force_rebuilds_the_same_tables(example_project):
    root = example_project
    code, out = run(root)
    assert code == 0, out
    first = snapshot(root)

    code, out = run(root)
    assert code == 0, out
    assert "35 skipped" in out and "OK " not in out, out
    assert all(s == {"skipped"} for s in statuses_by_model(root).values())
    assert attempts(root) == []
    assert snapshot(root) == first

    code, out = run(root, "--force")
    assert code == 0, out
    assert "35 succeeded" in out, out
    assert {a["status"] for a in attempts(root)} == {"success"}
    assert len(attempts(root)) == 35
    assert snapshot(root) == first
    assert temp_tables(root) == []


EVENTS_PROJECT = {
    "sources.yml": "sources:\n  - name: raw.events\n",
    "models/staging/events.sql": (
        "select id, ts, amount from raw.events\n"
        "where ts >= {{ interval_start }} and ts < {{ interval_end }}\n"),
    "models/staging/events.yml": "kind: incremental\ntime_column: ts\n",
    # a leaking filter: returns every row, whatever the interval
    "models/staging/leaky.sql": "select id, ts, amount from raw.events\n",
    "models/staging/leaky.yml": "kind: incremental\ntime_column: ts\n",
}


def load_events(root, amount_of_day: dict[str, int]):
    """raw.events: three rows on each given day (hours 1, 12, 23), with that day's amount."""
    with warehouse(root) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute("CREATE OR REPLACE TABLE raw.events (id INTEGER, ts TIMESTAMP, "
                    "amount INTEGER)")
        i = 0
        for day, amount in sorted(amount_of_day.items()):
            for hour in (1, 12, 23):
                i += 1
                con.execute("INSERT INTO raw.events VALUES (?, ?::TIMESTAMP, ?)",
                            [i, f"{day} {hour:02d}:00:00", amount])


def test_rerun_of_one_interval_replaces_exactly_that_intervals_rows(write_project):
    root = write_project(EVENTS_PROJECT)
    load_events(root, {"2026-06-01": 1, "2026-06-02": 2, "2026-06-03": 3})
    for day in ("2026-06-01", "2026-06-02", "2026-06-03"):
        code, out = run(root, "--select", "staging.events", interval=day)
        assert code == 0, out

    # the source changes on every day; only 06-02 is rerun
    load_events(root, {"2026-06-01": 10, "2026-06-02": 20, "2026-06-03": 30})
    code, out = run(root, "--select", "staging.events", interval="2026-06-02")
    assert code == 0 and "1 skipped" in out, out  # same fingerprint: published already
    code, out = run(root, "--select", "staging.events", "--force", interval="2026-06-02")
    assert code == 0, out
    got = rows(root, "select cast(ts as date)::varchar, count(*), min(amount), max(amount) "
                     "from staging.events group by 1 order by 1")
    assert got == [("2026-06-01", 3, 1, 1), ("2026-06-02", 3, 20, 20), ("2026-06-03", 3, 3, 3)]
    assert temp_tables(root) == []


def test_rows_outside_the_interval_are_not_published_and_warn(write_project):
    root = write_project(EVENTS_PROJECT)
    load_events(root, {"2026-05-31": 1, "2026-06-01": 2, "2026-06-02": 3})
    code, out = run(root, "--select", "staging.leaky")
    assert code == 0, out
    assert "warning: 6 rows outside [2026-06-01T00:00:00, 2026-06-02T00:00:00)" in out, out
    assert rows(root, "select id, amount from staging.leaky order by id") == [
        (4, 2), (5, 2), (6, 2)]
    [a] = attempts(root, model="staging.leaky")
    assert (a["status"], a["rows"], a["leaked"]) == ("success", 3, 6)


def test_stale_plan_is_refused_and_nothing_is_written(example_project):
    root = example_project
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    model = root / "models" / "staging" / "customers.sql"
    model.write_text(model.read_text().replace("lower(email)", "upper(email)"))
    before = files_under(root / "plans")

    code, out = run(root)
    assert code == 2, out
    assert "plans/dev/2026-06-01.json" in out and "stale" in out, out
    assert "pipe compile --interval 2026-06-01" in out, out
    assert "Traceback" not in out
    assert not (root / "warehouse.duckdb").exists()
    assert files_under(root / "plans") == before
    assert state(root, "select count(*) from runs") in ([], [(0,)])

    # recompiling is the way out
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    code, out = run(root)
    assert code == 0, out


def test_a_run_compiles_a_missing_plan_first(example_project):
    code, out = run(example_project)
    assert code == 0, out
    assert out.startswith("compiled plans/dev/2026-06-01.json (35 tasks)"), out
    assert (example_project / "plans" / "dev" / "2026-06-01.json").is_file()


def test_no_wait_exits_1_naming_the_lock_holder(example_project):
    lock = ProjectLock(example_project)
    lock.acquire(False, what="pipe backfill 2026-06")
    try:
        code, out = run(example_project, "--no-wait")
    finally:
        lock.release()
    assert code == 1, out
    assert f"pid {os.getpid()}: pipe backfill 2026-06" in out, out
    assert "another pipe process" in out and "Traceback" not in out, out
    assert not (example_project / "warehouse.duckdb").exists()
    assert state(example_project, "select count(*) from runs") in ([], [(0,)])


def test_without_no_wait_a_run_waits_for_the_lock_saying_why(example_project):
    root = example_project
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    lock = ProjectLock(root)
    lock.acquire(False, what="the test")
    proc = subprocess.Popen([pipe_executable(), "run", "--interval", "2026-06-01"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # blocks until the run says it waits
        assert f"waiting for the project lock held by pid {os.getpid()}: the test" in line
        assert not (root / "warehouse.duckdb").exists()
    finally:
        lock.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "35 succeeded" in out


FAILING = {
    "models/a/base.sql": "select 1 as id, timestamp '2026-06-01 10:00' as ts",
    "models/a/base.yml": "kind: incremental\ntime_column: ts\ngrain: hourly\n",
    "models/a/bad.sql": "select id, 1 / 0 as x, cast('x' as integer) as y from a.base",
    "models/a/after_bad.sql": "select * from a.bad",
}


def test_status_after_a_failed_run_shows_the_reason_and_what_is_missing(write_project):
    root = write_project(FAILING)
    code, out = run(root)
    assert code == 1, out
    assert "failed: a.bad 2026-06-01" in out and "Conversion Error" in out, out

    code, text = run_cli(["status", "--project", root])
    assert code == 0, text
    assert "failed" in text and "a.bad 2026-06-01T00:00:00: " in text, text
    assert "Conversion Error" in text, text
    assert "LINE 1" not in text and "^^^" not in text, text  # the message, not the excerpt
    assert "upstream_failed" in text and "upstream a.bad failed" in text, text
    assert "missing:" in text and "a.bad: never built" in text, text
    assert "a.base: [2026-06-02T00:00:00," in text, text  # only 06-01 ran

    report = run_cli_json(["status", "--json", "--project", root])
    [last] = report["runs"][:1]
    assert last["status"] == "failed"
    assert last["counts"] == {"failed": 1, "success": 24, "upstream_failed": 1}
    by_model = {f["model"]: f for f in report["failures"]}
    assert by_model["a.bad"]["status"] == "failed"
    assert "Conversion Error" in by_model["a.bad"]["reason"]
    assert by_model["a.after_bad"]["status"] == "upstream_failed"
    assert report["missing"]["a.bad"] == "never built"
    assert report["missing"]["a.after_bad"] == "never built"
    assert report["missing"]["a.base"][0][0] == "2026-06-02T00:00:00"  # from the next day

    missing = run_cli_json(["status", "--json", "--interval", "2026-06-01", "--project", root])
    assert "a.base" not in missing["missing"], missing["missing"]
    assert missing["missing"]["a.bad"] == "never built"
    assert outcomes(root)[("a.bad", "2026-06-01T00:00:00")][0] == "failed"


def test_run_json_output_is_one_document(example_project):
    proc = subprocess.run([pipe_executable(), "run", "--interval", "2026-06-01", "--json"],
                          cwd=example_project, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "success" and doc["counts"] == {"success": 35}
    assert len(doc["tasks"]) == 35


def test_pipe_schema_only_and_no_temp_tables_after_runs(example_project):
    root = example_project
    assert run(root)[0] == 0
    assert temp_tables(root) == []
    with warehouse(root) as con:
        schemas = {t.split(".")[0] for t in tables_of(con)}
    assert schemas <= {"raw", "staging", "marts", "reports", "_pipe"}


def test_status_before_any_run(example_project):
    """`pipe status` before any run: no runs, everything missing."""
    report = run_cli_json(["status", "--json", "--project", example_project])
    assert report["runs"] == [] and report["failures"] == []
    assert report["missing"]["staging.customers"] == "never built"


READERS = {
    "sources.yml": "sources:\n  - name: raw.version\n",
    "models/a/big.sql": "select i, v from range(2000000) t(i), raw.version",
    "models/a/inc.sql": ("select i, v, {{ interval_start }} + i * interval 1 second as ts\n"
                         "from range(50000) t(i), raw.version"),
    "models/a/inc.yml": "kind: incremental\ntime_column: ts\n",
}


def test_a_concurrent_reader_sees_the_old_table_or_the_new_one(write_project):
    """While a rerun republishes, a reader on another connection never sees a missing,
    partial or mixed table or interval."""
    root = write_project(READERS)
    with warehouse(root) as con:
        con.execute("create schema raw; create table raw.version as select 1 as v")
    assert run(root)[0] == 0

    stop = threading.Event()
    seen = set()
    reads = []

    def read():
        with warehouse(root) as con:
            while not stop.is_set():
                for sql in ("select count(*), min(v), max(v) from a.big",
                            "select count(*), min(v), max(v) from a.inc"):
                    seen.add((sql[-5:], *con.execute(sql).fetchone()))
                    reads.append(1)

    with warehouse(root) as con:
        con.execute("update raw.version set v = 2")
    reader = Background(read)
    try:
        wait_until(lambda: reads, what="the reader's first read")
        for _ in range(3):
            code, out = run(root, "--force")
            assert code == 0, out
    finally:
        stop.set()
        reader.join()
    assert len(reads) > 20
    assert seen <= {("a.big", 2000000, 1, 1), ("a.big", 2000000, 2, 2),
                    ("a.inc", 50000, 1, 1), ("a.inc", 50000, 2, 2)}, seen
    assert ("a.big", 2000000, 2, 2) in seen or ("a.inc", 50000, 2, 2) in seen, seen


def test_sessions_run_in_utc_whatever_the_machine_zone(write_project):
    """A timestamptz time column is cut at UTC midnight, not at the machine's."""
    root = write_project({
        "sources.yml": "sources:\n  - name: raw.tz_events\n",
        "models/a/tz_events.sql": (
            "select id, ts, cast(ts as timestamp) as local_ts from raw.tz_events\n"
            "where ts >= {{ interval_start }} and ts < {{ interval_end }}"),
        "models/a/tz_events.yml": "kind: incremental\ntime_column: ts\n",
    })
    with warehouse(root) as con:
        con.execute("create schema raw; create table raw.tz_events as select * from (values "
                    "(1, timestamptz '2026-06-01 02:00:00+00'), "
                    "(2, timestamptz '2026-06-01 23:00:00+00'), "
                    "(3, timestamptz '2026-06-02 01:00:00+00')) t(id, ts)")
    proc = run_pipe(["run", "--interval", "2026-06-01"], root,
                    env={"TZ": "America/New_York"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stdout, proc.stdout
    got = rows(root, "select id, local_ts::varchar from a.tz_events order by id")
    assert got == [(1, "2026-06-01 02:00:00"), (2, "2026-06-01 23:00:00")]
