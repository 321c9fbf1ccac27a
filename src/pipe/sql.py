"""sqlglot's front door: parse a model, find the tables it reads, transpile.

The rest of pipe imports this module; four small ones beside it do one job each and are
re-exported here: dialects.py (a Dialect by name), sqlerrors.py (sqlglot's parse errors
as messages), sqldigest.py (digests two spellings of a query share) and sqlquote.py
(names and values spelled for a dialect). Besides them only engines.py (an engine's rules
over a parsed tree) and sqlcolumns.py (the columns of a query, for the docs site and
lineage) touch sqlglot, both through trees and dialects made here.

Dependencies come from sqlglot's scope traversal (STYLE §8): every table of every scope,
minus that scope's CTE names (an unqualified name only: `staging.orders` is never
shadowed by a CTE called `orders`), minus table functions such as `range(3)`. String
literals and comments never become tables because they are not Table nodes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from .dialects import dialect_hint as dialect_hint  # re-exported: sql is the front door
from .dialects import dialect_or_name
from .dialects import get_dialect as get_dialect
from .engines import for_dialect
from .errors import SourceLocation, SqlError
from .names import TableName, written
from .sqldigest import canonical_digest as canonical_digest
from .sqldigest import fragment_key as fragment_key
from .sqlerrors import MAX_NESTING, nesting, plain_message, too_deep
from .sqlquote import column as column
from .sqlquote import literal as literal
from .sqlquote import quote_table as quote_table
from .sqlquote import transpile_type as transpile_type

# sqlglot is imported on first use (`_sqlglot`): importing it takes a tenth of a second,
# and a compile whose models are all in the parse cache never needs it.
sqlglot = exp = ErrorLevel = ParseError = TokenError = UnsupportedError = None
traverse_scope = None
_SELECTS: tuple = ()


def _sqlglot() -> None:
    """Import sqlglot into this module's globals, once."""
    global sqlglot, exp, ErrorLevel, ParseError, TokenError, UnsupportedError
    global traverse_scope, _SELECTS
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
    sqlglot = sqlglot_
    exp = exp_


@dataclass(frozen=True)
class TableRef:
    """One table a query reads, as written: parts are (catalog, db, name), lowercased
    unless quoted; line/col point into the rendered SQL."""

    parts: tuple[str, ...]
    line: int | None
    col: int | None

    @property
    def name(self) -> str:
        return written(self.parts)


@lru_cache(maxsize=256)
def readable_after_schema(word: str, dialect: str) -> bool:
    """Whether a query can name table `word` as `schema.word`: after a dot, PostgreSQL and
    DuckDB take any keyword (`a.full`, `a.user`), but sqlglot does not parse some
    (`a.select`, `a.from`), so no model could read that table (see engines.py for the
    words each engine reserves)."""
    _sqlglot()
    try:
        tree = sqlglot.parse_one(
            f"select 1 from s.{word} join s.{word} as t on true", read=_dialect_of(dialect)
        )
    except (ParseError, TokenError):
        return False
    return [t.name for t in tree.find_all(exp.Table)] == [word, word]


def _ident(node) -> str:
    if not isinstance(node, exp.Identifier):
        return node.name if node is not None else ""
    return node.name if node.quoted else node.name.lower()


def _dialect_of(name: str):
    """The Dialect named `name` (or the name, for sqlglot to refuse), sqlglot loaded here."""
    _sqlglot()
    return dialect_or_name(name)


def parse_select(text: str, dialect: str, path: str) -> exp.Expression:
    """Parse one SELECT (WITH/UNION allowed); anything else is an SqlError at path:line."""
    return parse_canonical(text, dialect, path)[0]


def parse_canonical(text: str, dialect: str, path: str) -> tuple[exp.Expression, str]:
    """`parse_select`, and a digest of the query that ignores comments, whitespace and
    the case of keywords and function names (see `canonical_digest`), made from the
    tokens the parse reads: the text is tokenized once."""
    read = _dialect_of(dialect)
    digest = ""
    try:
        if isinstance(read, str):  # an unknown dialect: sqlglot says so
            statements = sqlglot.parse(text, read=read)
        else:
            tokenizer, parser = _reader(read)
            tokens = tokenizer.tokenize(text)
            if text.count("(") > MAX_NESTING and nesting(tokens) > MAX_NESTING:
                raise too_deep(text, path)
            digest = canonical_digest(tokens)
            statements = parser.parse(tokens, text)
        statements = [s for s in statements if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        desc = plain_message(first.get("description") or str(exc).splitlines()[0])
        near = first.get("highlight")
        line, col = first.get("line"), first.get("col")
        if near and col is not None and "\n" not in near:
            col = max(1, col - len(near) + 1)  # sqlglot gives the column where `near` ends
        raise SqlError(
            f"SQL syntax error: {desc}" + (f" near '{near}'" if near else ""),
            at=SourceLocation(path, line, col),
        ) from None
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
    except RecursionError:
        raise too_deep(text, path) from None
    if len(statements) != 1:
        raise SqlError(
            f"a model is one SELECT statement; found {len(statements)} statements",
            at=SourceLocation(path, 1),
            hint="split it into several models",
        )
    stmt = statements[0]
    if not isinstance(stmt, _SELECTS):
        raise SqlError(
            f"a model is one SELECT statement, not {stmt.key.upper()}",
            at=SourceLocation(path, 1),
            hint="pipe creates and replaces the table itself",
        )
    return stmt, digest


# a tokenizer and a parser per dialect and thread (see _reader)
_READERS = threading.local()


def _reader(read) -> tuple:
    """A tokenizer and a parser of dialect `read`, made once per thread and reused: making
    them costs a model about a third of its canonical digest. Each call of `tokenize` and
    `parse` starts from a clean state."""
    found = getattr(_READERS, "found", None)
    if found is None:
        found = _READERS.found = {}
    pair = found.get(read)
    if pair is None:
        pair = found[read] = (read.tokenizer(), read.parser())
    return pair


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
            ref = TableRef(
                (
                    _ident(table.args.get("catalog")),
                    _ident(table.args.get("db")),
                    _ident(table.this),
                ),
                line,
                col,
            )
            seen.setdefault(id(table), (ref, table))
    return sorted(seen.values(), key=lambda rt: (rt[0].line or 0, rt[0].col or 0))


def select_shape(tree: exp.Expression) -> tuple | None:
    """The columns the outermost SELECT returns, for checking the columns a check names:
    (names in order, '*' for a star; the name parts of the one table a star selects from,
    or None without a star). None when the query alone does not tell the names: an
    unnamed expression, a star over a join, a subquery or a CTE, a star that renames."""
    _sqlglot()
    select = tree
    while isinstance(select, exp.SetOperation):  # a UNION's columns are its first SELECT's
        if select.args.get("by_name"):  # DuckDB's UNION BY NAME: every side's columns
            return None
        select = select.this
    if not isinstance(select, exp.Select):
        return None
    names: list[str] = []
    for e in select.expressions:  # by type, not alias_or_name: every model pays for this
        kind = type(e)
        part = e.args.get("alias") if kind is exp.Alias else e.this if kind is exp.Column else e
        if type(part) is exp.Star:
            if part.args.get("rename"):
                return None
            names.append("*")
        elif type(part) is exp.Identifier and part.this:
            names.append(part.this)
        else:  # the engine names it (count_star(), ?column?): not told here
            return None
    if "*" not in names:
        return tuple(names), None
    source = select.args.get("from_")
    table = source.this if source is not None else None
    if select.args.get("joins") or not isinstance(table, exp.Table) or not table.name:
        return None
    if not isinstance(table.this, exp.Identifier):
        return None  # a table function
    with_ = tree.args.get("with_")
    ctes = {c.alias_or_name.lower() for c in with_.expressions} if with_ else set()
    if not table.args.get("db") and _ident(table.this) in ctes:
        return None
    parts = (_ident(table.args.get("catalog")), _ident(table.args.get("db")), _ident(table.this))
    return tuple(names), parts


def condition_columns(text: str, dialect: str) -> tuple[str, ...]:
    """The columns a boolean expression reads from the row it is evaluated on: its
    unqualified columns outside subqueries and lambdas (`x -> x > 0`), in order; none
    when it does not parse (`parse_expression` says why)."""
    _sqlglot()
    try:
        tree = sqlglot.parse_one(text, read=_dialect_of(dialect), into=exp.Condition)
    except (ParseError, TokenError, RecursionError):
        return ()
    out = []
    for col in tree.find_all(exp.Column):
        if col.table or isinstance(col.this, exp.Star):
            continue
        if col.find_ancestor(exp.Select, exp.Lambda) is None and col.name not in out:
            out.append(col.name)
    return tuple(out)


def _start_of(table: exp.Table) -> tuple[int | None, int | None]:
    """Line and column where a table name starts (sqlglot's `col` is where a token ends)."""
    first = next(
        p
        for p in (table.args.get("catalog"), table.args.get("db"), table.this)
        if isinstance(p, exp.Identifier)
    )
    meta = first.meta
    line, col = meta.get("line"), meta.get("col")
    if col is not None and meta.get("start") is not None and meta.get("end") is not None:
        col -= meta["end"] - meta["start"]
    return line, col


def _cte_names(scope) -> set[str]:
    return {name.lower() for name in scope.cte_sources}


def qualify(table: exp.Table, name: TableName) -> None:
    """Point a table node at `name` (in place), keeping its alias."""
    _sqlglot()
    table.set("catalog", None)
    table.set("db", exp.to_identifier(name.schema))
    table.set("this", exp.to_identifier(name.table))


def generate(expression: exp.Expression, dialect: str, path: str) -> str:
    """Readable multi-line SQL in `dialect`; constructs it cannot express are SqlErrors."""
    _sqlglot()
    expression = for_dialect(dialect).rewrite(expression)
    try:
        return expression.sql(
            dialect=_dialect_of(dialect), pretty=True, unsupported_level=ErrorLevel.RAISE
        )
    except UnsupportedError as exc:
        raise SqlError(
            f"cannot write this model in the {dialect} dialect: {exc}", at=SourceLocation(path)
        ) from None
    except RecursionError:
        raise too_deep("", path) from None


def parse_expression(text: str, dialect: str, path: str, line: int | None) -> exp.Expression:
    """Parse a boolean expression (for `expression` checks)."""
    _sqlglot()
    try:
        return sqlglot.parse_one(text, read=_dialect_of(dialect), into=exp.Condition)
    except (ParseError, TokenError):
        raise SqlError(
            f"check expression does not parse: '{text}'", at=SourceLocation(path, line)
        ) from None


def transpile(
    text: str,
    read: str,
    write: str,
    path: str,
    line: int | None = None,
    only_select: str | None = None,
    tables: Mapping[str, str] | None = None,
) -> str:
    """Transpile one statement written in `read` into `write` (used for check SQL).

    `only_select` names what the text is ("a check's sql"): then it must be one SELECT
    that writes nothing (no DROP, no DELETE, no SELECT ... INTO), checked in this parse.
    `tables` maps a table name as written to the `schema.table` to write instead (a bare
    name the compiler resolved)."""
    stmt = _statement(text, read, path, line, only_select)
    try:
        stmt = for_dialect(write).rewrite(stmt)
        for ref, table in table_refs(stmt) if tables else ():
            if ref.name in tables:
                qualify(table, TableName.parse(tables[ref.name]))
        return stmt.sql(dialect=_dialect_of(write), pretty=True, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise SqlError(
            f"cannot write this SQL in the {write} dialect: {exc}", at=SourceLocation(path, line)
        ) from None
    except RecursionError:
        raise too_deep(text, path) from None


def query_tables(
    text: str, dialect: str, path: str, line: int | None, only_select: str | None = None
) -> tuple[str, ...]:
    """The tables one statement reads, as written, in order; it is parsed and checked as
    `transpile` does (the same errors), so a check's tables are known at compile time."""
    stmt = _statement(text, dialect, path, line, only_select)
    try:
        return tuple(dict.fromkeys(ref.name for ref, _ in table_refs(stmt)))
    except RecursionError:
        raise too_deep(text, path) from None


def _statement(
    text: str, read: str, path: str, line: int | None, only_select: str | None
) -> exp.Expression:
    _sqlglot()
    try:
        stmt = sqlglot.parse_one(text, read=_dialect_of(read))
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        desc = plain_message(first.get("description") or str(exc).splitlines()[0])
        near = first.get("highlight")
        raise SqlError(
            f"SQL does not parse: {desc}" + (f" near '{near}'" if near else ""),
            at=SourceLocation(path, line),
        ) from None
    except TokenError:
        raise SqlError(
            "SQL does not parse (an unclosed quote?)", at=SourceLocation(path, line)
        ) from None
    except RecursionError:
        raise too_deep(text, path) from None
    if only_select and (not isinstance(stmt, _SELECTS) or stmt.find(exp.Into)):
        found = (
            "several statements"
            if isinstance(stmt, exp.Block)
            else "SELECT ... INTO"
            if isinstance(stmt, _SELECTS)
            else stmt.key.upper()
        )
        raise SqlError(
            f"{only_select} must be one read-only SELECT, not {found}",
            at=SourceLocation(path, line),
            hint="it is run as a query: write the SELECT that returns what it looks for",
        )
    return stmt
