"""The columns of a query, for the readers of a compiled project: the docs site (the
names a model returns) and lineage (which upstream columns each one is computed from).
Never part of a compile; nothing here raises for a query the compile accepted, except
`column_lineage` when sqlglot cannot follow one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .errors import SqlError
from .sql import _dialect_of, _ident, get_dialect


def _sqlglot():
    """sqlglot, its expressions and its errors, imported on first use (as sql.py does)."""
    import sqlglot
    from sqlglot import errors, exp

    return sqlglot, exp, errors


@lru_cache(maxsize=8192)
def output_columns(text: str, dialect: str) -> list[str]:
    """The names of the columns a query returns, in order ('*' where it selects a star);
    [] when the text does not parse. For the docs site: no error, no location.

    Only the outermost SELECT's list decides the names (the first SELECT of a UNION), so
    that list alone is parsed when the tokens show where it is: a fraction of the cost of
    parsing a query with its CTEs. The whole query is parsed when they do not."""
    sqlglot, _, errors = _sqlglot()
    d = get_dialect(dialect)
    head = None
    try:
        head = _outer_select_list(text, d)
        tree = sqlglot.parse_one(head if head is not None else text, dialect=d)
    except (errors.ParseError, errors.TokenError):
        if head is None:
            return []
        return output_columns_parsed(text, dialect)
    return [name for name in getattr(tree, "named_selects", []) if name]


def output_columns_parsed(text: str, dialect: str) -> list[str]:
    """`output_columns` by parsing the whole query (the reference it must agree with)."""
    sqlglot, _, errors = _sqlglot()
    try:
        tree = sqlglot.parse_one(text, dialect=get_dialect(dialect))
    except (errors.ParseError, errors.TokenError):
        return []
    return [name for name in getattr(tree, "named_selects", []) if name]


_LIST_ENDS = {
    "FROM",
    "WHERE",
    "GROUP_BY",
    "HAVING",
    "WINDOW",
    "QUALIFY",
    "ORDER_BY",
    "LIMIT",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "SEMICOLON",
    "INTO",
    "FETCH",
    "OFFSET",
}


def _outer_select_list(text: str, d) -> str | None:
    """'SELECT <list>' of the outermost query, cut from `text` at token boundaries; None
    when there is no SELECT outside parentheses (then the caller parses it all)."""
    from sqlglot.tokens import TokenType

    depth = 0
    start = None
    for tok in d.tokenize(text):
        kind = tok.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0:
            if start is None:
                if kind == TokenType.SELECT:
                    start = tok.start
            elif kind.name in _LIST_ENDS:
                return text[start : tok.start]
    return text[start:] if start is not None else None


# ---------------------------------------------------------------- column lineage


@dataclass(frozen=True)
class ColumnSources:
    """One output column of a query: the (schema, table, column) values it is computed
    from, and whether some of its inputs could not be placed (an unqualified column over
    several tables of unknown schema, or a star that could not be expanded)."""

    column: str
    reads: tuple[tuple[str, str, str], ...]
    unresolved: bool = False


def column_lineage(
    text: str, dialect: str, schema: dict[str, dict[str, dict[str, str]]]
) -> tuple[ColumnSources, ...]:
    """The value lineage of every output column of one SELECT, in output order, through
    sqlglot's qualify (stars expanded where `schema` knows the tables: schema -> table ->
    column -> type) and lineage walk. Only what a projection computes counts: WHERE, join
    keys and GROUP BY are not value lineage. A star over a table of unknown columns comes
    back as the column '*'. Raises SqlError when sqlglot cannot follow the query."""
    sqlglot, exp, errors = _sqlglot()
    from sqlglot.lineage import lineage

    read = _dialect_of(dialect)
    try:
        tree = sqlglot.parse_one(text, read=read)
        # trim_selects=False: the trimmed copies are only for display and cost most of the time
        found = lineage(None, tree, schema, dialect=read, copy=False, trim_selects=False)
    except (errors.SqlglotError, ValueError, KeyError) as exc:  # sqlglot raises all of these
        raise SqlError(f"column lineage: {str(exc).splitlines()[0]}") from None
    out = []
    for name, node in found.items():
        reads: set[tuple[str, str, str]] = set()
        unresolved = False
        for n in node.walk():
            if isinstance(n.expression, exp.Table):
                column_name = n.name.rsplit(".", 1)[-1]
                if column_name == "*":
                    unresolved = True
                    continue
                table = n.expression
                reads.add((_ident(table.args.get("db")), _ident(table.this), column_name))
            elif isinstance(n.expression, exp.Placeholder):
                unresolved = True
        out.append(ColumnSources(name, tuple(sorted(reads)), unresolved))
    return tuple(out)
