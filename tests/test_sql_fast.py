"""Names and strings pipe spells without sqlglot are spelled exactly as sqlglot spells them."""

from __future__ import annotations

import pytest
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from pipe import sql
from pipe.engines import ENGINES

# the engines in whose dialect sql.py spells names and strings without sqlglot
COPIED = sorted(name for name, e in ENGINES.items() if e.sqlglot_reserved is not None)

NAMES = [
    "staging.stg_orders",
    "_pipe.ledger",
    "a.order",
    "select.from",
    "x.Abc",
    "Order",
    "s.t__pipe_tmp_ab12cd34",
    "db.schema.table",
    "a1.b2",
    "weird-name.x",
    "1abc.d",
    "user",
    "raw.customers",
    "marts.mart_revenue_00012",
    "a.b.c.d",
    "é.x",
    "a.group",
]
STRINGS = ["abc", "it's", "a\\b", "x\ny", '[["a","b",1.5]]', "é", "", "''", "2026-06-01T00:00:00"]


@pytest.mark.parametrize("engine", COPIED)
def test_reserved_words_are_sqlglots(engine):
    rules = ENGINES[engine]
    generator = Dialect.get_or_raise(rules.dialect).generator_class
    assert rules.sqlglot_reserved == frozenset(generator.RESERVED_KEYWORDS)


@pytest.mark.parametrize("dialect", [*(ENGINES[e].dialect for e in COPIED), "spark", "snowflake"])
def test_fast_spelling_matches_sqlglot(dialect):
    d = Dialect.get_or_raise(dialect)
    for name in NAMES:
        try:
            want = exp.to_table(name, dialect=Dialect.get_or_raise("")).sql(dialect=d)
        except Exception:  # noqa: BLE001 - a name sqlglot cannot read is not ours to spell
            continue
        assert sql.quote_table(name, dialect) == want, name
        if "." not in name:
            assert sql.column(name, dialect) == exp.to_identifier(name).sql(dialect=d), name
    for text in STRINGS:
        assert sql.literal(text, dialect) == exp.Literal.string(text).sql(dialect=d), text
