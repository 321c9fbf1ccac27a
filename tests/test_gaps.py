"""No silent gaps (SPEC §7), on every engine: what the ledger may call done.

Each rule: complete intervals only, upstream first, republishing cascades, lookback and
late rows, drift (a dropped table), on_schema_change. Every test runs on DuckDB and
Postgres (the contract suite's `engine` fixture) and reads the warehouse, the exit code,
the message and `pipe status --json`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest

from conftest import PIPE_YML, pipe_executable, run_cli, run_cli_json
from runner_helpers import statuses_by_model
from test_contract import Run, engine, load_events, pytest_generate_tests  # noqa: F401

EVENTS = {
    "sources.yml": "sources:\n  - name: raw.events\n",
    "models/staging/events.sql": (
        "select id, ts, amount from raw.events\n"
        "where ts >= {{ interval_start }} and ts < {{ interval_end }}\n"
    ),
    "models/staging/events.yml": "kind: incremental\ntime_column: ts\n",
    "models/marts/daily.sql": (
        "select cast(ts as date) as day, count(*) as n, sum(amount) as total\n"
        "from staging.events\n"
        "where ts >= {{ interval_start }} and ts < {{ interval_end }}\n"
        "group by 1\n"
    ),
    "models/marts/daily.yml": "kind: incremental\ntime_column: day\n",
}


def pipe(root, *args):
    return run_cli([args[0], "--project", root, *args[1:]])


def status(root, *args) -> dict:
    return run_cli_json(["status", "--project", root, "--json", *args])


def daily(wh) -> list[tuple]:
    return wh.query("select cast(day as varchar), n, total from marts.daily order by 1")


def relations(wh) -> set[str]:
    return set(wh.relations())


# ---------------------------------------------------------------- complete intervals only


def test_an_incomplete_interval_is_refused_or_built_as_partial_then_completed(engine):
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1})
    code, out = pipe(
        root, "run", "--interval", "2026-06-01", "--execution-time", "2026-06-01T12:00"
    )
    assert code == 2, out
    assert "interval 2026-06-01 is not complete: it ends at 2026-06-02T00:00:00Z" in out
    assert "--allow-partial" in out and "Traceback" not in out
    assert not {r for r in relations(wh) if r.startswith(("staging.", "marts."))}

    code, out = pipe(
        root,
        "run",
        "--interval",
        "2026-06-01",
        "--execution-time",
        "2026-06-01T12:00",
        "--allow-partial",
    )
    assert code == 0, out
    assert "recorded as partial" in out
    report = status(root, "--execution-time", "2026-06-01T12:00")
    assert {(p["model"], p["start"]) for p in report["partial"]} == {
        ("staging.events", "2026-06-01T00:00:00"),
        ("marts.daily", "2026-06-01T00:00:00"),
    }
    assert all("ends at 2026-06-02T00:00:00Z" in p["reason"] for p in report["partial"])

    # the rest of the day lands; the first run after the day ends rebuilds it, no --force
    load_events(wh, {"2026-06-01": 5})
    code, out = pipe(
        root, "run", "--interval", "2026-06-01", "--execution-time", "2026-06-02T01:00"
    )
    assert code == 0, out
    assert statuses_by_model(root) == {"staging.events": {"success"}, "marts.daily": {"success"}}
    assert daily(wh) == [("2026-06-01", 3, 15)]
    assert status(root)["partial"] == []
    code, out = pipe(root, "run", "--interval", "2026-06-01")
    assert code == 0 and "2 skipped" in out, out


def test_a_backfill_leaves_out_the_incomplete_intervals_at_its_end(engine):
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2, "2026-06-03": 3})
    code, out = pipe(
        root,
        "backfill",
        "--start",
        "2026-06-01",
        "--end",
        "2026-06-05",
        "--execution-time",
        "2026-06-03T05:00",
    )
    assert code == 0, out
    assert (
        "leaving out [2026-06-03T00:00:00, 2026-06-05T00:00:00): not complete at the "
        "execution time 2026-06-03T05:00:00Z"
    ) in out
    assert [r[0] for r in daily(wh)] == ["2026-06-01", "2026-06-02"]
    code, out = pipe(
        root,
        "backfill",
        "--start",
        "2026-06-03",
        "--end",
        "2026-06-05",
        "--execution-time",
        "2026-06-03T05:00",
    )
    assert code == 2 and "nothing to backfill" in out, out


# ---------------------------------------------------------------- upstream first


def test_a_selected_task_whose_upstream_is_missing_does_not_run(engine):
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1})
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--select", "marts.daily")
    assert code == 2, out
    assert (
        "marts.daily 2026-06-01 reads staging.events [2026-06-01T00:00:00, "
        "2026-06-02T00:00:00), which is not published"
    ) in out
    assert "--select '+marts.daily'" in out
    assert "marts.daily" not in relations(wh)
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--select", "+marts.daily")
    assert code == 0, out
    assert daily(wh) == [("2026-06-01", 3, 3)]
    # and a backfill says the same before it runs anything, and its dry run foresees it
    span = ("--start", "2026-06-02", "--end", "2026-06-03", "--select", "marts.daily")
    code, out = pipe(root, "backfill", *span, "--dry-run")
    assert code == 0 and "blocked: 1 task(s)" in out and "--select '+marts.daily'" in out, out
    code, out = pipe(root, "backfill", *span)
    assert code == 2 and "which is not published" in out, out


WITH_FULL_UPSTREAM = {
    **{k: v for k, v in EVENTS.items() if not k.startswith("models/marts")},
    "models/staging/tags.sql": "select distinct amount, 'tag' || cast(amount as varchar) as tag\n"
    "from raw.events\n",
    "models/marts/tagged.sql": (
        "select e.id, e.ts, t.tag from staging.events e join staging.tags t using (amount)\n"
        "where e.ts >= {{ interval_start }} and e.ts < {{ interval_end }}\n"
    ),
    "models/marts/tagged.yml": "kind: incremental\ntime_column: ts\n",
}


def test_a_full_upstream_built_by_a_covering_backfill_is_read_and_tracked(engine):
    """A full model is keyed by run label or backfill span; its table holds its latest
    build. A selected downstream task reads that build when its key covers the task's
    interval (as the backfill's own tasks did), records the read, and goes stale when
    that build is published again; a build for another day is not taken."""
    root = engine.project(WITH_FULL_UPSTREAM)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2})
    span = ("--start", "2026-06-01", "--end", "2026-06-03")
    code, out = pipe(root, "backfill", *span)
    assert code == 0, out

    code, out = pipe(root, "run", "--interval", "2026-06-02", "--select", "marts.tagged", "--force")
    assert code == 0, out
    assert statuses_by_model(root) == {"marts.tagged": {"success"}}
    assert status(root)["stale"] == []

    code, out = pipe(root, "backfill", *span, "--select", "staging.tags", "--force")
    assert code == 0, out
    stale = {(i["model"], i["start"]) for i in status(root)["stale"]}
    assert ("marts.tagged", "2026-06-02T00:00:00") in stale, stale

    # a later label of the full model replaces its table: not a build of 2026-06-02
    code, out = pipe(root, "run", "--interval", "2026-06-04", "--select", "staging.tags")
    assert code == 0, out
    code, out = pipe(root, "run", "--interval", "2026-06-02", "--select", "marts.tagged", "--force")
    assert code == 2, out
    assert (
        "marts.tagged 2026-06-02 reads staging.tags [2026-06-02T00:00:00, "
        "2026-06-03T00:00:00), which is not published"
    ) in out, out


# ---------------------------------------------------------------- republishing cascades


def test_republishing_an_upstream_makes_downstream_stale_until_the_next_run(engine):
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2})
    for day in ("2026-06-01", "2026-06-02"):
        assert pipe(root, "run", "--interval", day)[0] == 0
    assert status(root)["stale"] == []

    load_events(wh, {"2026-06-01": 10, "2026-06-02": 2})  # a fix upstream
    code, out = pipe(
        root, "run", "--interval", "2026-06-01", "--select", "staging.events", "--force"
    )
    assert code == 0, out
    report = status(root)
    [item] = report["stale"]
    assert (item["model"], item["start"], item["end"]) == (
        "marts.daily",
        "2026-06-01T00:00:00",
        "2026-06-02T00:00:00",
    )
    assert (
        "staging.events [2026-06-01T00:00:00, 2026-06-02T00:00:00) was published again"
        in item["reason"]
    )
    text = pipe(root, "status")[1]
    assert "stale: built from upstream data that was published again" in text
    assert "fix: pipe backfill --start 2026-06-01 --end 2026-06-02 --select marts.daily" in text

    # the next covering run rebuilds it without --force, and only it
    code, out = pipe(root, "run", "--interval", "2026-06-01")
    assert code == 0, out
    assert statuses_by_model(root) == {"staging.events": {"skipped"}, "marts.daily": {"success"}}
    assert daily(wh) == [("2026-06-01", 3, 30), ("2026-06-02", 3, 6)]
    assert status(root)["stale"] == []
    # the run record says why it ran: the ledger explains its decision
    record = pipe(root, "status", "--run", str(status(root)["runs"][0]["run_id"]))[1]
    assert "stale: staging.events [2026-06-01T00:00:00, 2026-06-02T00:00:00) was" in record


def test_a_new_label_of_a_full_model_leaves_older_downstream_current(engine, example_project):
    root = engine.use(example_project)
    for day in ("2026-06-01", "2026-06-02"):
        code, out = pipe(root, "run", "--interval", day)
        assert code == 0, out
    assert status(root)["stale"] == []
    code, out = pipe(root, "run", "--interval", "2026-06-01")
    assert code == 0 and "35 skipped" in out, out


# ---------------------------------------------------------------- lookback, late rows


def test_lookback_rebuilds_late_intervals_and_their_downstream_in_the_same_run(engine):
    root = engine.project(
        {**EVENTS, "models/staging/events.yml": "kind: incremental\ntime_column: ts\nlookback: 1\n"}
    )
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2, "2026-06-03": 3})
    for day in ("2026-06-01", "2026-06-02"):
        assert pipe(root, "run", "--interval", day)[0] == 0
    assert daily(wh) == [("2026-06-01", 3, 3), ("2026-06-02", 3, 6)]
    # a late row for 06-02 lands after 06-02 was published
    wh.execute("insert into raw.events values (100, timestamp '2026-06-02 13:00:00', 7)")
    code, out = pipe(root, "run", "--interval", "2026-06-03")
    assert code == 0, out
    assert daily(wh) == [("2026-06-01", 3, 3), ("2026-06-02", 4, 13), ("2026-06-03", 3, 9)]
    report = status(root)
    assert report["stale"] == []
    assert report["late_rows"] == [{"model": "staging.events", "intervals": 1, "rows": 1}]
    assert "staging.events: +1 rows over 1 republished interval(s)" in pipe(root, "status")[1]
    # never before the project's start: the first interval has nothing to look back to
    plan = run_cli_json(["compile", "--project", root, "--interval", "2026-06-01", "--json"])
    assert plan["plans"][0]["tasks"] == 2


# ---------------------------------------------------------------- drift


def test_a_dropped_table_is_reported_and_rebuilt(engine):
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2})
    for day in ("2026-06-01", "2026-06-02"):
        assert pipe(root, "run", "--interval", day, "--select", "staging.events")[0] == 0
    wh.execute("drop table staging.events")

    report = status(root)
    [gone] = report["missing_tables"]
    assert gone["model"] == "staging.events" and gone["intervals"] == 2
    assert "missing from the warehouse" in gone["reason"]
    text = pipe(root, "status")[1]
    assert "missing tables:" in text
    assert "fix: pipe backfill --start 2026-06-01 --end 2026-06-03 --select staging.events" in text

    code, out = pipe(root, "run", "--interval", "2026-06-02", "--select", "staging.events")
    assert code == 0, out
    assert "staging.events: its table is missing from the warehouse" in out
    assert wh.query("select count(*) from staging.events") == [(3,)]
    report = status(root)
    assert report["missing_tables"] == []
    # 06-01 was in the dropped table: no longer published, so missing, and rebuilt next
    assert report["missing"]["staging.events"][0][0] == "2026-06-01T00:00:00"
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--select", "staging.events")
    assert code == 0 and "1 succeeded" in out, out
    assert wh.query("select count(*) from staging.events") == [(6,)]


# ---------------------------------------------------------------- on_schema_change

WIDER = (
    "select id, ts, amount, amount * 2 as doubled from raw.events\n"
    "where ts >= {{ interval_start }} and ts < {{ interval_end }}\n"
)


def test_a_new_column_fails_by_default_and_publishes_nothing(engine):
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2})
    assert pipe(root, "run", "--interval", "2026-06-01", "--select", "staging.events")[0] == 0
    (root / "models/staging/events.sql").write_text(WIDER)
    code, out = pipe(root, "run", "--interval", "2026-06-02", "--select", "staging.events")
    assert code == 1, out
    assert "the columns of staging.events changed: added doubled" in out
    assert "on_schema_change: append_new_columns" in out and "--full-refresh" in out
    assert wh.query("select count(*) from staging.events") == [(3,)]
    assert [c for c, _ in wh.contents("staging.events")[0]] == ["id", "ts", "amount"]


@pytest.mark.parametrize("policy", ["append_new_columns", "sync_all_columns"])
def test_on_schema_change_adds_and_drops_columns(engine, policy):
    root = engine.project(
        {
            **EVENTS,
            "models/staging/events.yml": (
                f"kind: incremental\ntime_column: ts\non_schema_change: {policy}\n"
            ),
        }
    )
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2, "2026-06-03": 3})
    assert pipe(root, "run", "--interval", "2026-06-01", "--select", "staging.events")[0] == 0
    (root / "models/staging/events.sql").write_text(WIDER)
    code, out = pipe(root, "run", "--interval", "2026-06-02", "--select", "staging.events")
    assert code == 0, out
    assert f"on_schema_change {policy}: added doubled on staging.events" in out
    assert (
        wh.query("select cast(ts as date), min(doubled) from staging.events group by 1 order by 1")[
            1
        ][1]
        == 4
    )
    # the column goes away again
    (root / "models/staging/events.sql").write_text(EVENTS["models/staging/events.sql"])
    code, out = pipe(root, "run", "--interval", "2026-06-03", "--select", "staging.events")
    assert code == 0, out
    columns = [c for c, _ in wh.contents("staging.events")[0]]
    assert columns == (
        ["id", "ts", "amount", "doubled"]
        if policy == "append_new_columns"
        else ["id", "ts", "amount"]
    )
    assert wh.query("select count(*) from staging.events") == [(9,)]


# ---------------------------------------------------------------- --full-refresh


def test_full_refresh_swaps_in_a_rebuilt_table_only_when_every_interval_passed(engine):
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2, "2026-06-03": 3})
    for day in ("2026-06-01", "2026-06-02"):
        assert pipe(root, "run", "--interval", day)[0] == 0
    (root / "models/staging/events.sql").write_text(WIDER)
    (root / "models/staging/events.yml").write_text(
        "kind: incremental\ntime_column: ts\nchecks:\n  - expression: doubled < 6\n"
    )
    before = wh.query("select id, amount from staging.events order by id")
    assert pipe(root, "compile", "--start", "2026-06-01", "--end", "2026-06-04")[0] == 0

    # 06-03 fails its check: the swap never happens, readers keep the old table
    code, out = pipe(
        root,
        "backfill",
        "--full-refresh",
        "--select",
        "staging.events",
        "--start",
        "2026-06-03",
        "--end",
        "2026-06-04",
    )
    assert code == 1, out
    assert "check failed: expression(doubled < 6)" in out
    assert wh.query("select id, amount from staging.events order by id") == before
    assert wh.temp_tables() == []
    assert status(root)["stale"] == []

    (root / "models/staging/events.yml").write_text("kind: incremental\ntime_column: ts\n")
    assert pipe(root, "compile", "--start", "2026-06-01", "--end", "2026-06-04")[0] == 0
    code, out = pipe(
        root,
        "backfill",
        "--full-refresh",
        "--select",
        "staging.events",
        "--start",
        "2026-06-03",
        "--end",
        "2026-06-04",
    )
    assert code == 0, out
    assert "full refresh: staging.events replaced by the rebuild of 3 interval(s)" in out
    assert wh.query(
        "select cast(ts as date), count(*), max(doubled) from staging.events group by 1 order by 1"
    ) == wh.query(
        "select cast(ts as date), count(*), max(amount * 2) from raw.events group by 1 order by 1"
    )
    assert wh.temp_tables() == []
    # the downstream that read the old table is stale now, and says how to repair it
    assert {(s["model"], s["start"][:10]) for s in status(root)["stale"]} == {
        ("marts.daily", "2026-06-01"),
        ("marts.daily", "2026-06-02"),
    }
    code, out = pipe(root, "backfill", "--start", "2026-06-01", "--end", "2026-06-04")
    assert code == 0, out
    assert status(root)["stale"] == []
    assert daily(wh) == [("2026-06-01", 3, 3), ("2026-06-02", 3, 6), ("2026-06-03", 3, 9)]


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_full_refresh_of_a_chain_rebuilds_the_downstream_from_the_new_upstream(
    engine,  # noqa: F811
    concurrency,
):
    """--full-refresh of staging.events+ (both incremental): marts.daily's rebuild reads
    staging.events by its name, so it waits for that model's swap, not its old table."""
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2})
    assert pipe(root, "backfill", "--start", "2026-06-01", "--end", "2026-06-03")[0] == 0
    load_events(wh, {"2026-06-01": 10, "2026-06-02": 20})  # late corrections
    code, out = pipe(
        root,
        "backfill",
        "--full-refresh",
        "--select",
        "staging.events+",
        "--start",
        "2026-06-01",
        "--end",
        "2026-06-03",
        "--concurrency",
        concurrency,
    )
    assert code == 0, out
    assert daily(wh) == [("2026-06-01", 3, 30), ("2026-06-02", 3, 60)]
    assert status(root)["stale"] == []
    assert wh.temp_tables() == []


@pytest.mark.parametrize("policy", ["append_new_columns", "sync_all_columns"])
def test_a_column_change_backfilled_by_four_workers_is_applied_once(engine, policy):  # noqa: F811
    """Several intervals of one model publish at once after its columns changed: the
    first to publish adds (or drops) the column; the others must not do it again (they
    failed with 'already exists' / 'does not exist') but see it and publish."""
    root = engine.project(
        {
            **EVENTS,
            "models/staging/events.yml": (
                f"kind: incremental\ntime_column: ts\non_schema_change: {policy}\n"
            ),
        }
    )
    wh = engine.warehouse(root)
    days = {f"2026-06-{d:02d}": d for d in range(1, 13)}
    load_events(wh, days)
    dates = ("--start", "2026-06-01", "--end", "2026-06-13")
    span = ("--select", "staging.events", *dates)
    assert pipe(root, "backfill", *span, "--concurrency", "4")[0] == 0
    (root / "models/staging/events.sql").write_text(WIDER)
    assert pipe(root, "compile", *dates)[0] == 0
    code, out = pipe(root, "backfill", *span, "--concurrency", "4", "--force")
    assert code == 0, out
    assert wh.query("select count(*), count(doubled), sum(doubled) from staging.events") == [
        (36, 36, 2 * 3 * sum(days.values()))
    ]
    if policy == "sync_all_columns":  # and back: the column goes again, once
        (root / "models/staging/events.sql").write_text(EVENTS["models/staging/events.sql"])
        assert pipe(root, "compile", *dates)[0] == 0
        code, out = pipe(root, "backfill", *span, "--concurrency", "4", "--force")
        assert code == 0, out
        assert [c for c, _ in wh.contents("staging.events")[0]] == ["id", "ts", "amount"]
    assert wh.temp_tables() == []


# ---------------------------------------------------------------- crash safety


class Backfill(Run):
    """`pipe backfill ARGS` in a subprocess, read line by line like test_contract.Run."""

    def __init__(self, root, *args: str, timeout: float = 120):
        self.root = root
        self.err = open(root / f"stderr-{id(self)}.txt", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [pipe_executable(), "backfill", *args],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.watchdog = threading.Timer(timeout, self.proc.kill)
        self.watchdog.start()
        self.lines = []


LATE = {
    **EVENTS,
    "models/staging/events.yml": "kind: incremental\ntime_column: ts\nlookback: 2\n",
    "models/marts/total.sql": "select count(*) as n, sum(total) as total from marts.daily\n",
    "models/reports/busy_days.sql": "select day, n from marts.daily where n > 3\n",
    "models/reports/busy_days.yml": "kind: view\n",
}
DAYS = {f"2026-06-{d:02d}": d for d in range(1, 10)}


def late_data_project(engine, name: str):
    """Six days published, then late rows for two of them."""
    root = engine.project(
        LATE, PIPE_YML.replace("schedule: daily\n", "schedule: daily\nconcurrency: 2\n"), name
    )
    wh = engine.warehouse(root)
    load_events(wh, DAYS)
    code, out = pipe(root, "backfill", "--start", "2026-06-01", "--end", "2026-06-07")
    assert code == 0, out
    wh.execute(
        "insert into raw.events values (100, timestamp '2026-06-05 13:00:00', 50), "
        "(101, timestamp '2026-06-06 02:00:00', 60)"
    )
    return root, wh


def test_kill_9_during_a_backfill_with_lookback_resumes_to_the_tables_of_a_clean_run(engine):
    ref, ref_wh = late_data_project(engine, "reference")
    code, out = pipe(ref, "backfill", "--start", "2026-06-07", "--end", "2026-06-10")
    assert code == 0, out
    reference = ref_wh.snapshot()
    assert ("2026-06-05", 4, 65) in daily(ref_wh)  # the late rows made it downstream

    root, wh = late_data_project(engine, "killed")
    for seen in (0, 2, 5):
        r = Backfill(root, "--start", "2026-06-07", "--end", "2026-06-10")
        try:
            r.read_until(seen)
            r.signal(signal.SIGKILL)
            code, out = r.finish()
        finally:
            r.close()
        assert code == -signal.SIGKILL, out
    code, out = pipe(root, "backfill", "--start", "2026-06-07", "--end", "2026-06-10")
    assert code == 0, out
    assert wh.snapshot() == reference
    report = status(root)
    assert (report["stale"], report["partial"], report["missing_tables"]) == ([], [], [])


# ---------------------------------------------------------------- fingerprints follow meaning


def test_an_edit_that_changes_no_meaning_reruns_nothing(engine):
    from runner_helpers import attempts
    from test_fingerprints import MODELS, PROJECT, VARS_YML, edit

    root = engine.project(PROJECT, VARS_YML)
    assert pipe(root, "run", "--interval", "2026-06-01")[0] == 0
    edit(root, "models/staging/orders.sql", "-- the orders, cleaned\n", "/* the orders */\n")
    edit(root, "models/marts/uses_macro.sql", "select id,", "SELECT id, -- scaled\n")
    edit(root, "macros/m.sql", "{{ c }} * 3", "{{ c }} * 4")  # a macro nothing uses
    edit(root, "pipe.yml", "unused: 2", "unused: 3")  # a var nothing uses
    assert pipe(root, "compile", "--interval", "2026-06-01")[0] == 0
    code, out = pipe(root, "run", "--interval", "2026-06-01")
    assert code == 0 and "7 skipped" in out, out
    assert attempts(root) == []
    edit(root, "models/staging/orders.sql", "amount >= 0", "amount > 0")
    assert pipe(root, "compile", "--interval", "2026-06-01")[0] == 0
    assert pipe(root, "run", "--interval", "2026-06-01")[0] == 0
    assert {a["model"] for a in attempts(root)} == MODELS
