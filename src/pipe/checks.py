"""The check registry: every check type in one entry, and a check as SQL that selects the
offending rows; zero rows pass (STYLE §7).

An entry (`CheckType`) is all pipe knows of a type: how its sidecar argument is read (each
mistake a ConfigError at the sidecar's line), the values its template
(templates/checks/<type>.sql) is rendered with, the columns it names, and the other tables
it reads. Adding a type is one template and one entry in `REGISTRY`; nothing else in pipe
names a check type. Three steps read the registry:

- config.py: `parse_checks` turns a sidecar's `checks:` into `Check` values;
- compiler.py: `compile_checks` resolves the tables a check reads like a model's (an
  unknown one is an UnknownTable with a suggestion) and returns them as the model's
  dependency edges; checkcolumns.py's `unknown_columns` reports a column a check names
  that the model's output does not have, where the output is known;
- the planner: `check_sql` writes one check against the task's temporary table, in the
  target's dialect.

Importing this module loads neither Jinja, nor sqlglot, nor the templating module:
config.py imports it, and a run reads plans only.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache

from . import sql as sqlmod
from .errors import SourceLocation, UnknownTable, UserError
from .fields import Fields
from .intervals import Interval
from .names import TableName
from .yamlio import YMap

SEVERITIES = ("error", "warn")
# The table under check as a template is rendered with it; the task's temporary table
# replaces it afterwards, so a model's check is rendered once, not once per task.
_THIS = "__pipe_check_table__"


@dataclass(frozen=True)
class Check:
    type: str
    name: str  # unique within a model, e.g. "unique(order_id)"
    args: object  # canonical: str, tuple or tuple of pairs
    severity: str = "error"
    warn_if: str | None = None  # e.g. "> 0"
    error_if: str | None = None
    line: int | None = None
    # tables its query reads (an `sql` check, an `expression` with a subquery) as written
    # -> the name they resolved to, where the two differ (a bare name): set by the compiler
    tables: tuple[tuple[str, str], ...] = ()


# ---------------------------------------------------------------- the entries

Args = object
Parsed = Iterator[tuple[str, Args]]  # (the check's name, its canonical args) per check


def _keep_as_written(check: Check, resolved: Mapping[str, str]) -> Check:
    """The check's SQL keeps its text; the planner writes the resolved names into it."""
    moved = tuple(sorted((w, f) for w, f in resolved.items() if w != f))
    return replace(check, tables=moved) if moved != check.tables else check


@dataclass(frozen=True)
class CheckType:
    """One check type. `parse(fields, value, line)` yields (name, canonical args) for each
    check one sidecar entry makes (a list of columns fans out), recording mistakes in
    `fields`. `values(args, dialect)` are the template's values besides `this`; None: the
    check is the user's own query (`sql`). `validate(args, dialect, path, line)` raises
    an SqlError for arguments the template cannot take. `columns(args, dialect)` are
    (table, column) pairs the check names, table None for the checked model. `tables(args)`
    are tables its arguments name, as written; `reads_query`: its query may read others
    (found by parsing it). `resolve(check, {as written: resolved})` is the check with
    those names resolved."""

    name: str
    parse: Callable[[Fields, object, int | None], Parsed]
    values: Callable[[Args, str], dict] | None
    validate: Callable[[Args, str, str, int | None], object] | None = None
    columns: Callable[[Args, str], tuple[tuple[str | None, str], ...]] = lambda args, d: ()
    tables: Callable[[Args], tuple[str, ...]] = lambda args: ()
    reads_query: bool = False
    resolve: Callable[[Check, Mapping[str, str]], Check] = _keep_as_written


def _parse_not_null(f: Fields, value, line) -> Parsed:
    cols = [value] if isinstance(value, str) else value
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols) or not cols:
        f.err("'not_null' takes a list of columns", line)
        return
    for c in cols:
        yield f"not_null({c})", c


def _parse_unique(f: Fields, value, line) -> Parsed:
    keys = [value] if isinstance(value, str) else value
    if not isinstance(keys, list) or not keys:
        f.err("'unique' takes a list of columns or of column lists", line)
        return
    for k in keys:
        cols = [k] if isinstance(k, str) else k
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            f.err("'unique' takes a list of columns or of column lists", line)
            continue
        yield f"unique({', '.join(cols)})", tuple(cols)


def _parse_accepted_values(f: Fields, value, line) -> Parsed:
    if not isinstance(value, dict):
        f.err("'accepted_values' takes {column: c, values: [...]}", line)
        return
    f.keys(value, {"column", "values"}, ("column", "values"), "accepted_values")
    col, values = value.get("column"), value.get("values")
    if isinstance(col, str) and isinstance(values, list) and values:
        yield f"accepted_values({col})", (("column", col), ("values", tuple(values)))
    elif "column" in value and "values" in value:
        f.err("'accepted_values' needs a column name and a non-empty list of values", line)


def _parse_relationships(f: Fields, value, line) -> Parsed:
    if not isinstance(value, dict):
        f.err("'relationships' takes {column: c, to: schema.table.column}", line)
        return
    f.keys(value, {"column", "to"}, ("column", "to"), "relationships")
    col, to = value.get("column"), value.get("to")
    if isinstance(col, str) and isinstance(to, str) and to.count(".") >= 1:
        yield f"relationships({col})", (("column", col), ("to", to))
    elif "column" in value and "to" in value:
        f.err("'relationships.to' must be table.column, e.g. staging.customers.id", line)


def _relationships_to(args: Args) -> tuple[str, str]:
    """(table as written, column) of `to: [schema.]table.column`: the column is what
    follows the last dot (the one place `to` is split). Once the compiler resolved it
    (`_resolve_relationships`), the table is a node name, `TableName.parse`'s to read."""
    table, _, column = dict(args)["to"].rpartition(".")
    return table, column


def _resolve_relationships(check: Check, resolved: Mapping[str, str]) -> Check:
    """The `to` table resolved in the args: the SQL must read it, not a bare name."""
    table, column = _relationships_to(check.args)
    to = TableName.parse(resolved[table])
    args = (("column", dict(check.args)["column"]), ("to", f"{to}.{column}"))
    return check if args == check.args else replace(check, args=args)


def _parse_row_count(f: Fields, value, line) -> Parsed:
    if not isinstance(value, dict):
        f.err("'row_count' takes {min: n, max: n}", line)
        return
    before = len(f.errors)
    f.keys(value, {"min", "max"}, (), "row_count")
    bounds = tuple((k, value[k]) for k in ("min", "max") if isinstance(value.get(k), int))
    if not bounds and len(f.errors) == before:  # else a misspelt key says it already
        f.err("'row_count' needs 'min' or 'max' as a whole number", line)
        return
    lo, hi = dict(bounds).get("min"), dict(bounds).get("max")
    if (lo is not None and lo < 0) or (hi is not None and lo is not None and lo > hi):
        f.err(
            f"'row_count' can never pass: min {lo}, max {hi}",
            line,
            "min must be >= 0 and at most max",
        )
        return
    yield "row_count", bounds


def _sql_text(kind: str) -> Callable[[Fields, object, int | None], Parsed]:
    def parse(f: Fields, value, line) -> Parsed:
        if not isinstance(value, str) or not value.strip():
            f.err(f"'{kind}' takes SQL text", line)
            return
        yield (f"expression({value.strip()})" if kind == "expression" else "sql"), value.strip()

    return parse


REGISTRY: dict[str, CheckType] = {
    t.name: t
    for t in (
        CheckType(
            "not_null",
            _parse_not_null,
            lambda args, d: {"column": sqlmod.column(args, d)},
            columns=lambda args, d: ((None, args),),
        ),
        CheckType(
            "unique",
            _parse_unique,
            lambda args, d: {"columns": [sqlmod.column(c, d) for c in args]},
            columns=lambda args, d: tuple((None, c) for c in args),
        ),
        CheckType(
            "accepted_values",
            _parse_accepted_values,
            lambda args, d: {
                "column": sqlmod.column(dict(args)["column"], d),
                "values": [sqlmod.literal(v, d) for v in dict(args)["values"]],
            },
            columns=lambda args, d: ((None, dict(args)["column"]),),
        ),
        CheckType(
            "relationships",
            _parse_relationships,
            lambda args, d: {
                "column": sqlmod.column(dict(args)["column"], d),
                "to_table": sqlmod.quote_table(TableName.parse(_relationships_to(args)[0]), d),
                "to_column": sqlmod.column(_relationships_to(args)[1], d),
            },
            columns=lambda args, d: ((None, dict(args)["column"]), _relationships_to(args)),
            tables=lambda args: (_relationships_to(args)[0],),
            resolve=_resolve_relationships,
        ),
        CheckType(
            "row_count",
            _parse_row_count,
            lambda args, d: {"min": dict(args).get("min"), "max": dict(args).get("max")},
        ),
        CheckType(
            "expression",
            _sql_text("expression"),
            lambda args, d: {"expression": args},
            validate=sqlmod.parse_expression,
            columns=lambda args, d: tuple((None, c) for c in sqlmod.condition_columns(args, d)),
            reads_query=True,
        ),
        CheckType("sql", _sql_text("sql"), None, reads_query=True),
    )
}
CHECK_TYPES = tuple(REGISTRY)


# ---------------------------------------------------------------- parsing (config.py)

_CHECK_OPTS = {"severity", "warn_if", "error_if", "name"}
_THRESHOLD = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)\s*(\d+)\s*$")


def parse_checks(f: Fields, raw, line: int | None) -> tuple[Check, ...]:
    """A sidecar's `checks:` list (`raw`, written at `line`) as Check values; every
    mistake is recorded in `f` at its line."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        f.err("'checks' must be a list", line)
        return ()
    out: list[Check] = []
    for item in raw:
        at = item.line if isinstance(item, YMap) else line
        if not isinstance(item, dict):
            f.err("each check must be a mapping like '- not_null: [id]'", at)
            continue
        types = [k for k in item if k not in _CHECK_OPTS]
        if len(types) != 1:
            f.err("each check needs exactly one check type", at, "types: " + ", ".join(CHECK_TYPES))
            continue
        ctype = types[0]
        if ctype not in REGISTRY:
            close = difflib.get_close_matches(str(ctype), CHECK_TYPES, n=1)
            f.err(
                f"unknown check type '{ctype}'",
                item.line_of(ctype),
                f"did you mean '{close[0]}'?" if close else "types: " + ", ".join(CHECK_TYPES),
            )
            continue
        severity = f.choice(item, "severity", SEVERITIES, "error")
        warn_if, error_if = _threshold(f, item, "warn_if"), _threshold(f, item, "error_if")
        explicit = f.typed(item, "name", str)
        for name, args in REGISTRY[ctype].parse(f, item[ctype], item.line_of(ctype)):
            out.append(Check(ctype, explicit or name, args, severity, warn_if, error_if, at))
    seen: set[str] = set()
    for c in out:
        if c.name in seen:
            f.err(f"two checks are named '{c.name}'", c.line, "give one a 'name'")
        seen.add(c.name)
    return tuple(out)


def _threshold(f: Fields, item: YMap, key: str) -> str | None:
    """`warn_if: "> 10"` in its canonical spelling ('=' is '==')."""
    value = item.get(key)
    found = _THRESHOLD.match(str(value)) if value is not None else None
    if value is not None and not found:
        f.err(f"'{key}' must be a comparison like '> 10', got '{value}'", item.line_of(key))
    if not found:
        return None
    op, n = found.groups()
    return f"{'==' if op == '=' else op} {n}"


# ---------------------------------------------------------------- compiling (compiler.py)


@dataclass(frozen=True)
class CheckScope:
    """What `compile_checks` needs of the compiler for one model: where its checks are
    written, the project dialect, the interval an `sql` check is rendered for when its
    tables are looked for (the model's reference interval), and how a table name
    resolves (a node name, or UnknownTable with a suggestion)."""

    model: str
    path: str
    dialect: str
    interval: Interval
    resolve: Callable[[str, SourceLocation], str]


def compile_checks(
    checks: tuple[Check, ...], scope: CheckScope, errors: list[UserError]
) -> tuple[tuple[Check, ...], tuple[str, ...]]:
    """The model's checks with the tables they read resolved, and those tables: the
    model's dependency edges besides its SQL's (its own table is no edge). An unknown
    table is appended to `errors` at the check's line."""
    out: list[Check] = []
    reads: set[str] = set()
    for check in checks:
        entry = REGISTRY[check.type]
        at = SourceLocation(scope.path, check.line)
        try:
            written = entry.tables(check.args) + _query_tables(check, entry, scope)
        except UserError as exc:
            errors.append(exc)
            continue
        resolved = {}
        for name in dict.fromkeys(written):
            try:
                resolved[name] = scope.resolve(name, at)
            except UnknownTable as exc:
                exc.message = f"check {check.name}: {exc.message}"
                errors.append(exc)
        if len(resolved) < len(set(written)):
            continue
        reads.update(full for full in resolved.values() if full != scope.model)
        out.append(entry.resolve(check, resolved) if resolved else check)
    return tuple(out), tuple(sorted(reads))


def _query_tables(check: Check, entry: CheckType, scope: CheckScope) -> tuple[str, ...]:
    """The tables the check's query reads besides the one under check, as written."""
    if not entry.reads_query or (entry.values and "select" not in str(check.args).lower()):
        return ()  # a template reads `this` only; its arguments may add a subquery
    text = _query(check, entry, _THIS, scope.dialect, scope.path, scope.interval)
    only_select = "a check's sql" if entry.values is None else None
    found = sqlmod.query_tables(text, scope.dialect, scope.path, check.line, only_select)
    return tuple(name for name in found if name != _THIS)


# ---------------------------------------------------------------- writing (the planner)


@cache
def _env():
    from importlib import resources

    import jinja2

    folder = resources.files("pipe.templates") / "checks"
    sources = {
        p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.name.endswith(".sql")
    }
    return jinja2.Environment(loader=jinja2.DictLoader(sources), undefined=jinja2.StrictUndefined)


def check_sql(
    check: Check,
    this: str,
    dialect: str,
    target_dialect: str,
    where: str,
    interval: Interval | None = None,
) -> str:
    """The offending-rows query of one check against table `this`, in `target_dialect`.

    `where` is the sidecar path, for error messages. A template that reads `this` only is
    rendered once per check (`_templated`); a query that may read other tables, or that
    is written for another dialect, goes through sqlglot, which also validates it."""
    entry = REGISTRY[check.type]
    this_sql = sqlmod.quote_table(this, dialect)
    if entry.values and not entry.reads_query and target_dialect == dialect:
        try:
            text, uses = _templated(check, dialect)
        except TypeError:  # unhashable: a YAML list inside accepted_values
            text, uses = "", -1
        if text.count(_THIS) == uses:  # else a value spells the placeholder: render it
            return text.replace(_THIS, this_sql)
    text = _query(check, entry, this_sql, dialect, where, interval)
    if target_dialect == dialect and not entry.reads_query:
        return text
    return sqlmod.transpile(
        text,
        dialect,
        target_dialect,
        where,
        check.line,
        only_select="a check's sql" if entry.values is None else None,
        tables=dict(check.tables),
    )


def can_fail(check: Check, dialect: str, target_dialect: str) -> bool:
    """Whether `check_sql` may raise a user error for this check, which plain `pipe
    compile` then builds to find out: a user's query, one that may read other tables, or
    one written for another dialect go through sqlglot. A built-in template filled for
    its own dialect (the fast path of `check_sql`) cannot fail."""
    entry = REGISTRY[check.type]
    return not (entry.values and not entry.reads_query and target_dialect == dialect)


@lru_cache(maxsize=16384)
def _templated(check: Check, dialect: str) -> tuple[str, int]:
    """A built-in check rendered against the placeholder table, and how many times its
    template names the table."""
    source = _env().loader.get_source(_env(), f"{check.type}.sql")[0]
    return _render(check, _THIS, dialect), source.count("{{ this }}")


def _query(
    check: Check, entry: CheckType, this_sql: str, dialect: str, where: str, interval
) -> str:
    """The check's query in the project dialect, against `this_sql` (already quoted)."""
    if entry.values is None:  # the user's own query
        from .templating import render_snippet

        return render_snippet(check.args, interval, where, check.line, this=this_sql)
    if entry.validate:
        entry.validate(check.args, dialect, where, check.line)
    return _render(check, this_sql, dialect)


def _render(check: Check, this_sql: str, dialect: str) -> str:
    """A built-in check's template rendered against `this_sql` (already quoted)."""
    values = REGISTRY[check.type].values(check.args, dialect)
    return _env().get_template(f"{check.type}.sql").render({"this": this_sql, **values})
