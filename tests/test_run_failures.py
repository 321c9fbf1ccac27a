"""Failing tasks at run time: retries with backoff then success, retries exhausted, a timeout
that interrupts a slow query, and `upstream_failed` propagating through two levels while
unrelated branches and intervals publish."""

from __future__ import annotations

import itertools
import time

import duckdb
import pytest

from pipe.adapters.base import AdapterError
from pipe.adapters.duckdb import DuckDBAdapter
from runner_helpers import (
    Background,
    attempts,
    outcomes,
    rows,
    run,
    state,
    statuses_by_model,
    temp_tables,
    wait_until,
    warehouse,
)

FLAKY = {
    "sources.yml": "sources:\n  - name: raw.flaky\n",
    "models/a/flaky.sql": "select id from raw.flaky",
    "models/a/flaky.yml": "retries: 2\nretry_delay: 1s\n",
    "models/a/down.sql": "select count(*) as n from a.flaky",
}


def test_retry_after_a_failed_attempt_then_success(write_project):
    root = write_project(FLAKY)

    def repair_after_first_failure():
        # the failed attempt is in the state store before the retry is due
        wait_until(lambda: state(root, "select 1 from attempts where model = 'a.flaky' "
                                       "and status = 'failed'"), what="the failed attempt")
        with warehouse(root) as con:  # the run's own DuckDB instance: same process
            con.execute("create schema if not exists raw")
            con.execute("create table raw.flaky as select 7 as id")
        return time.time()

    helper = Background(repair_after_first_failure)
    code, out = run(root)
    repaired_at = helper.join()
    assert code == 0, out
    assert "RETRY a.flaky" in out and "Catalog Error" in out, out
    assert "(attempt 2)" in out, out
    first, second = attempts(root, model="a.flaky")
    assert (first["attempt"], first["status"], second["attempt"], second["status"]) == (
        1, "failed", 2, "success")
    assert "raw.flaky" in first["error"]
    gap = second["started_at"] - first["finished_at"]
    assert 1.0 <= gap <= 1.25 + 0.5, gap  # retry_delay, plus up to 25% jitter
    assert second["started_at"] > repaired_at
    assert rows(root, "select n from a.down") == [(1,)]
    assert statuses_by_model(root) == {"a.flaky": {"success"}, "a.down": {"success"}}


def test_retries_exhausted_fail_the_task_with_exponential_backoff(write_project):
    root = write_project({
        "sources.yml": "sources:\n  - name: raw.never\n",
        "models/a/never.sql": "select * from raw.never",
        "models/a/never.yml": "retries: 2\nretry_delay: 100ms\n",
        "models/a/down.sql": "select * from a.never",
        "models/b/fine.sql": "select 1 as x",
    })
    code, out = run(root)
    assert code == 1, out
    tries = attempts(root, model="a.never")
    assert [(a["attempt"], a["status"]) for a in tries] == [
        (1, "failed"), (2, "failed"), (3, "failed")]
    gaps = [b["started_at"] - a["finished_at"] for a, b in itertools.pairwise(tries)]
    assert 0.1 <= gaps[0] <= 0.125 + 0.5, gaps  # retry_delay * 2**0, up to 25% jitter
    assert 0.2 <= gaps[1] <= 0.25 + 0.5, gaps  # retry_delay * 2**1
    assert out.count("RETRY a.never") == 2 and "FAIL  a.never" in out, out
    assert statuses_by_model(root) == {"a.never": {"failed"}, "a.down": {"upstream_failed"},
                                       "b.fine": {"success"}}


SLOW = "select sum(hash(i)) as s from range(10000000000) t(i)"  # over a minute in DuckDB


def test_timeout_interrupts_a_slow_query(write_project):
    root = write_project({
        "models/a/slow.sql": SLOW,
        "models/a/slow.yml": "timeout: 1s\nretries: 1\nretry_delay: 100ms\n",
        "models/a/after_slow.sql": "select * from a.slow",
        # runs next on the same worker connection (--concurrency 1): the interrupt is spent
        "models/b/fine.sql": "select 1 as x",
    })
    started = time.monotonic()
    code, out = run(root, "--concurrency", "1")
    took = time.monotonic() - started
    assert code == 1, out
    assert took < 6, took  # two 1s attempts, not the query's natural minutes
    tries = attempts(root, model="a.slow")
    assert [a["status"] for a in tries] == ["failed", "failed"]
    for a in tries:
        assert a["error"].startswith("timeout after 1."), a["error"]
        assert "(timeout: 1s)" in a["error"]
        assert a["finished_at"] - a["started_at"] < 2.5
    assert "failed: a.slow 2026-06-01: timeout after 1." in out, out
    assert statuses_by_model(root) == {"a.slow": {"failed"}, "a.after_slow": {"upstream_failed"},
                                       "b.fine": {"success"}}
    assert rows(root, "select x from b.fine") == [(1,)]
    assert temp_tables(root) == []


TWO_LEVELS = {
    # hour 05 fails; every other hour publishes
    "models/a/hourly.sql": (
        "select case when hour({{ interval_start }}) = 5 then error('boom at five') "
        "else 1 end as x, {{ interval_start }} as ts"),
    "models/a/hourly.yml": "kind: incremental\ntime_column: ts\ngrain: hourly\n",
    "models/a/daily.sql": (
        "select sum(x) as x, {{ interval_start }} as ts from a.hourly "
        "where ts >= {{ interval_start }} and ts < {{ interval_end }}"),
    "models/a/daily.yml": "kind: incremental\ntime_column: ts\n",
    "models/a/top.sql": "select * from a.daily",
    "models/a/top_view.sql": "select * from a.top",
    "models/a/top_view.yml": "kind: view\n",
    # an unrelated branch with a full model on top
    "models/b/side.sql": "select 2 as y, {{ interval_start }} as ts",
    "models/b/side.yml": "kind: incremental\ntime_column: ts\ngrain: hourly\n",
    "models/b/side_total.sql": "select sum(y) as y from b.side",
}


def test_upstream_failed_propagates_through_two_levels(write_project):
    root = write_project(TWO_LEVELS)
    code, out = run(root)
    assert code == 1, out
    got = outcomes(root)
    five = "2026-06-01T05:00:00"
    assert got[("a.hourly", five)][0] == "failed"
    assert "boom at five" in got[("a.hourly", five)][1]
    assert statuses_by_model(root) == {
        "a.hourly": {"success", "failed"}, "a.daily": {"upstream_failed"},
        "a.top": {"upstream_failed"}, "a.top_view": {"upstream_failed"},
        "b.side": {"success"}, "b.side_total": {"success"}}
    for model in ("a.daily", "a.top", "a.top_view"):
        [(_, reason)] = [v for (m, _), v in got.items() if m == model]
        assert reason == "upstream a.hourly failed", (model, reason)
    assert rows(root, "select count(*) from a.hourly") == [(23,)]
    assert rows(root, "select y from b.side_total") == [(48,)]
    assert "upstream failed (3 tasks): a.daily, a.top, a.top_view" in out, out
    # nothing downstream of the failure was attempted
    assert {a["model"] for a in attempts(root)} == {"a.hourly", "b.side", "b.side_total"}
    assert temp_tables(root) == []


def test_every_warehouse_error_is_an_adapter_error(tmp_path):
    """Catalog lookups too: a DuckDB error there must fail the task like any SQL error
    (and be retried), not escape as an internal error."""
    con = duckdb.connect()
    adapter = DuckDBAdapter(None, tmp_path, con=con)
    assert adapter.relation_kind("main.nothing") is None
    con.close()
    for call in (lambda: adapter.relation_kind("main.nothing"), adapter.temp_relations,
                 lambda: adapter.execute("select 1"), lambda: adapter.query("select 1")):
        with pytest.raises(AdapterError):
            call()
