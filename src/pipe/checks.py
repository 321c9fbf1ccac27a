"""Check specs -> SQL that selects the offending rows; zero rows pass (STYLE §7).

Each built-in check is a small template in templates/checks/<type>.sql, rendered with the
table under check as `this` (the task's temporary table at run time), written in the
project dialect and transpiled to the target's. `sql` checks are the user's own query,
rendered with the same `this`. Thresholds (`warn_if`, `error_if`) are judged by `verdict`.
"""

from __future__ import annotations

import operator
from functools import cache
from importlib import resources

import jinja2

from . import sql as sqlmod
from .config import Check
from .intervals import Interval
from .templating import render_snippet

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
        "==": operator.eq, "!=": operator.ne}


@cache
def _env() -> jinja2.Environment:
    folder = resources.files("pipe.templates") / "checks"
    sources = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()
               if p.name.endswith(".sql")}
    return jinja2.Environment(loader=jinja2.DictLoader(sources),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=False)


def check_sql(check: Check, this: str, dialect: str, target_dialect: str, where: str,
              interval: Interval | None = None) -> str:
    """The offending-rows query of one check against table `this`.

    `where` is the sidecar path, for error messages."""
    col = lambda c: sqlmod.column(c, dialect)
    args = dict(check.args) if isinstance(check.args, tuple) and check.type in (
        "accepted_values", "relationships", "row_count") else check.args
    this_sql = sqlmod.quote_table(this, dialect)
    if check.type == "sql":
        text = render_snippet(check.args, interval, where, check.line, this=this_sql)
    else:
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
            values.update(column=col(args["column"]), to_table=sqlmod.quote_table(table, dialect),
                          to_column=col(column))
        elif check.type == "row_count":
            values.update(min=args.get("min"), max=args.get("max"))
        elif check.type == "expression":
            sqlmod.parse_expression(args, dialect, where, check.line)
            values["expression"] = args
        text = _env().get_template(f"{check.type}.sql").render(values)
    if target_dialect != dialect or check.type in ("sql", "expression"):
        # parsing also validates the user's SQL at compile time
        text = sqlmod.transpile(text, dialect, target_dialect, where, check.line)
    return text


def verdict(check_severity: str, warn_if: str | None, error_if: str | None,
            failures: int) -> str:
    """'pass', 'warn' or 'error' for a failing-row count, as dbt judges it."""

    def hit(rule: str | None) -> bool:
        op, n = (rule or "!= 0").split()
        return _OPS[op](failures, int(n))

    if check_severity == "error" and hit(error_if):
        return "error"
    if hit(warn_if):
        return "warn"
    return "pass"
