"""Table names, column names and values spelled for a dialect, and column types
transpiled: what a run writes around the SQL a plan holds.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .dialects import dialect_or_name, get_dialect
from .engines import for_dialect
from .names import TableName

# Spelling plain names and strings needs no sqlglot: a run quotes every table it touches and
# writes a ledger row per task, and importing sqlglot alone costs more than a run's start.
# For an engine's dialect that copies sqlglot's reserved words (engines.py), a name that is a
# plain identifier and not one of them is written as is, and a string without a backslash is
# quoted with its quotes doubled: exactly what sqlglot writes (tests/test_sql_fast.py).
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*){0,2}")


def _plain_name(name: str, dialect: str) -> bool:
    reserved = for_dialect(dialect).sqlglot_reserved
    return (
        reserved is not None
        and _PLAIN_NAME.fullmatch(name) is not None
        and not any(part.lower() in reserved for part in name.split("."))
    )


def quote_table(name: TableName | str, dialect: str) -> str:
    """A table name as the dialect spells it. A `TableName`'s schema and table are each
    one name, quoted when they must be: a part that holds a dot (a quoted name, such as
    the schema of `"my.schema".t`) stays one part. A string is read as SQL reads it:
    `schema.table` or `catalog.schema.table`, its quoted parts kept."""
    if type(name) is TableName:
        if "." in name.schema or "." in name.table:
            return f"{column(name.schema, dialect)}.{column(name.table, dialect)}"
        name = str(name)  # spelled as the string is, to the byte
    if _plain_name(name, dialect):
        return name
    from sqlglot import exp

    # to_table parses with sqlglot's default dialect, as to_table(name) does; the fresh
    # tree needs no copy before it is written
    return exp.to_table(name, dialect=get_dialect("")).sql(
        dialect=dialect_or_name(dialect), copy=False
    )


@lru_cache(maxsize=8192)
def column(name: str, dialect: str) -> str:
    if "." not in name and _plain_name(name, dialect):
        return name
    from sqlglot import exp

    return exp.to_identifier(name).sql(dialect=dialect_or_name(dialect), copy=False)


def literal(value, dialect: str) -> str:
    if (
        type(value) is str
        and "\\" not in value
        and for_dialect(dialect).sqlglot_reserved is not None
    ):
        return "'" + value.replace("'", "''") + "'"
    from sqlglot import exp

    if isinstance(value, bool):
        return exp.Boolean(this=value).sql(dialect=dialect)
    if isinstance(value, int | float):
        return exp.Literal.number(value).sql(dialect=dialect)
    return exp.Literal.string(str(value)).sql(dialect=dialect)


def transpile_type(dtype: str, read: str, write: str) -> str:
    """A column type written in `read` (e.g. DuckDB's DOUBLE) spelled for `write`."""
    from sqlglot import exp

    return exp.DataType.build(dtype, dialect=read).sql(dialect=write)
