"""Data checks at run time: an `error` check blocks publish and everything downstream while
other branches go on; `warn` only reports; thresholds; every check kind counts the rows it
should, and every result is stored per (run, model, interval, check)."""

from __future__ import annotations

import json

import pytest

from runner_helpers import attempts, contents, outcomes, rows, run, state, temp_tables, warehouse

# raw.orders is a source the test fills; a.orders checks it, a.totals and a.report hang
# below it, b.other is an unrelated branch.
BRANCHES = {
    "sources.yml": "sources:\n  - name: raw.orders\n",
    "models/a/orders.sql": "select id, customer, amount from raw.orders",
    "models/a/orders.yml": "checks:\n  - unique: [id]\n  - not_null: [customer]\n",
    "models/a/totals.sql": "select customer, sum(amount) as total from a.orders group by 1",
    "models/a/report.sql": "select count(*) as customers from a.totals",
    "models/a/report.yml": "kind: view\n",
    "models/b/other.sql": "select 42 as answer",
}


def fill_orders(root, values: list[tuple]):
    with warehouse(root) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute("CREATE OR REPLACE TABLE raw.orders (id INTEGER, customer VARCHAR, "
                    "amount INTEGER)")
        con.executemany("INSERT INTO raw.orders VALUES (?, ?, ?)", values)


def table_state(root, tables):
    with warehouse(root) as con:
        return {t: contents(con, t) for t in tables}


def test_failing_error_check_leaves_target_identical_and_blocks_downstream(write_project):
    root = write_project(BRANCHES)
    fill_orders(root, [(1, "ann", 10), (2, "bob", 20)])
    code, out = run(root)
    assert code == 0, out
    published = ["a.orders", "a.totals", "a.report", "b.other"]
    before = table_state(root, published)

    # the source goes bad: a duplicate id and a missing customer (twice)
    fill_orders(root, [(1, "ann", 10), (2, "bob", 20), (2, "bob", 21), (3, None, 5),
                       (4, None, 6)])
    code, out = run(root, interval="2026-06-02")
    assert code == 1, out
    assert ("failed: a.orders 2026-06-02: check failed: unique(id) (1 failing rows), "
            "not_null(customer) (2 failing rows)") in out, out
    assert "upstream failed (2 tasks): a.report, a.totals" in out, out
    assert "unique(id): {id=2, n_rows=2}" in out, out  # a sample of the offending rows
    assert table_state(root, published) == before
    assert temp_tables(root) == []

    got = outcomes(root)
    iv = "2026-06-02T00:00:00"
    assert got[("a.orders", iv)][0] == "failed"
    assert got[("a.totals", iv)] == ("upstream_failed", "upstream a.orders failed")
    assert got[("a.report", iv)] == ("upstream_failed", "upstream a.orders failed")
    assert got[("b.other", iv)][0] == "success"
    # a check failure is data, not flakiness: one attempt, no retry
    [a] = attempts(root, model="a.orders")
    assert a["status"] == "failed" and "unique(id)" in a["error"]
    assert state(root, "select model from published where interval_start = ? "
                       "order by model", (iv,)) == [("b.other",)]

    checks = state(root, "select check_name, severity, status, failures, sample "
                         "from check_results where run_id = (select max(run_id) from runs) "
                         "order by check_name")
    assert [c[:4] for c in checks] == [("not_null(customer)", "error", "error", 2),
                                       ("unique(id)", "error", "error", 1)]
    assert json.loads(checks[1][4]) == [{"id": 2, "n_rows": 2}]
    assert sorted(r["id"] for r in json.loads(checks[0][4])) == [3, 4]


def test_fixing_the_data_and_rerunning_publishes_what_was_blocked(write_project):
    root = write_project(BRANCHES)
    fill_orders(root, [(1, "ann", 10), (1, "ann", 11)])
    code, out = run(root)
    assert code == 1, out
    with warehouse(root) as con:
        assert "a.orders" not in {f"{s}.{n}" for s, n in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
    fill_orders(root, [(1, "ann", 10), (2, "ann", 11)])
    code, out = run(root)
    assert code == 0, out
    assert "1 skipped" in out and "3 succeeded" in out, out  # b.other was published
    assert rows(root, "select * from a.totals") == [("ann", 21)]
    assert rows(root, "select * from a.report") == [(1,)]


def test_warn_check_only_reports(write_project):
    files = dict(BRANCHES)
    files["models/a/orders.yml"] = ("checks:\n  - unique: [id]\n    severity: warn\n"
                                    "  - not_null: [customer]\n")
    root = write_project(files)
    fill_orders(root, [(1, "ann", 10), (1, "ann", 11)])
    code, out = run(root)
    assert code == 0, out
    assert "warning: check unique(id): 1 failing rows" in out, out
    assert rows(root, "select * from a.totals") == [("ann", 21)]
    assert state(root, "select check_name, status, failures from check_results "
                       "order by check_name") == [("not_null(customer)", "pass", 0),
                                                  ("unique(id)", "warn", 1)]


THRESHOLDS = {
    "sources.yml": "sources:\n  - name: raw.items\n",
    "models/a/items.sql": "select id, ok from raw.items",
    "models/a/items.yml": """\
checks:
  - expression: ok
    name: below_both
    warn_if: "> 7"
    error_if: "> 7"
  - expression: ok
    name: warn_band
    warn_if: ">= 5"
    error_if: "> 10"
  - expression: ok
    name: warn_severity_ignores_error_if
    severity: warn
    error_if: "> 0"
  - expression: ok
    name: default_rule
    severity: warn
""",
    "models/a/strict.sql": "select id, ok from raw.items",
    "models/a/strict.yml": "checks:\n  - expression: ok\n    error_if: '>= 7'\n",
}


def test_warn_if_and_error_if_thresholds(write_project):
    root = write_project(THRESHOLDS)
    with warehouse(root) as con:
        con.execute("create schema raw")
        # 7 rows fail `ok`; the NULL one passes, as in dbt
        con.execute("create table raw.items as select i as id, i >= 7 or i = 20 as ok "
                    "from range(20) t(i) union all select 99, null")
    code, out = run(root)
    assert code == 1, out
    got = {(m, c): (st, n) for m, c, st, n in state(
        root, "select model, check_name, status, failures from check_results")}
    assert got == {
        ("a.items", "below_both"): ("pass", 7),
        ("a.items", "warn_band"): ("warn", 7),
        ("a.items", "warn_severity_ignores_error_if"): ("warn", 7),
        ("a.items", "default_rule"): ("warn", 7),
        ("a.strict", "expression(ok)"): ("error", 7),
    }
    assert rows(root, "select count(*) from a.items") == [(21,)]
    assert "failed: a.strict 2026-06-01: check failed: expression(ok) (7 failing rows)" in out


EVERY_KIND = {
    "models/a/customers.sql": "select * from (values (1), (2), (3)) t(id)",
    "models/a/facts.sql": """\
select * from (values
  (1, 1, 'x', 'placed',   timestamp '2026-06-01 01:00', 5),
  (1, 1, 'x', 'shipped',  timestamp '2026-06-01 02:00', -1),
  (2, null, 'y', 'lost',  timestamp '2026-06-01 03:00', null),
  (3, 9, 'y', null,       timestamp '2026-06-01 04:00', 7),
  (4, 8, 'z', 'returned', timestamp '2026-06-01 05:00', 2000000)
) t(id, customer_id, part, status, ts, amount)
where ts >= {{ interval_start }} and ts < {{ interval_end }}
""",
    "models/a/facts.yml": """\
kind: incremental
time_column: ts
checks:
  - not_null: [customer_id, status]
  - unique: [id, [id, part], [part, status]]
  - accepted_values: {column: status, values: [placed, shipped, returned]}
  - relationships: {column: customer_id, to: a.customers.id}
  - row_count: {min: 6}
  - row_count: {max: 5}
    name: row_count_max
  - expression: "amount >= 0"
  - sql: "select * from {{ this }} where amount > 1e6"
""",
}


def test_every_check_kind_counts_its_failing_rows(write_project):
    root = write_project(EVERY_KIND)
    code, out = run(root)
    assert code == 1, out
    got = {c: (st, n) for c, st, n in state(
        root, "select check_name, status, failures from check_results "
              "where model = 'a.facts'")}
    assert got == {
        "not_null(customer_id)": ("error", 1),
        "not_null(status)": ("error", 1),
        "unique(id)": ("error", 1),          # id 1 twice
        "unique(id, part)": ("error", 1),    # (1, x) twice
        "unique(part, status)": ("pass", 0),
        "accepted_values(status)": ("error", 1),  # 'lost'; NULL passes
        "relationships(customer_id)": ("error", 2),  # 9 and 8; NULL passes
        "row_count": ("error", 1),           # 5 rows < 6
        "row_count_max": ("pass", 0),
        "expression(amount >= 0)": ("error", 1),  # -1; NULL passes
        "sql": ("error", 1),
    }
    assert "a.facts" not in {t for (t,) in rows(
        root, "select table_schema || '.' || table_name from information_schema.tables")}


@pytest.mark.parametrize("published_first", [False, True])
def test_incremental_checks_see_only_their_interval(write_project, published_first):
    """unique(id) on an incremental model: the same id in another interval is no failure."""
    root = write_project({
        "models/a/daily.sql": "select 1 as id, {{ interval_start }} as ts",
        "models/a/daily.yml": "kind: incremental\ntime_column: ts\nchecks:\n"
                              "  - unique: [id]\n  - row_count: {max: 1}\n",
    })
    days = ["2026-06-01", "2026-06-02"]
    for day in (days if published_first else days[::-1]):
        code, out = run(root, interval=day)
        assert code == 0, out
    assert rows(root, "select id, ts::date::varchar from a.daily order by ts") == [
        (1, "2026-06-01"), (1, "2026-06-02")]
