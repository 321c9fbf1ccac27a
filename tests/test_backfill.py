"""`pipe backfill`: caps, ordering, dry run, interrupt and resume, --force.

Real DuckDB warehouses and real subprocesses; timings are read from the attempts the state
store recorded, never from sleeps.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from conftest import files_under, pipe_executable, run_cli, run_cli_json
from runner_helpers import attempts, last_run_id, outcomes, peak_overlap, snapshot, state

# ~20-40 ms of real work in DuckDB per task: long enough for tasks to overlap
HEAVY = "(select count(*) as n from range(4000000) t(i) where i % 7 = 3)"

PIPE_YML = """\
name: bf
start: 2026-06-01
schedule: daily
concurrency: 4
pools: {narrow: 2}
targets:
  dev: {adapter: duckdb, path: warehouse.duckdb}
"""


def _incremental(src: str, extra: str = "") -> str:
    return (
        f"select ts, v, (select n from {HEAVY}) as work from {src}\n"
        "where ts >= {{ interval_start }} and ts < {{ interval_end }}\n" + extra
    )


EVENTS = (
    "select (timestamp '2026-06-01' + i * interval 3 hour) as ts, i as v\nfrom range(0, 160) t(i)\n"
)


@pytest.fixture
def project(write_project):
    return write_project(
        {
            "models/raw/events.sql": EVENTS,
            "models/staging/a.sql": _incremental("raw.events"),
            "models/staging/a.yml": "kind: incremental\ntime_column: ts\npool: narrow\n",
            "models/staging/b.sql": _incremental("raw.events"),
            "models/staging/b.yml": "kind: incremental\ntime_column: ts\npool: narrow\n"
            "max_concurrency: 1\n",
            "models/staging/c.sql": _incremental("raw.events"),
            "models/staging/c.yml": "kind: incremental\ntime_column: ts\ndepends_on_past: true\n",
            "models/marts/total.sql": "select count(*) as n, sum(v) as v from staging.a\n"
            "union all select count(*), sum(v) from staging.b\n",
        },
        pipe_yml=PIPE_YML,
    )


def backfill(root, *args, start="2026-06-01", end="2026-06-09"):
    return run_cli(["backfill", "--project", root, "--start", start, "--end", end, *args])


def spans(rows, model=None):
    return [
        (r["started_at"], r["finished_at"]) for r in rows if model is None or r["model"] == model
    ]


def test_caps_hold_together(project):
    code, out = backfill(project, "--concurrency", "3")
    assert code == 0, out
    rows = attempts(project)
    assert len(rows) == 1 + 3 * 8 + 1  # raw.events, 3 models x 8 days, marts.total
    assert peak_overlap(spans(rows)) <= 3  # global
    narrow = [r for r in rows if r["model"] in ("staging.a", "staging.b")]
    assert peak_overlap(spans(narrow)) <= 2  # pool
    assert peak_overlap(spans(rows, "staging.b")) == 1  # max_concurrency
    assert peak_overlap(spans(rows)) >= 2  # and there was parallelism to cap


def test_backfill_section_of_pipe_yml_sets_its_own_concurrency(project):
    yml = (project / "pipe.yml").read_text() + "backfill: {concurrency: 1}\n"
    (project / "pipe.yml").write_text(yml)
    code, out = backfill(project)
    assert code == 0, out
    assert peak_overlap(spans(attempts(project))) == 1


def test_full_model_builds_once_after_every_upstream_interval(project):
    code, out = backfill(project)
    assert code == 0, out
    rows = attempts(project)
    total = [r for r in rows if r["model"] == "marts.total"]
    assert len(total) == 1
    ups = [r for r in rows if r["model"] in ("staging.a", "staging.b")]
    assert len(ups) == 16
    assert total[0]["started_at"] >= max(r["finished_at"] for r in ups)
    assert snapshot(project)["marts.total"][2] == [(64, 2016), (64, 2016)]  # 8 events a day, 8 days


def test_depends_on_past_runs_intervals_in_order(project):
    code, out = backfill(project, "--concurrency", "4")
    assert code == 0, out
    c = sorted(
        (r for r in attempts(project) if r["model"] == "staging.c"),
        key=lambda r: r["interval_start"],
    )
    assert len(c) == 8
    for before, after in zip(c, c[1:], strict=False):
        assert after["started_at"] >= before["finished_at"]


def test_newest_first_starts_with_the_latest_interval(project):
    code, out = backfill(project, "--concurrency", "1", "--newest-first", "--select", "+staging.a")
    assert code == 0, out
    order = [r["interval_start"] for r in attempts(project) if r["model"] == "staging.a"]
    assert order == sorted(order, reverse=True)
    code, out = backfill(project, "--concurrency", "1", "--force", "--select", "+staging.b")
    assert code == 0, out
    order = [r["interval_start"] for r in attempts(project) if r["model"] == "staging.b"]
    assert order == sorted(order)


def test_dry_run_shows_the_expansion_and_writes_nothing(project):
    before = files_under(project)
    code, out = backfill(project, "--dry-run")
    assert code == 0, out
    assert "would run 26 of 26 tasks" in out
    assert "nothing was written" in out
    assert files_under(project) == before  # no warehouse, no state, no plans
    # after a partial backfill the dry run tells skipped from to-run, and why
    assert backfill(project, "--end", "2026-06-05")[0] == 0
    state_before = files_under(project / ".pipe")
    warehouse_before = (project / "warehouse.duckdb").read_bytes()
    report = run_cli_json(
        [
            "backfill",
            "--project",
            project,
            "--start",
            "2026-06-01",
            "--end",
            "2026-06-09",
            "--dry-run",
            "--json",
        ]
    )
    by_model = {m["model"]: m for m in report["models"]}
    assert by_model["staging.a"] == {
        "model": "staging.a",
        "kind": "incremental",
        "intervals": 8,
        "to_run": 4,
        "skipped": 4,
        "reasons": {"never published": 4},
    }
    assert report["estimate_known_for"]  # past attempts give an estimate
    assert files_under(project / ".pipe") == state_before
    assert (project / "warehouse.duckdb").read_bytes() == warehouse_before
    # a model change is a reason of its own, and so is --force
    (project / "models/staging/a.sql").write_text(_incremental("raw.events", "and v >= 0\n"))
    report = run_cli_json(
        [
            "backfill",
            "--project",
            project,
            "--start",
            "2026-06-01",
            "--end",
            "2026-06-05",
            "--dry-run",
            "--json",
        ]
    )
    by_model = {m["model"]: m for m in report["models"]}
    assert by_model["staging.a"]["reasons"] == {"model fingerprint changed": 4}
    assert by_model["staging.b"]["skipped"] == 4
    report = run_cli_json(
        [
            "backfill",
            "--project",
            project,
            "--start",
            "2026-06-01",
            "--end",
            "2026-06-05",
            "--dry-run",
            "--json",
            "--force",
        ]
    )
    by_model = {m["model"]: m for m in report["models"]}
    assert by_model["staging.b"]["reasons"] == {"forced": 4}


def test_interval_explosion_guard(write_project):
    root = write_project(
        {
            "models/raw/e.sql": "select timestamp '2026-06-01' as ts",
            "models/raw/e.yml": "kind: incremental\ntime_column: ts\ngrain: hourly\n",
        },
        pipe_yml=PIPE_YML.replace("2026-06-01", "1970-01-01"),
    )
    code, out = run_cli(
        ["backfill", "--project", root, "--start", "1970-01-01", "--end", "2026-06-01", "--dry-run"]
    )
    assert code == 2
    assert "more than 10,000 intervals for raw.e" in out
    assert "--yes" in out
    assert "Traceback" not in out


def test_force_rebuilds_published_intervals(project):
    assert backfill(project, "--end", "2026-06-03")[0] == 0
    code, out = backfill(project, "--end", "2026-06-03")
    assert code == 0
    assert set(s for s, _ in outcomes(project).values()) == {"skipped"}
    code, out = backfill(project, "--end", "2026-06-03", "--force")
    assert code == 0, out
    assert set(s for s, _ in outcomes(project).values()) == {"success"}
    assert len(attempts(project)) == 1 + 3 * 2 + 1


def test_backfill_persists_one_plan_per_interval_and_the_once_tasks(project):
    assert backfill(project, "--end", "2026-06-04")[0] == 0
    plans = sorted(p.relative_to(project).as_posix() for p in (project / "plans").rglob("*.json"))
    assert plans == [
        "plans/dev/2026-06-01.json",
        "plans/dev/2026-06-02.json",
        "plans/dev/2026-06-03.json",
        "plans/dev/backfill/2026-06-01T0000--2026-06-04T0000.json",
    ]
    once = json.loads((project / plans[-1]).read_text())
    assert sorted(t["model"] for t in once["tasks"]) == ["marts.total", "raw.events"]
    # the per-interval plans are exactly what `pipe compile` writes
    before = files_under(project / "plans")
    code, out = run_cli(
        ["compile", "--project", project, "--start", "2026-06-01", "--end", "2026-06-04", "--check"]
    )
    assert code == 0, out
    assert files_under(project / "plans") == before


def _published_in_warehouse(root) -> set[str]:
    """model||interval_start of every task whose data is in the warehouse (the truth,
    whatever the state store managed to record before a kill)."""
    from runner_helpers import rows, tables_of, warehouse

    with warehouse(root) as con:
        present = tables_of(con)
    out = set()
    if "raw.events" in present:
        out.add("raw.events2026-06-01T00:00:00")
    for model in ("staging.a", "staging.b", "staging.c"):
        if model in present:
            out |= {
                model + d
                for (d,) in rows(
                    root,
                    f"SELECT DISTINCT strftime(date_trunc('day', ts), '%Y-%m-%dT%H:%M:%S') "
                    f"FROM {model}",
                )
            }
    return out


def _uninterrupted(write_project_copy):
    code, out = backfill(write_project_copy)
    assert code == 0, out
    return snapshot(write_project_copy)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupt_then_resume_finishes_exactly_the_remainder(project, write_project, sig):
    reference_root = write_project(
        {
            p.relative_to(project).as_posix(): p.read_text()
            for p in project.rglob("*")
            if p.is_file()
        },
        pipe_yml=None,
        name="reference",
    )
    expected = _uninterrupted(reference_root)

    cmd = [
        pipe_executable(),
        "backfill",
        "--project",
        str(project),
        "--start",
        "2026-06-01",
        "--end",
        "2026-06-09",
        "--concurrency",
        "2",
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        seen = 0
        for line in proc.stdout:
            if line.startswith("OK "):
                seen += 1
                if seen == 6:
                    proc.send_signal(sig)
                    break
        rest = proc.stdout.read()
        code = proc.wait(timeout=60)
    if sig == signal.SIGINT:
        assert code == 130, rest
        assert "INTERRUPTED" in rest
        first = last_run_id(project)
        assert state(project, "SELECT status FROM runs WHERE run_id = ?", (first,)) == [
            ("interrupted",)
        ]
    else:
        assert code == -signal.SIGKILL
        first = last_run_id(project)

    published_before = {
        r[0] for r in state(project, "SELECT model || interval_start FROM published")
    }
    in_warehouse = _published_in_warehouse(project)
    assert 6 <= len(in_warehouse) < 26
    # the state store records a publish only after the warehouse commit; after SIGKILL it
    # may lag, and the warehouse's own ledger (_pipe.ledger) says what really happened
    assert published_before <= in_warehouse

    code, out = backfill(project, "--concurrency", "2")
    assert code == 0, out
    second = last_run_id(project)
    assert second == first + 1
    if sig == signal.SIGKILL:  # the killed run is recognised as crashed
        assert state(project, "SELECT status FROM runs WHERE run_id = ?", (first,)) == [
            ("crashed",)
        ]
    rerun = {r["model"] + r["interval_start"] for r in attempts(project, second)}
    assert rerun.isdisjoint(in_warehouse)  # nothing published is run again
    assert rerun | in_warehouse == {
        r[0] for r in state(project, "SELECT model || interval_start FROM published")
    }
    assert len(rerun | in_warehouse) == 26  # nothing skipped that was not published
    assert snapshot(project) == expected  # and no temp table left (snapshot asserts it)


def test_a_rerun_does_not_wait_for_a_sensor_when_everything_after_it_is_published(write_project):
    root = write_project(
        {
            "sources.yml": 'sources:\n  - name: ext.feed\n    wait_for: "select count(*) > 0 '
            'from ext.feed"\n    poke_every: 0.1s\n    wait_timeout: 1s\n',
            "models/s/m.sql": "select count(*) as n from ext.feed",
        }
    )
    import duckdb

    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("create schema ext; create table ext.feed as select 1 as x")
    con.close()
    code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("delete from ext.feed")  # the sensor would now wait, then time out
    con.close()
    code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    assert "2 skipped" in out


def _emptied(path) -> None:
    path.write_text("")


def _recompiled_differently(path) -> None:
    data = json.loads(path.read_text())
    for t in data["tasks"]:
        t["fingerprint"] = "0" * 16  # as if the model changed and its plan was recompiled
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_emptied, "plans/dev/2026-06-02.json: this plan file is empty"),
        (
            _recompiled_differently,
            "plans/dev/2026-06-02.json: this plan file has no task ",
        ),
    ],
)
def test_a_plan_file_damaged_mid_backfill_fails_its_tasks_and_the_run_is_recorded(
    write_project, damage, said
):
    """A worker loads a task's SQL from its interval's plan file when it starts the task;
    a file damaged after the backfill began fails those tasks with the reason (exit 1, the
    run recorded as failed, never left 'running'), not the run with a traceback."""
    from runner_helpers import Background, wait_until, warehouse

    root = write_project(
        {
            "sources.yml": 'sources:\n  - name: ext.feed\n    wait_for: "select count(*) > 0 '
            'from ext.feed"\n    poke_every: 0.05s\n    wait_timeout: 60s\n',
            "models/s/m.sql": "select ts from ext.feed\n"
            "where ts >= {{ interval_start }} and ts < {{ interval_end }}",
            "models/s/m.yml": "kind: incremental\ntime_column: ts\n",
            "models/s/free.sql": "select 1 as x",
        }
    )
    day2 = root / "plans" / "dev" / "2026-06-02.json"

    def damage_then_feed():
        # s.free succeeded: the plan files exist and the sensor is waiting for ext.feed
        wait_until(
            lambda: state(
                root, "select 1 from attempts where model = 's.free' and status = 'success'"
            ),
            what="s.free",
        )
        damage(day2)
        with warehouse(root) as con:  # the run's own DuckDB instance: same process
            con.execute("create schema if not exists ext")
            con.execute("create table ext.feed as select timestamp '2026-06-01 01:00' as ts")

    helper = Background(damage_then_feed)
    code, out = run_cli(
        [
            "backfill",
            "--project",
            root,
            "--start",
            "2026-06-01",
            "--end",
            "2026-06-03",
            "--concurrency",
            "1",
        ]
    )
    helper.join()
    assert code == 1, out
    assert "Traceback" not in out and "bug in pipe" not in out, out
    assert said in out, out
    assert state(root, "select status from runs") == [("failed",)]
    assert state(root, "select count(*) from attempts where status = 'running'") == [(0,)]
    by_day = {
        (m, s[:10]): st
        for m, s, st in state(
            root, "select model, interval_start, status from attempts where model = 's.m'"
        )
    }
    assert by_day == {("s.m", "2026-06-01"): "success", ("s.m", "2026-06-02"): "failed"}
