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
    column -> type) and scopes. Only what a projection computes counts: WHERE, join keys
    and GROUP BY are not value lineage. A star over a table of unknown columns comes back
    as the column '*'. Raises SqlError when sqlglot cannot follow the query.

    The answer is `column_lineage_reference`'s (sqlglot's lineage walk), found by walking
    the same qualified scopes without building sqlglot's lineage nodes, each of which
    writes its leaf column back out as SQL (most of the walk's cost). A query with what
    the walk does not mirror (PIVOT, a table function, a placeholder, a scope sqlglot
    would warn about or reject) is left to sqlglot's walk."""
    sqlglot, _, errors = _sqlglot()
    from sqlglot.optimizer import build_scope, qualify

    read = _dialect_of(dialect)
    try:  # the steps and arguments of sqlglot.lineage.lineage, so the same errors
        tree = sqlglot.parse_one(text, read=read)
        tree = qualify.qualify(
            tree,
            dialect=read,
            schema=_mapping_schema(schema, dialect),
            validate_qualify_columns=False,
            identify=False,
            quote_identifiers=False,  # the walk asks the dialect which names it would quote
        )
    except (errors.SqlglotError, ValueError, KeyError) as exc:  # sqlglot raises all of these
        raise SqlError(f"column lineage: {str(exc).splitlines()[0]}") from None
    try:
        found = _walk(build_scope(tree), tree, read)
    except (errors.SqlglotError, ValueError, KeyError):
        found = None  # sqlglot's own walk answers, or says what is wrong
    return found if found is not None else column_lineage_reference(text, dialect, schema)


def column_lineage_reference(
    text: str, dialect: str, schema: dict[str, dict[str, dict[str, str]]]
) -> tuple[ColumnSources, ...]:
    """`column_lineage` through sqlglot's lineage walk (the reference it must agree with)."""
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


def _mapping_schema(schema: dict[str, dict[str, dict[str, str]]], dialect: str):
    """sqlglot's MappingSchema of `schema` as ensure_schema makes it, its names normalized
    for the dialect, but each name once a process (not once a model) and the schema told
    it is normalized: a qualified query's tables are, so no lookup normalizes them again."""
    from sqlglot.schema import MappingSchema

    out: dict[str, dict[str, dict[str, str]]] = {}
    for db, tables in schema.items():
        for table, columns in tables.items():
            found = out.setdefault(_normal(db, dialect, True), {})
            found = found.setdefault(_normal(table, dialect, True), {})
            for column, kind in columns.items():
                found[_normal(column, dialect, False)] = kind
    return MappingSchema(out, dialect=_dialect_of(dialect), normalize=False)


@lru_cache(maxsize=65536)
def _normal(name: str, dialect: str, is_table: bool) -> str:
    """A schema name as MappingSchema normalizes it."""
    from sqlglot.schema import normalize_name

    return normalize_name(name, dialect=_dialect_of(dialect), is_table=is_table).name


class _Unmirrored(Exception):
    """A query the walk leaves to sqlglot's lineage walk."""


def _walk(scope, tree, dialect) -> tuple[ColumnSources, ...] | None:
    """Each output column's sources from the root scope of a query qualified without
    quoting, as sqlglot's lineage walk finds them after qualify's quoting step; None for a
    query the walk does not mirror."""
    _, exp, _ = _sqlglot()
    from sqlglot.dialects.dialect import Dialect

    if (
        not scope
        or not isinstance(scope.expression, exp.Selectable)
        or tree.find(exp.Pivot, exp.UDTF, exp.Placeholder)
    ):
        return None
    names = [sel.alias_or_name for sel in scope.expression.selects]
    if not all(names):
        return None
    walk = _ScopeWalk(Dialect.get_or_raise(dialect))
    try:
        found = {name: walk.column(name, scope) for name in names}
    except _Unmirrored:
        return None
    return tuple(
        ColumnSources(name, tuple(sorted(reads)), unresolved)
        for name, (reads, unresolved) in found.items()
    )


class _ScopeWalk:
    """sqlglot.lineage.to_node's walk over one query's scopes, keeping only what the
    lineage answer reads from its nodes: the tables and columns at the leaves, and
    whether a leaf is a star or a column of no known table."""

    def __init__(self, dialect):
        from sqlglot import exp
        from sqlglot.optimizer import Scope, find_all_in_scope

        self.exp, self.scope_type, self.find_all_in_scope = exp, Scope, find_all_in_scope
        self.dialect = dialect
        self.done: dict[tuple, tuple[frozenset, bool]] = {}
        self.selects: dict[int, tuple[bool, dict]] = {}

    def column(self, column: str | int, scope) -> tuple[frozenset, bool]:
        key = (column, id(scope))
        found = self.done.get(key)
        if found is None:
            if key in self.done:  # None: still being walked, a loop sqlglot would recurse in
                raise _Unmirrored
            self.done[key] = None  # type: ignore[assignment]
            found = self.done[key] = self._column(column, scope)
        return found

    def _select(self, column: str | int, scope):
        exp = self.exp
        selectable = scope.expression
        if isinstance(column, int):
            if column >= len(selectable.selects):
                raise _Unmirrored
            return selectable.selects[column]
        meta = self.selects.get(id(scope))
        if meta is None:
            by_name: dict = {}
            for sel in selectable.selects:
                by_name.setdefault(sel.alias_or_name, sel)
            meta = self.selects[id(scope)] = (selectable.is_star, by_name)
        return meta[1].get(column, exp.Star() if meta[0] else scope.expression)

    def _column(self, column: str | int, scope) -> tuple[frozenset, bool]:
        exp = self.exp
        select = self._select(column, scope)
        if isinstance(select, (exp.Table, exp.Placeholder)):
            raise _Unmirrored  # a node whose own expression is a leaf
        if isinstance(scope.expression, exp.Subquery) and scope.subquery_scopes:
            return self.column(column, scope.subquery_scopes[0])
        reads: set[tuple[str, str, str]] = set()
        unresolved = False
        if isinstance(scope.expression, exp.SetOperation):
            index = column
            if not isinstance(column, int):
                index = next(
                    (
                        i
                        for i, s in enumerate(scope.expression.selects)
                        if s.alias_or_name == column or s.is_star
                    ),
                    -1,
                )
            if index == -1:
                raise _Unmirrored
            for s in scope.set_operation_scopes:
                more, flag = self.column(index, s)
                reads |= more
                unresolved = unresolved or flag
            return frozenset(reads), unresolved
        for more, flag in self._inner(select, scope):
            reads |= more
            unresolved = unresolved or flag
        return frozenset(reads), unresolved

    def _inner(self, select, scope):
        """(reads, unresolved) of what one projection computes from: the subqueries in
        it, the scope's sources when it is a star, and the columns it reads."""
        exp, Scope, find_all_in_scope = self.exp, self.scope_type, self.find_all_in_scope
        subquery_scopes = {id(s.expression): s for s in scope.subquery_scopes}
        for subquery in find_all_in_scope(select, *exp.UNWRAPPED_QUERIES):
            inner = subquery_scopes.get(id(subquery))
            if inner is None:
                raise _Unmirrored  # sqlglot logs a warning for it
            for name in subquery.named_selects:
                yield self.column(name, inner)
        if isinstance(select, exp.Star):
            for src in scope.sources.values():
                yield self._leaf(select, src.expression if isinstance(src, Scope) else src)
        for c in set(find_all_in_scope(select, exp.Column)):
            table = c.table
            source = scope.sources.get(table)
            if source is None and not table:  # sqlglot's single-source inference
                named = {k: v for k, v in scope.sources.items() if k}
                if len(named) == 1:
                    table, source = next(iter(named.items()))
                    c.set("table", exp.to_identifier(table))
            if isinstance(source, Scope):
                yield self.column(c.name, source)
            else:
                yield self._leaf(c, source)

    def _leaf(self, named, source) -> tuple[frozenset, bool]:
        """What a lineage leaf named by `named` (a column, or a star) over `source` adds."""
        exp = self.exp
        if source is None or isinstance(source, exp.Placeholder):
            return frozenset(), True
        if not isinstance(source, exp.Table):
            return frozenset(), False
        column_name = self._leaf_name(named)
        if column_name == "*":
            return frozenset(), True
        found = (self._ident(source.args.get("db")), self._ident(source.this), column_name)
        return frozenset((found,)), False

    def _quoted(self, identifier) -> bool:
        """Whether qualify's quoting step (identify=False) would quote `identifier`."""
        return self.dialect.can_quote(identifier, "unsafe")

    def _ident(self, node) -> str:
        """sql._ident of a table's part as qualify's quoting step would leave it."""
        if not isinstance(node, self.exp.Identifier):
            return node.name if node is not None else ""
        return node.name if self._quoted(node) else node.name.lower()

    def _leaf_name(self, named) -> str:
        """The column part of a leaf's name, which sqlglot's walk writes as SQL (the
        default dialect, no comments): the part after its last dot. Only a column and a
        plain star are named here."""
        exp = self.exp
        if any(v for k, v in named.args.items() if k not in _COLUMN_PARTS):
            raise _Unmirrored
        this = named.this if isinstance(named, exp.Column) else named
        if isinstance(this, exp.Star):
            return "*"
        if not isinstance(this, exp.Identifier):
            raise _Unmirrored
        return _identifier_text(this.name, self._quoted(this)).rsplit(".", 1)[-1]


_COLUMN_PARTS = frozenset({"this", "table", "db", "catalog"})


@lru_cache(maxsize=8192)
def _identifier_text(name: str, quoted: bool) -> str:
    """An identifier written as SQL in sqlglot's default dialect (only its name and
    whether it is quoted count there)."""
    _, exp, _ = _sqlglot()
    return exp.Identifier(this=name, quoted=quoted).sql(comments=False)
