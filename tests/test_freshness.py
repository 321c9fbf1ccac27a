"""Freshness: `pipe status --freshness` against a real run's state and a real warehouse.

The age of a model is measured from the end of its newest published interval (data time),
so the thresholds are tested with an explicit `now`; the command itself is tested where the
answer does not depend on today's date (the intervals are in 2026-06)."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from conftest import PIPE_YML, run_cli
from pipe.compiler import compile_project
from pipe.freshness import collect
from pipe.loader import load_project

PROJECT = {
    "seeds/raw/n.csv": "id\n1\n2\n",
    "models/s/daily.sql": "select id from raw.n\n",
    "models/s/daily.yml": "freshness: {warn_after: 26h, error_after: 48h}\n",
    "models/s/loose.sql": "select id from raw.n\n",
    "models/s/never.sql": "select id from s.daily\n",
    "models/s/never.yml": "freshness: {warn_after: 1d}\n",
    "sources.yml": "sources:\n"
    "  - name: ext.events\n"
    "    loaded_at: loaded\n"
    "    freshness: {error_after: 2h}\n"
    "  - name: ext.batches\n"
    '    loaded_at: "select max(finished) from ext.events"\n'
    "    freshness: {warn_after: 1h, error_after: 3h}\n",
}


@pytest.fixture
def project(write_project):
    root = write_project(PROJECT)
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("create schema ext")
    con.execute("create table ext.events (loaded timestamp, finished timestamptz)")
    con.execute(
        "insert into ext.events values ('2026-06-02 09:00', '2026-06-02 07:30+00'), "
        "('2026-06-02 08:00', null)"
    )
    con.execute("create table ext.batches (x int)")
    con.close()
    code, out = run_cli(
        ["run", "--interval", "2026-06-01", "--select", "+s.daily +s.loose", "--project", root]
    )
    assert code == 0, out
    return root


def statuses(root, now: str) -> dict[str, tuple]:
    cp = compile_project(load_project(root))
    report = collect(cp, datetime.fromisoformat(now))
    return {r.name: (r.status, r.age, r.latest and r.latest.isoformat()) for r in report.rows}


def test_thresholds_against_the_newest_interval_end(project):
    got = statuses(project, "2026-06-02T10:00:00")
    assert got == {
        "s.daily": ("ok", 10 * 3600.0, "2026-06-02T00:00:00"),
        "s.loose": ("-", 10 * 3600.0, "2026-06-02T00:00:00"),
        "s.never": ("warn", None, None),  # never published, only warn_after set
        "ext.events": ("ok", 3600.0, "2026-06-02T09:00:00"),
        "ext.batches": ("warn", 2.5 * 3600, "2026-06-02T07:30:00"),
    }
    later = statuses(project, "2026-06-03T03:00:00")
    assert later["s.daily"][0] == "warn" and later["ext.events"][0] == "error"
    assert later["ext.batches"][0] == "error"
    assert statuses(project, "2026-06-04T00:00:01")["s.daily"][0] == "error"


def test_the_command_exits_1_past_error_after(project):
    code, out = run_cli(["status", "--freshness", "--project", project])
    assert code == 1, out  # 2026-06 data is months old today
    lines = out.splitlines()
    assert lines[0].split() == [
        "name",
        "kind",
        "latest",
        "data",
        "age",
        "warn_after",
        "error_after",
        "status",
    ]
    daily = next(line for line in lines if line.startswith("s.daily"))
    assert "2026-06-02 00:00:00" in daily and daily.split()[-3:-1] == ["26h", "48h"]
    assert daily.endswith("error")
    assert lines[-1] == "3 past error_after: s.daily, ext.batches, ext.events"
    code, out = run_cli(["status", "--freshness", "--json", "--project", project])
    assert code == 1
    report = json.loads(out)
    assert report["failed"] is True
    rows = {r["name"]: r for r in report["freshness"]}
    assert rows["s.loose"]["status"] == "-" and rows["s.loose"]["latest"] == "2026-06-02T00:00:00"
    assert rows["s.never"]["reason"] == "never published"
    assert rows["ext.events"]["latest"] == "2026-06-02T09:00:00"


def test_no_thresholds_exit_0(write_project):
    root = write_project({"seeds/raw/n.csv": "id\n1\n", "models/s/a.sql": "select * from raw.n\n"})
    code, out = run_cli(["status", "--freshness", "--project", root])
    assert code == 0, out
    assert "s.a" in out and "never published" in out


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"models/s/a.yml": "freshness: {warn_after: 2d, error_after: 1d}\n"},
            "models/s/a.yml:1: 'freshness.warn_after' is longer than 'error_after'",
        ),
        (
            {"models/s/a.yml": "freshness: {error_after: soon}\n"},
            "models/s/a.yml:1: 'error_after' must be a duration",
        ),
        (
            {"models/s/a.yml": "freshness: {}\n"},
            "models/s/a.yml:1: 'freshness' needs 'warn_after' or 'error_after'",
        ),
        (
            {"models/s/a.yml": "freshness: {warn_afterr: 1h}\n"},
            "unknown key 'warn_afterr' in freshness (did you mean 'warn_after'?)",
        ),
        (
            {"sources.yml": "sources:\n  - name: ext.e\n    freshness: {warn_after: 1h}\n"},
            "sources.yml:3: a source with 'freshness' needs 'loaded_at'",
        ),
    ],
)
def test_freshness_config_errors(write_project, files, message):
    root = write_project(
        {"seeds/raw/n.csv": "id\n1\n", "models/s/a.sql": "select * from raw.n\n", **files},
        pipe_yml=PIPE_YML,
    )
    code, out = run_cli(["status", "--freshness", "--project", root])
    assert code == 2, out
    assert message in out


def test_a_partial_interval_is_not_fresh_data(project):
    code, out = run_cli(
        [
            "run",
            "--interval",
            "2026-06-02",
            "--select",
            "+s.daily",
            "--execution-time",
            "2026-06-02T12:00",
            "--allow-partial",
            "--project",
            project,
        ]
    )
    assert code == 0, out
    got = statuses(project, "2026-06-02T13:00:00")
    assert got["s.daily"][2] == "2026-06-02T00:00:00"  # not 06-03: that one is partial
