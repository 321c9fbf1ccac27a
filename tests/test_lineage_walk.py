"""sqlcolumns.column_lineage walks sqlglot's scopes itself instead of building sqlglot's
lineage nodes: it must give sqlglot's lineage walk's answer (column_lineage_reference) for
every query, errors included. The cases: every block of tests/fixtures/lineage.sql, and
queries the walk leaves to sqlglot or that are easy to get wrong (quoting, stars over
tables of unknown columns, set operations, a recursive CTE, table functions, PIVOT).
bench/check_lineage.py compares the two over every model of a generated project.
"""

from __future__ import annotations

import pytest

from pipe import sqlcolumns
from pipe.errors import SqlError
from test_lineage import CASES

SCHEMA = {
    "raw": {
        "orders": {c: "UNKNOWN" for c in ("id", "customer_id", "amount", "status", "ts")},
        "people": {c: "UNKNOWN" for c in ("id", "name", "country")},
    },
    "ext": {"events": {c: "UNKNOWN" for c in ("id", "person_id", "kind", "ts")}},
    "staging": {
        "orders": {c: "UNKNOWN" for c in ("id", "customer_id", "cents", "status", "ts")},
        "people": {c: "UNKNOWN" for c in ("id", "name", "country")},
        "Mixed": {c: "UNKNOWN" for c in ("Amount", "weird.col", "select", "1x", "plain")},
    },
}

HARD = [
    'select "MixedCase", o."Amount" as "Total", o.id from raw.orders o',
    "select Amount, o.ID, o.Status as S from Raw.Orders o",
    "select Amount, `Weird Name`, _x from Raw.Blob",
    'select a$b, "Ä", ä from ext.blob',
    'select "Amount", "weird.col", "select", "1x", plain from staging."Mixed"',
    'select * from staging."Mixed"',
    'select m.* from staging."Mixed" as m join raw.orders o on o.id = m.plain',
    'select * from "raw"."orders"',
    'select "weird.col", "order" as "o.k", "Select" from ext.blob',
    "select x from ext.blob",
    "select x from ext.blob as b join raw.orders as o on o.id = b.id",
    "select * from ext.blob",
    "select b.* from ext.blob as b",
    "select * exclude (id) from ext.blob",
    "select * replace (amount + 1 as amount) from raw.orders",
    "select * from ext.blob union all select * from raw.orders",
    "select id, amount from raw.orders union select id, 1 from raw.people "
    "intersect select id, 2 from ext.events",
    "select * from (select id from raw.orders union all select id from ext.blob) as u",
    "with recursive t(n) as (select 1 union all select n + 1 from t where n < 3) select n from t",
    "with c(a, b) as (select id, amount from raw.orders) select a, b from c",
    "select * from (select * from ext.blob) as s",
    "select t.* from (select id from raw.orders) as t",
    "select id from raw.orders join raw.people using (id)",
    "select id, (select max(o.amount) from raw.orders o where o.customer_id = p.id) as m "
    "from raw.people p",
    "select exists(select 1 from raw.orders) as e, (select 1) as one",
    "select sum(amount) over w as s from raw.orders window w as (partition by status)",
    "select amount as a, a + 1 as b from raw.orders",
    "select 1, 2",
    "select count(*) from raw.orders",
    "select ? as p from raw.orders",
    "select unnest([1, 2]) as x",
    "select x from unnest([1, 2]) as t(x)",
    "select o.id, l.v from raw.orders o, lateral (select o.amount * 2 as v) l",
    "select * from (values (1, 2)) as v(a, b)",
    "select * from generate_series(1, 3)",
    "select * from read_csv('x.csv')",
    "select * from raw.orders pivot (sum(amount) for status in ('a', 'b'))",
    "select * from raw.orders, raw.people",
    "select o.amount.x, o.id from raw.orders o",
    "select id from raw.orders qualify row_number() over (partition by id order by ts) = 1",
    "insert into t values (1)",
    "select from where",
    "select a from (select 1 as b) as s",
]


def _text(sql: str) -> str:
    """A fixture case as the compiled SQL lineage reads (Jinja rendered by hand)."""
    return (
        sql.replace("{{ ref('staging.orders') }}", "staging.orders")
        .replace("{{ interval_start }}", "'2026-06-01'")
        .replace("{{ interval_end }}", "'2026-06-02'")
    )


def _answer(fn, sql: str, dialect: str):
    try:
        return fn(sql, dialect, SCHEMA)
    except SqlError as exc:
        return ("SqlError", exc.message)


@pytest.mark.parametrize(
    "dialect", ["duckdb", "postgres", "spark", "snowflake", "clickhouse", "bigquery"]
)
@pytest.mark.parametrize(
    "sql", [_text(c[1]) for c in CASES] + HARD, ids=[c[0] for c in CASES] + HARD
)
def test_the_walk_gives_sqlglots_answer(sql, dialect):
    assert _answer(sqlcolumns.column_lineage, sql, dialect) == _answer(
        sqlcolumns.column_lineage_reference, sql, dialect
    )


def test_the_walk_answers_a_join_of_ctes_itself():
    """The common query goes through the walk, not through sqlglot's lineage nodes."""
    sqlglot, _, _ = sqlcolumns._sqlglot()
    from sqlglot.optimizer import build_scope

    tree = sqlglot.parse_one(
        "with p as (select id, name from raw.people) "
        "select p.name, o.amount * 2 as x from p join raw.orders o on o.customer_id = p.id",
        read="duckdb",
    )
    from sqlglot.optimizer.qualify import qualify

    tree = qualify(tree, dialect="duckdb", schema=SCHEMA, identify=False, quote_identifiers=False)
    assert sqlcolumns._walk(build_scope(tree), tree, "duckdb") == (
        sqlcolumns.ColumnSources("name", (("raw", "people", "name"),)),
        sqlcolumns.ColumnSources("x", (("raw", "orders", "amount"),)),
    )
