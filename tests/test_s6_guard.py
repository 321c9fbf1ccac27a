"""on_schema_change inside one backfill: the columns of an incremental model change
between two of its intervals in the same run.

On DuckDB an interval whose table's columns the run has read already lists no columns of
its temp table: its INSERT checks them (adapters.duckdb.guarded_insert_sql) and, when they
differ, the task is redone the careful way, which says what changed. These tests make the
third of three intervals differ (a backfill runs oldest first): added and removed columns,
under `fail` and under the policies that change the table. Postgres runs them too (it
always lists the columns).
"""

from __future__ import annotations

import pytest

from test_contract import engine, load_events, pytest_generate_tests  # noqa: F401
from test_gaps import EVENTS, pipe

ADDED = (
    "select id, ts, amount{% if '2026-06-03' in ds %}, amount * 2 as doubled{% endif %}\n"
    "from raw.events\nwhere ts >= {{ interval_start }} and ts < {{ interval_end }}\n"
)
REMOVED = (
    "select id, ts{% if '2026-06-03' not in ds %}, amount{% endif %}\n"
    "from raw.events\nwhere ts >= {{ interval_start }} and ts < {{ interval_end }}\n"
)


def _backfill(engine, sql: str, policy: str):  # noqa: F811 - the contract fixture
    root = engine.project(
        {
            **EVENTS,
            "models/staging/events.sql": sql,
            "models/staging/events.yml": (
                f"kind: incremental\ntime_column: ts\non_schema_change: {policy}\n"
            ),
        }
    )
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2, "2026-06-03": 3})
    code, out = pipe(
        root,
        "backfill",
        "--start",
        "2026-06-01",
        "--end",
        "2026-06-04",
        "--select",
        "staging.events",
        "--concurrency",
        "1",
    )
    return wh, code, out


@pytest.mark.parametrize(("sql", "said"), [(ADDED, "added doubled"), (REMOVED, "removed amount")])
def test_a_column_change_mid_backfill_fails_that_interval_only(engine, sql, said):  # noqa: F811 - the contract fixture
    wh, code, out = _backfill(engine, sql, "fail")
    assert code == 1, out
    assert f"the columns of staging.events changed: {said}" in out
    # the two intervals before it are published, with the table's first columns
    assert wh.query("select count(*) from staging.events") == [(6,)]
    assert [c for c, _ in wh.contents("staging.events")[0]] == ["id", "ts", "amount"]


def test_a_column_added_mid_backfill_is_appended(engine):  # noqa: F811 - the contract fixture
    wh, code, out = _backfill(engine, ADDED, "append_new_columns")
    assert code == 0, out
    assert "on_schema_change append_new_columns: added doubled on staging.events" in out
    got = wh.query(
        "select count(*), count(doubled) from staging.events group by cast(ts as date) order by 1"
        ", cast(ts as date)"
    )
    assert sorted(got) == [(3, 0), (3, 0), (3, 3)]


def test_a_column_removed_mid_backfill_is_dropped_under_sync_all_columns(engine):  # noqa: F811 - the contract fixture
    wh, code, out = _backfill(engine, REMOVED, "sync_all_columns")
    assert code == 0, out
    assert "on_schema_change sync_all_columns: dropped amount on staging.events" in out
    assert [c for c, _ in wh.contents("staging.events")[0]] == ["id", "ts"]
    assert wh.query("select count(*) from staging.events") == [(9,)]
