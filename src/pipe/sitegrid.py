"""The ledger as the docs site shows it: the backfill grid (model x schedule interval),
freshness per model, and the latest result of every check.

Read-only, like siteruns.py (the store is only SELECTed from); the grid's cells are one
character each so that 1,000 models x 366 intervals stay small in data.js.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from . import freshness, ledger
from .compiler import CompiledProject
from .intervals import Interval, expand, floor, iso, next_start
from .runrecord import stamp
from .state import StateStore

GRID_COLUMNS = 366  # newest schedule intervals in the backfill grid

# The backfill grid's cell states, one character each in a model's row string: the index
# in this tuple. A new state is one name here, one rule where a cell is decided
# (`_published`, `_incremental_row`, `_span_row`) and one colour in style.css (.st-<name>).
STATES = ("published", "failed", "missing", "stale", "partial")
PUBLISHED, STALE, PARTIAL = "0", "3", "4"
FAILED = ("failed", "upstream_failed")


@dataclass(frozen=True)
class GridRow:
    model: str
    kind: str
    states: str  # one STATES index per grid column
    runs: tuple[tuple[int, int], ...] | None = None  # (failed column, the run that failed it)

    def as_json(self) -> dict:
        out = {"model": self.model, "kind": self.kind, "states": self.states}
        if self.runs is not None:
            out["runs"] = dict(self.runs)
        return out


@dataclass(frozen=True)
class Grid:
    intervals: tuple[str, ...]  # the column labels
    rows: tuple[GridRow, ...]

    def as_json(self) -> dict:
        return {
            "states": list(STATES),
            "intervals": list(self.intervals),
            "rows": [r.as_json() for r in self.rows],
        }


@dataclass(frozen=True)
class FreshnessCheck:
    """The verdict of `pipe status --freshness` for a model."""

    status: str
    warn_after: float | None
    error_after: float | None
    age: float | None


@dataclass(frozen=True)
class ModelFreshness:
    model: str
    kind: str
    grain: str | None
    newest_end: str | None
    due_end: str
    behind: int | None  # grain intervals behind the last complete one
    published_at: str | None
    status: str  # never built | loaded | partial only | fresh | late
    late_rows: tuple[int, int] | None  # (intervals, rows) republished with other counts
    check: FreshnessCheck | None

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LatestCheck:
    run: int
    task: str
    status: str
    failures: int
    interval_start: str

    def as_json(self) -> dict:
        return asdict(self)


def ledger_views(cp: CompiledProject, store: StateStore, now: datetime):
    """(the backfill grid, freshness per model, model -> check -> its latest result)."""
    target = cp.target.name
    entries = store.published_entries(target)
    published = _published(entries)
    failed = _failed(store, target)
    grid = _grid(cp, published, failed, now)
    incremental = {n.name for n in cp.models() if n.kind == "incremental"}
    late = ledger.late_rows(entries, incremental)
    fresh = _freshness(cp, published, freshness.newest(entries), late, now)
    return grid, tuple(fresh), _latest_checks(store, target)


def _published(entries: dict) -> dict[str, dict[tuple, tuple]]:
    """model -> {(start, end): (grid code, rows, published_at)}: the ledger's mirror, each
    key published, stale (built from an upstream publish that is no longer current) or
    partial (built before its interval was complete), as `pipe status` reads them."""
    stale = ledger.stale(entries)
    out: dict[str, dict[tuple, tuple]] = {}
    for (m, s, e), entry in entries.items():
        code = PARTIAL if entry.partial else STALE if (m, s, e) in stale else PUBLISHED
        out.setdefault(m, {})[(s, e)] = (code, entry.rows, entry.published_at)
    return out


def _failed(store: StateStore, target: str) -> dict[str, dict[tuple, int]]:
    """model -> {(start, end): run id} of the latest outcome when that outcome failed."""
    out: dict[str, dict[tuple, int]] = {}
    for (m, s, e), outcome in store.latest_outcomes(target).items():
        if outcome.status in FAILED:
            out.setdefault(m, {})[(s, e)] = outcome.run_id
    return out


def _columns(cp: CompiledProject, now: datetime) -> list[Interval]:
    cfg = cp.raw.config
    end = floor(now, cfg.schedule)
    start = cfg.start or end
    cols = list(expand(Interval(start, end), cfg.schedule)) if end > start else []
    return cols[-GRID_COLUMNS:]


def _covering(cell: Interval, grain: str) -> list[tuple[str, str]]:
    """The model's own intervals that make up `cell` (finer grain) or contain it."""
    inner = [(iso(i.start), iso(i.end)) for i in expand(cell, grain)]
    if inner:
        return inner
    start = floor(cell.start, grain)
    return [(iso(start), iso(next_start(start, grain)))]


def _incremental_row(keys, published: dict, failed: dict) -> str:
    """Cell states of an incremental model: published when all its intervals in the cell
    are, failed when one of them failed last, else missing."""
    out = []
    for k in keys:
        if all(map(published.__contains__, k)):
            codes = {published[x][0] for x in k}
            out.append(PARTIAL if PARTIAL in codes else STALE if STALE in codes else PUBLISHED)
        elif any(map(failed.__contains__, k)):
            out.append("1")
        else:
            out.append("2")
    return "".join(out)


def _span_row(spelled: list[tuple[str, str]], published: dict, failed: dict) -> str:
    """Cell states of a full or view model (one build covers the run it was made for) or a
    seed (loaded once: every cell)."""
    out = ["2"] * len(spelled)
    starts = [s for s, _ in spelled]
    spans = [((fs, fe), "1") for fs, fe in failed]
    newest_last = sorted(published.items(), key=lambda kv: kv[1][2])
    spans += [(k, v[0]) for k, v in newest_last]
    for (ps, pe), code in spans:  # a publish wins over a failure, a newer one over an older
        if ps == "":
            out = [code] * len(spelled)
            continue
        i = bisect_left(starts, ps)
        while i < len(spelled) and spelled[i][1] <= pe:
            out[i] = code
            i += 1
    return "".join(out)


def _failed_run(cell: tuple[str, str], failed: dict[tuple, int]) -> int:
    """The newest run whose failed task lies in, or covers, `cell`."""
    s, e = cell
    return max(
        run for (fs, fe), run in failed.items() if (s <= fs and fe <= e) or (fs <= s and e <= fe)
    )


def _grid(cp: CompiledProject, published: dict, failed: dict, now: datetime) -> Grid:
    cells = _columns(cp, now)
    spelled = [(iso(c.start), iso(c.end)) for c in cells]
    keys_of: dict[str, list] = {}
    rows = []
    for node in cp.models():
        grain = node.grain or cp.raw.config.schedule
        pub, fail = published.get(node.name, {}), failed.get(node.name, {})
        if not pub and not fail:
            states = "2" * len(cells)  # never built: the common case of a new model
        elif node.kind == "incremental":
            keys = keys_of.get(grain)
            if keys is None:
                keys = keys_of[grain] = [_covering(c, grain) for c in cells]
            states = _incremental_row(keys, pub, fail)
        else:
            states = _span_row(spelled, pub, fail)
        runs = None
        if fail:  # a failed cell links to the run that failed it
            runs = tuple(
                (i, _failed_run(spelled[i], fail)) for i, c in enumerate(states) if c == "1"
            )
        rows.append(GridRow(node.name, node.kind, states, runs))
    return Grid(tuple(c.label for c in cells), tuple(rows))


def _freshness(
    cp: CompiledProject, published: dict, newest_of: dict, late: dict, now: datetime
) -> list[ModelFreshness]:
    """Per model: the newest data interval published, when, how far behind the last
    complete interval of its grain it is, and the rows that arrived late (intervals
    republished with another row count, as `pipe status` reports them)."""
    out = []
    for node in cp.models():
        pub = published.get(node.name, {})
        grain = node.grain or cp.raw.config.schedule
        due = floor(now, grain)
        newest = newest_of.get(node.name)  # complete intervals only, as the CLI counts
        at = max((v[2] for v in pub.values()), default=None)
        check = None
        if node.kind != "seed":  # the verdict of `pipe status --freshness`
            row = freshness.verdict(
                node.name,
                node.kind,
                datetime.fromisoformat(newest) if newest else None,
                node.config.freshness,
                now,
            )
            check = FreshnessCheck(row.status, row.warn_after, row.error_after, row.age)
        if not pub:
            status, behind = "never built", None
        elif node.kind == "seed":
            status, behind = "loaded", None
        elif newest is None:
            status, behind = "partial only", None
        else:
            lag = due - datetime.fromisoformat(newest)
            behind = max(0, _intervals_in(lag, grain))
            status = "fresh" if behind == 0 else "late"
        out.append(
            ModelFreshness(
                node.name,
                node.kind,
                node.grain,
                newest,
                iso(due),
                behind,
                stamp(at) if at else None,
                status,
                late.get(node.name),
                check,
            )
        )
    return out


def _intervals_in(lag: timedelta, grain: str) -> int:
    if grain == "hourly":
        return int(lag.total_seconds() // 3600)
    if grain == "daily":
        return lag.days
    return round(lag.days / 30.44)


LatestChecks = tuple[tuple[str, tuple[tuple[str, LatestCheck], ...]], ...]


def _latest_checks(store: StateStore, target: str) -> LatestChecks:
    """(model, ((check name, its latest result), ...)): the newest run, attempt and
    interval of each check, models and checks sorted by name."""
    out: dict[str, dict[str, LatestCheck]] = {}
    for c in store.check_history(target):
        out.setdefault(c.model, {})[c.check_name] = LatestCheck(
            c.run_id, c.task_id, c.status, c.failures, c.interval_start
        )
    return tuple((m, tuple(sorted(checks.items()))) for m, checks in sorted(out.items()))
