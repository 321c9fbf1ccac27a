"""Check specs -> SQL that selects the offending rows; zero rows pass (STYLE §7).

Each built-in check is a small template in templates/checks/<type>.sql, rendered with the
table under check as `this` (the task's temporary table at run time), written in the
project dialect and transpiled to the target's. `sql` checks are the user's own query,
rendered with the same `this`. Thresholds (`warn_if`, `error_if`) are judged by `verdict`.
"""

from __future__ import annotations

from functools import cache, lru_cache

from . import sql as sqlmod
from .config import Check
from .intervals import Interval
from .templating import render_snippet

# The table under check as a template is rendered with it; the task's temporary table
# replaces it afterwards, so a model's check is rendered once, not once per task.
_THIS = "__pipe_check_table__"
_TEMPLATED = ("not_null", "unique", "accepted_values", "relationships", "row_count")


@cache
def _env():
    from importlib import resources

    import jinja2

    folder = resources.files("pipe.templates") / "checks"
    sources = {
        p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.name.endswith(".sql")
    }
    return jinja2.Environment(
        loader=jinja2.DictLoader(sources),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def check_sql(
    check: Check,
    this: str,
    dialect: str,
    target_dialect: str,
    where: str,
    interval: Interval | None = None,
) -> str:
    """The offending-rows query of one check against table `this`.

    `where` is the sidecar path, for error messages."""
    if check.type in _TEMPLATED and target_dialect == dialect and _hashable(check):
        text, uses = _templated(check, dialect)
        if text.count(_THIS) == uses:  # else a value spells the placeholder: render it
            return text.replace(_THIS, sqlmod.quote_table(this, dialect))
    return _check_sql(check, this, dialect, target_dialect, where, interval)


def _hashable(check: Check) -> bool:
    try:
        hash(check)
    except TypeError:  # a YAML list inside accepted_values
        return False
    return True


@lru_cache(maxsize=16384)
def _templated(check: Check, dialect: str) -> tuple[str, int]:
    """A built-in check rendered against the placeholder table, and how many times its
    template names the table."""
    source = _env().loader.get_source(_env(), f"{check.type}.sql")[0]
    return _render(check, _THIS, dialect), source.count("{{ this }}")


def _check_sql(
    check: Check,
    this: str,
    dialect: str,
    target_dialect: str,
    where: str,
    interval: Interval | None = None,
) -> str:
    if check.type == "sql":
        text = render_snippet(
            check.args, interval, where, check.line, this=sqlmod.quote_table(this, dialect)
        )
    else:
        if check.type == "expression":
            sqlmod.parse_expression(check.args, dialect, where, check.line)
        text = _render(check, sqlmod.quote_table(this, dialect), dialect)
    if target_dialect != dialect or check.type in ("sql", "expression"):
        # parsing also validates the user's SQL at compile time
        text = sqlmod.transpile(
            text,
            dialect,
            target_dialect,
            where,
            check.line,
            only_select="a check's sql" if check.type == "sql" else None,
        )
    return text


def _render(check: Check, this_sql: str, dialect: str) -> str:
    """A built-in check's template rendered against `this_sql` (already quoted)."""
    col = lambda c: sqlmod.column(c, dialect)
    args = (
        dict(check.args)
        if isinstance(check.args, tuple)
        and check.type in ("accepted_values", "relationships", "row_count")
        else check.args
    )
    values = {"this": this_sql}
    if check.type == "not_null":
        values["column"] = col(args)
    elif check.type == "unique":
        values["columns"] = [col(c) for c in args]
    elif check.type == "accepted_values":
        values["column"] = col(args["column"])
        values["values"] = [sqlmod.literal(v, dialect) for v in args["values"]]
    elif check.type == "relationships":
        table, _, column = args["to"].rpartition(".")
        values.update(
            column=col(args["column"]),
            to_table=sqlmod.quote_table(table, dialect),
            to_column=col(column),
        )
    elif check.type == "row_count":
        values.update(min=args.get("min"), max=args.get("max"))
    elif check.type == "expression":
        values["expression"] = args
    return _env().get_template(f"{check.type}.sql").render(values)
