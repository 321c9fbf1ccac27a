"""The only module that imports sqlglot: parse a model, find the tables it reads, transpile.

Dependencies come from sqlglot's scope traversal (STYLE §8): every table of every scope,
minus that scope's CTE names (an unqualified name only: `staging.orders` is never
shadowed by a CTE called `orders`), minus table functions such as `range(3)`. String
literals and comments never become tables because they are not Table nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import SourceLocation, SqlError

# sqlglot is imported on first use (`_sqlglot`): importing it takes a tenth of a second,
# and a compile whose models are all in the parse cache never needs it.
sqlglot = exp = ErrorLevel = ParseError = TokenError = UnsupportedError = None
traverse_scope = None
_SELECTS: tuple = ()
_NOT_ON: dict = {}
_DIALECTS: dict = {}


def _sqlglot() -> None:
    """Import sqlglot into this module's globals, once."""
    global sqlglot, exp, ErrorLevel, ParseError, TokenError, UnsupportedError
    global traverse_scope, _SELECTS, _NOT_ON
    if exp is not None:
        return
    import sqlglot as sqlglot_
    from sqlglot import errors
    from sqlglot import exp as exp_
    from sqlglot.optimizer.scope import traverse_scope as traverse_scope_

    ErrorLevel, ParseError = errors.ErrorLevel, errors.ParseError
    TokenError, UnsupportedError = errors.TokenError, errors.UnsupportedError
    traverse_scope = traverse_scope_
    _SELECTS = (exp_.Select, exp_.SetOperation, exp_.Subquery)
    _NOT_ON = _not_on(exp_)
    sqlglot = sqlglot_
    exp = exp_


def get_dialect(name: str):
    """The sqlglot Dialect named `name`, built once: sqlglot.parse(text, read="duckdb")
    builds a new one on every call."""
    found = _DIALECTS.get(name)
    if found is None:
        _sqlglot()
        from sqlglot.dialects.dialect import Dialect

        found = _DIALECTS[name] = Dialect.get_or_raise(name)
    return found


@dataclass(frozen=True)
class TableRef:
    """One table a query reads, as written: parts are (catalog, db, name), lowercased
    unless quoted; line/col point into the rendered SQL."""

    parts: tuple[str, ...]
    line: int | None
    col: int | None

    @property
    def name(self) -> str:
        return ".".join(p for p in self.parts if p)


def _ident(node) -> str:
    if not isinstance(node, exp.Identifier):
        return node.name if node is not None else ""
    return node.name if node.quoted else node.name.lower()


def _dialect_of(name: str):
    try:
        return get_dialect(name)
    except ValueError:  # an unknown dialect: let sqlglot say so where it did before
        return name


def parse_select(text: str, dialect: str, path: str) -> exp.Expression:
    """Parse one SELECT (WITH/UNION allowed); anything else is an SqlError at path:line."""
    read = _dialect_of(dialect)
    try:
        statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        desc = _plain(first.get("description") or str(exc).splitlines()[0])
        near = first.get("highlight")
        line, col = first.get("line"), first.get("col")
        if near and col is not None and "\n" not in near:
            col = max(1, col - len(near) + 1)  # sqlglot gives the column where `near` ends
        raise SqlError(f"SQL syntax error: {desc}" + (f" near '{near}'" if near else ""),
                       at=SourceLocation(path, line, col)) from None
    except TokenError as exc:
        # the mypyc tokenizer says where in its chained error: "Missing ' from 2:11"
        inner = str(exc.__context__ or "")
        where = re.search(r"(\d+):(\d+)\s*$", inner)
        line, col = (int(where[1]), int(where[2])) if where else (None, None)
        what = re.sub(r"\s*from \d+:\d+\s*$", "", inner).strip()
        desc = f"cannot read the SQL: {what.lower()}" if what else "cannot read the SQL"
        if "'" in what or '"' in what:
            desc += " (an unclosed quote?)"
        raise SqlError(f"SQL syntax error: {desc}", at=SourceLocation(path, line, col)) from None
    if len(statements) != 1:
        raise SqlError(f"a model is one SELECT statement; found {len(statements)} statements",
                       at=SourceLocation(path, 1), hint="split it into several models")
    stmt = statements[0]
    if not isinstance(stmt, _SELECTS):
        raise SqlError(f"a model is one SELECT statement, not {stmt.key.upper()}",
                       at=SourceLocation(path, 1),
                       hint="pipe creates and replaces the table itself")
    return stmt


_MISSING = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")


def _plain(description: str) -> str:
    """sqlglot's message without its class names: "incomplete ADD"."""
    m = _MISSING.search(description)
    return f"incomplete {m[2].upper()}" if m else description


def table_refs(expression: exp.Expression) -> list[tuple[TableRef, exp.Table]]:
    """The tables a query reads, in order of appearance, each with its node."""
    _sqlglot()
    seen: dict[int, tuple[TableRef, exp.Table]] = {}
    for scope in traverse_scope(expression):
        for table in scope.tables:
            if not isinstance(table.this, exp.Identifier) or not table.name:
                continue  # table function: range(3), read_csv(...)
            if not table.args.get("db") and _ident(table.this) in _cte_names(scope):
                continue
            line, col = _start_of(table)
            ref = TableRef((_ident(table.args.get("catalog")), _ident(table.args.get("db")),
                            _ident(table.this)), line, col)
            seen.setdefault(id(table), (ref, table))
    return sorted(seen.values(), key=lambda rt: (rt[0].line or 0, rt[0].col or 0))


def _start_of(table: exp.Table) -> tuple[int | None, int | None]:
    """Line and column where a table name starts (sqlglot's `col` is where a token ends)."""
    first = next(p for p in (table.args.get("catalog"), table.args.get("db"), table.this)
                 if isinstance(p, exp.Identifier))
    meta = first.meta
    line, col = meta.get("line"), meta.get("col")
    if col is not None and meta.get("start") is not None and meta.get("end") is not None:
        col -= meta["end"] - meta["start"]
    return line, col


def _cte_names(scope) -> set[str]:
    return {name.lower() for name in scope.cte_sources}


def qualify(table: exp.Table, schema: str, name: str) -> None:
    """Point a table node at schema.name (in place), keeping its alias."""
    _sqlglot()
    table.set("catalog", None)
    table.set("db", exp.to_identifier(schema))
    table.set("this", exp.to_identifier(name))


def generate(expression: exp.Expression, dialect: str, path: str) -> str:
    """Readable multi-line SQL in `dialect`; constructs it cannot express are SqlErrors."""
    _sqlglot()
    expression = _for_target(expression, dialect)
    try:
        return expression.sql(dialect=_dialect_of(dialect), pretty=True,
                              unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise SqlError(f"cannot write this model in the {dialect} dialect: {exc}",
                       at=SourceLocation(path)) from None


def parse_expression(text: str, dialect: str, path: str, line: int | None) -> exp.Expression:
    """Parse a boolean expression (for `expression` checks)."""
    _sqlglot()
    try:
        return sqlglot.parse_one(text, read=_dialect_of(dialect), into=exp.Condition)
    except (ParseError, TokenError):
        raise SqlError(f"check expression does not parse: '{text}'",
                       at=SourceLocation(path, line)) from None


def transpile(text: str, read: str, write: str, path: str, line: int | None = None) -> str:
    """Transpile one statement written in `read` into `write` (used for check SQL)."""
    _sqlglot()
    try:
        stmt = _for_target(sqlglot.parse_one(text, read=_dialect_of(read)), write)
        return stmt.sql(dialect=_dialect_of(write), pretty=True,
                        unsupported_level=ErrorLevel.RAISE)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        desc = _plain(first.get("description") or str(exc).splitlines()[0])
        near = first.get("highlight")
        raise SqlError(f"SQL does not parse: {desc}" + (f" near '{near}'" if near else ""),
                       at=SourceLocation(path, line)) from None
    except TokenError:
        raise SqlError("SQL does not parse (an unclosed quote?)",
                       at=SourceLocation(path, line)) from None
    except UnsupportedError as exc:
        raise SqlError(f"cannot write this SQL in the {write} dialect: {exc}",
                       at=SourceLocation(path, line)) from None


def _for_target(tree, dialect: str):
    """Rewrites sqlglot does not make for a target. Spark: a series as a table source
    (DuckDB's `range(3) t(i)`) becomes Spark's own `range(0, 3) t(i)`, where sqlglot would
    write an EXPLODE(SEQUENCE(...)) that Spark cannot parse in a FROM clause."""
    _sqlglot()
    if dialect != "spark" or tree.find(exp.GenerateSeries) is None:
        return tree
    tree = tree.copy()
    for series in list(tree.find_all(exp.GenerateSeries)):
        if not isinstance(series.parent, exp.Table):
            continue
        start, end = series.args.get("start"), series.args.get("end")
        if not series.args.get("is_end_exclusive"):
            end = exp.Add(this=end.copy(), expression=exp.Literal.number(1))
        args = [start.copy(), end.copy()]
        if series.args.get("step"):
            args.append(series.args["step"].copy())
        series.replace(exp.Anonymous(this="range", expressions=args))
    return tree


@lru_cache(maxsize=8192)
def quote_table(name: str, dialect: str) -> str:
    """schema.table -> the dialect's spelling of that table name."""
    _sqlglot()
    # to_table parses with sqlglot's default dialect, as to_table(name) does; the fresh
    # tree needs no copy before it is written
    return exp.to_table(name, dialect=get_dialect("")).sql(dialect=_dialect_of(dialect),
                                                            copy=False)


@lru_cache(maxsize=8192)
def column(name: str, dialect: str) -> str:
    _sqlglot()
    return exp.to_identifier(name).sql(dialect=_dialect_of(dialect), copy=False)


def literal(value, dialect: str) -> str:
    _sqlglot()
    if isinstance(value, bool):
        return exp.Boolean(this=value).sql(dialect=dialect)
    if isinstance(value, int | float):
        return exp.Literal.number(value).sql(dialect=dialect)
    return exp.Literal.string(str(value)).sql(dialect=dialect)


def transpile_type(dtype: str, read: str, write: str) -> str:
    """A column type written in `read` (e.g. DuckDB's DOUBLE) spelled for `write`."""
    _sqlglot()
    return exp.DataType.build(dtype, dialect=read).sql(dialect=write)


# ---------------------------------------------------------------- target validation

# Constructs sqlglot writes for a target that the target cannot run (it transpiles them
# without complaint). Found by transpiling DuckDB idioms to Postgres; extend per dialect.
def _not_on(exp) -> dict:
    return {
        "postgres": (
            (exp.Transform, "list lambdas (list_transform / x -> ...)"),
            (exp.Struct, "STRUCT values ({'a': 1} / struct_pack)"),
            (exp.StructExtract, "struct field access"),
            (exp.Unnest, None),  # allowed: listed so the tuple is never empty
        ),
    }


def validate_for(tree: exp.Expression, sql_text: str, dialect: str, path: str,
                 source_tree: exp.Expression | None = None) -> None:
    """Refuse, at compile time, SQL the target dialect cannot run: known constructs of
    the tree, then the target's own parser where one is installed (pglast: the real
    PostgreSQL grammar). Errors name the model, the line and the construct."""
    _sqlglot()
    for kind, what in _NOT_ON.get(dialect, ()):
        if what is None:
            continue
        node = tree.find(kind)
        if node is not None:
            raise SqlError(f"{what} cannot run on {dialect}", at=SourceLocation(
                path, _line_of(node)), hint="write it "
                "in SQL both dialects share")
    for join in tree.find_all(exp.Join):
        if (join.args.get("kind") or "").upper() == "ASOF" or "ASOF" in (
                join.text("method") or "").upper():
            raise SqlError(f"ASOF JOIN cannot run on {dialect}",
                           at=SourceLocation(path, _line_of(join)))
    for star in tree.find_all(exp.Star):
        if star.args.get("except_") or star.args.get("except") or star.args.get("replace"):
            raise SqlError(f"SELECT * EXCLUDE/REPLACE cannot run on {dialect}",
                           at=SourceLocation(path, _line_of(star)),
                           hint="list the columns you want")
    if dialect == "spark":
        _validate_spark(tree, path)
    if dialect == "postgres":
        _validate_postgres(sql_text, path)


def _spark_rules(node) -> str | None:
    """What Spark cannot run although sqlglot writes it for Spark without complaint (found
    by running DuckDB idioms on a Spark Connect server)."""
    if isinstance(node, exp.SetOperation) and node.args.get("by_name"):
        return "UNION BY NAME"
    if isinstance(node, exp.Pivot) and node.args.get("using"):
        return "DuckDB's PIVOT ... ON ... USING statement"
    if isinstance(node, exp.Cast) and node.to.is_type("json"):
        return "a cast to JSON (::json)"
    return None


def _validate_spark(tree: exp.Expression, path: str) -> None:
    for node in tree.walk():
        what = _spark_rules(node)
        if what:
            raise SqlError(f"{what} cannot run on spark", at=SourceLocation(
                path, _line_of(node)), hint="write it in SQL both dialects share; see "
                "docs/adapters.md")


def _line_of(node: exp.Expression) -> int | None:
    for n in node.walk():
        line = n.meta.get("line") if hasattr(n, "meta") else None
        if line:
            return line
    return None


def _validate_postgres(sql_text: str, path: str) -> None:
    try:
        import pglast
    except ImportError:  # optional: without it, Postgres reports such errors at run time
        return
    try:
        pglast.parse_sql(sql_text)
    except pglast.parser.ParseError as exc:
        message, index = (exc.args + (None,))[:2]
        line = sql_text.count("\n", 0, index) + 1 if isinstance(index, int) else None
        near = sql_text[index:index + 30].split("\n")[0] if isinstance(index, int) else ""
        raise SqlError(f"the SQL written for postgres does not parse there: {message}"
                       + (f" (plan SQL line {line}, near '{near}')" if line else ""),
                       at=SourceLocation(path),
                       hint="a construct of the project dialect with no postgres "
                       "equivalent; see docs/adapters.md") from None
