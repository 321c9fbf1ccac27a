"""The one place an interval is spelled in SQL.

A model sees an interval as three literals, `{{ interval_start }}`, `{{ interval_end }}`
(TIMESTAMP '2026-06-01 00:00:00') and `{{ ds }}` (DATE '2026-06-01'), all naive UTC. To
parse one rendering for every interval, the compiler replaces the quoted values by
placeholders (`normalise`), writes the SQL for the target with the placeholders in, and
puts an interval's values back (`fill`) when a plan needs it:

    normalise("where t >= TIMESTAMP '2026-06-01 00:00:00'", day)
        -> "where t >= TIMESTAMP '__pipe_interval_start__'"
    fill(that, day) -> the original text
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from .intervals import Interval

# Values substituted for the interval while normalising a rendering (see `normalise`).
PLACEHOLDERS = ("'__pipe_interval_start__'", "'__pipe_interval_end__'", "'__pipe_ds__'")


def timestamp_literal(t: datetime) -> str:
    return f"TIMESTAMP '{t.strftime('%Y-%m-%d %H:%M:%S')}'"


def date_literal(t: datetime) -> str:
    return f"DATE '{t.strftime('%Y-%m-%d')}'"


@lru_cache(maxsize=256)
def interval_values(interval: Interval) -> tuple[str, str, str]:
    """(interval_start, interval_end, ds) as a model's Jinja sees them."""
    return (
        timestamp_literal(interval.start),
        timestamp_literal(interval.end),
        date_literal(interval.start),
    )


@lru_cache(maxsize=256)
def quoted_values(interval: Interval) -> tuple[str, str, str]:
    """The quoted strings inside the interval literals, longest (timestamps) first."""
    return tuple(v[v.index("'") :] for v in interval_values(interval))  # type: ignore[return-value]


def normalise(rendered: str, interval: Interval) -> str:
    """Replace this interval's literal values by placeholders.

    Two renderings of one model for two intervals normalise to the same text exactly
    when they differ only in the interval values, so parsing one serves both (`fill`
    swaps the values back into the generated SQL).
    """
    for quoted, placeholder in zip(quoted_values(interval), PLACEHOLDERS, strict=True):
        rendered = rendered.replace(quoted, placeholder)
    return rendered


def fill(sql: str, interval: Interval) -> str:
    """Put an interval's values where `normalise` left placeholders."""
    if "__pipe_" not in sql:
        return sql
    for placeholder, quoted in zip(PLACEHOLDERS, quoted_values(interval), strict=True):
        sql = sql.replace(placeholder, quoted)
    return sql


def mentions(text: str, interval: Interval) -> bool:
    """Whether `text` holds one of the interval's quoted values (normalise would change it)."""
    return any(q in text for q in quoted_values(interval))
