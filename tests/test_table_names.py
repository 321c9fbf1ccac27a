"""Table names on the run side: pipe's own `schema.table` names are read with
`TableName.parse`, a warehouse listing's with `TableName.listed` (a table there may have
a quoted name with a dot, which pipe's names never have)."""

from __future__ import annotations

import pytest

from pipe.adapters.duckdb import DuckDBAdapter
from pipe.config import Target
from pipe.names import TableName


def test_parse_reads_one_dot_only():
    assert TableName.parse("a.b") == TableName("a", "b")
    for bad in ("ab", "a.b.c"):
        with pytest.raises(ValueError):
            TableName.parse(bad)


def test_a_listing_splits_at_the_first_dot():
    assert TableName.listed("raw.events.2026") == TableName("raw", "events.2026")
    assert str(TableName.listed("raw.events.2026")) == "raw.events.2026"


def test_names_sort_as_their_spelling():
    names = [TableName("b", "a"), TableName("a", "z"), TableName("a", "b")]
    assert [str(n) for n in sorted(names)] == ["a.b", "a.z", "b.a"]


def test_a_dotted_table_in_the_warehouse_is_listed_and_not_taken_for_a_temp(tmp_path):
    target = Target("dev", "duckdb", "duckdb", (("path", str(tmp_path / "w.duckdb")),))
    adapter = DuckDBAdapter(target, tmp_path)
    try:
        adapter.execute("CREATE SCHEMA raw")
        adapter.execute('CREATE TABLE raw."events.2026" (x INT)')
        adapter.execute('CREATE TABLE raw."t.x__pipe_tmp_1" (x INT)')
        relations = adapter.relations()
        assert relations["raw.events.2026"] == "table"
        assert adapter.temp_relations(relations) == [("raw.t.x__pipe_tmp_1", "table")]
        assert adapter.temp_relations() == [("raw.t.x__pipe_tmp_1", "table")]
    finally:
        adapter.close()


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_a_part_with_a_dot_is_quoted_as_one_part(dialect):
    """A TableName whose schema or table holds a dot (a quoted name in the warehouse) is
    spelled with that part quoted, so it reads back as the same two parts; its string
    `my.schema.t` would read as three. Other names are spelled as their strings are."""
    from sqlglot import exp

    from pipe.sqlquote import quote_table

    for name in (TableName("my.schema", "t"), TableName("raw", "events.2026")):
        table = exp.to_table(quote_table(name, dialect), dialect=dialect)
        assert (table.catalog, table.db, table.name) == ("", name.schema, name.table)
    for plain in ("staging.orders", "a.order", "select.from", "x.Abc"):
        assert quote_table(TableName.parse(plain), dialect) == quote_table(plain, dialect)


def test_a_dotted_table_is_read_through_its_quoted_name(tmp_path):
    """The warehouse as the oracle: DuckDB reads the table a listing names."""
    from pipe.sqlquote import quote_table

    target = Target("dev", "duckdb", "duckdb", (("path", str(tmp_path / "w.duckdb")),))
    adapter = DuckDBAdapter(target, tmp_path)
    try:
        adapter.execute("CREATE SCHEMA raw")
        adapter.execute('CREATE TABLE raw."events.2026" AS SELECT 7 AS x')
        name = TableName.listed("raw.events.2026")
        assert adapter.scalar(f"SELECT x FROM {quote_table(name, 'duckdb')}") == 7
    finally:
        adapter.close()
