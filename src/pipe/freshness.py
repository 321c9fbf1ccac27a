"""Freshness: how old the newest data of each model and source is, against `freshness:`.

A model's newest data is the end of its latest complete published interval (a partial
one promises nothing yet, SPEC §7), read from the state store (`.pipe/state.db`, as
`pipe status` reads it): an incremental model that last published [06-14, 06-15) is as
fresh as 06-15 00:00 UTC, however recently it ran, because a label is data time. A
source declares `loaded_at`, a column (pipe asks the warehouse for its maximum) or a
query returning one timestamp. Its age is `now` minus that time, and its status is
`error` past `error_after`, `warn` past `warn_after`, `ok` below both, and `-` for a
model without `freshness:` (listed, never failing). A model with `freshness:` that was
never published is past its thresholds.

Prints nothing; `pipe status --freshness` shows the rows and exits 1 on any `error`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .intervals import iso

STATUSES = ("ok", "warn", "error", "-")


@dataclass(frozen=True)
class FreshnessRow:
    name: str
    kind: str  # a model's kind, or "source"
    latest: datetime | None  # naive UTC: the newest data's time (None: none known)
    age: float | None  # seconds from `latest` to now
    warn_after: float | None
    error_after: float | None
    status: str  # ok | warn | error | -
    reason: str | None = None  # why `latest` is unknown


@dataclass(frozen=True)
class FreshnessReport:
    now: datetime
    rows: tuple[FreshnessRow, ...]

    @property
    def failed(self) -> bool:
        return any(r.status == "error" for r in self.rows)

    def as_json(self) -> dict:
        return {
            "now": iso(self.now),
            "failed": self.failed,
            "freshness": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "latest": iso(r.latest) if r.latest else None,
                    "age_seconds": None if r.age is None else round(r.age, 3),
                    "warn_after": r.warn_after,
                    "error_after": r.error_after,
                    "status": r.status,
                    "reason": r.reason,
                }
                for r in self.rows
            ],
        }


def collect(cp, now: datetime | None = None) -> FreshnessReport:
    """Every model (newest published interval) and every source with `freshness:`."""
    from .state import StateStore

    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    state = StateStore(cp.raw.root, readonly=True)
    try:
        published = state.published_entries(cp.target.name)
    finally:
        state.close()
    latest = newest(published)
    rows = []
    for node in sorted(cp.models(), key=lambda n: n.name):
        if node.kind == "seed":
            continue
        end = latest.get(node.name)
        when = datetime.fromisoformat(end) if end else None
        rows.append(
            verdict(
                node.name,
                node.kind,
                when,
                node.config.freshness,
                now,
                None if when else "never published",
            )
        )
    sources = [
        n
        for n in cp.nodes.values()
        if n.kind == "source" and n.source is not None and n.source.freshness is not None
    ]
    rows.extend(_sources(cp, sorted(sources, key=lambda n: n.name), now))
    return FreshnessReport(now, tuple(rows))


def newest(entries) -> dict[str, str]:
    """Model -> the end of its newest complete published interval (ISO), from the state
    store's published entries: a partial interval promises nothing yet (SPEC §7)."""
    latest: dict[str, str] = {}
    for (model, _start, end), entry in entries.items():
        if end and not entry.partial and end > latest.get(model, ""):
            latest[model] = end
    return latest


def verdict(name, kind, when, freshness, now, reason=None) -> FreshnessRow:
    """The row of one model or source: its age at `now` against its `freshness:` (the one
    verdict `pipe status --freshness` and the docs site give)."""
    warn = freshness.warn_after if freshness else None
    error = freshness.error_after if freshness else None
    age = (now - when).total_seconds() if when is not None else None
    if freshness is None:
        status = "-"
    elif age is None:
        status = "error" if error is not None else "warn"
    elif error is not None and age > error:
        status = "error"
    elif warn is not None and age > warn:
        status = "warn"
    else:
        status = "ok"
    return FreshnessRow(name, kind, when, age, warn, error, status, reason)


_QUERY = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


def loaded_at_sql(cp, node) -> str:
    """The statement that returns a source's newest load time, in the target dialect."""
    from . import sql as sqlmod

    src = node.source
    dialect = cp.target.dialect
    if _QUERY.match(src.loaded_at):
        return sqlmod.transpile(
            src.loaded_at, cp.raw.config.dialect, dialect, "sources.yml", src.line
        )
    return (
        f"SELECT max({sqlmod.column(src.loaded_at, dialect)}) FROM "
        f"{sqlmod.quote_table(node.name, dialect)}"
    )


def _sources(cp, nodes, now) -> list[FreshnessRow]:
    if not nodes:
        return []
    from .adapters import AdapterError, open_adapter
    from .errors import UserError

    try:
        adapter = open_adapter(cp.target, cp.raw.root)
    except (AdapterError, UserError) as exc:  # a status check reports it, as a stale source
        return [
            verdict(
                n.name,
                "source",
                None,
                n.source.freshness,
                now,
                f"cannot reach the warehouse: {exc}",
            )
            for n in nodes
        ]
    try:
        rows = []
        for n in nodes:
            try:
                value = adapter.scalar(loaded_at_sql(cp, n))
                when, reason = _as_utc(value), None
                if when is None:
                    reason = "no rows" if value is None else f"not a timestamp: {value!r}"
            except AdapterError as exc:
                when, reason = None, f"loaded_at query failed: {exc}"
            rows.append(verdict(n.name, "source", when, n.source.freshness, now, reason))
        return rows
    finally:
        adapter.close()


def _as_utc(value) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str):
        try:
            return _as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None
