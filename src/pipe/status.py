"""What ran, what failed and why, what is missing, stale, partial or late: read-only.

Missing intervals are counted per model from the project's `start` up to the last whole
interval before the execution time (default now: status is about the present, plans never
are), or over one interval's plan with `--interval`. Stale, partial and late come from the
state store's mirror of the warehouse ledger (readable while a run holds the warehouse);
missing tables from the warehouse's catalog, when it can be opened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from .adapters import AdapterError, open_reader
from .compiler import CompiledProject
from .decide import describe
from .errors import UserError
from .intervals import Interval, expand, floor, from_iso, iso, parse_label
from .ledger import Entry, Key, late_rows, stale
from .names import TableName
from .reporttext import check_found
from .runrecord import BackfillProgress, RunRow, backfill_progress, run_row, stamp
from .state import StateStore, StoredCheck


@dataclass(frozen=True)
class Failure:
    """A task of the last run that failed (or did not run because an upstream failed), or
    a check of it that did not pass (`sample`: a few offending rows)."""

    model: str
    start: str
    end: str | None
    status: str
    reason: str
    check: bool = False
    sample: tuple[Mapping, ...] | None = None

    def as_json(self) -> dict:
        out = {
            "model": self.model,
            "interval": [self.start, self.end],
            "status": self.status,
            "reason": self.reason,
        }
        if self.check:
            out["sample"] = None if self.sample is None else list(self.sample)
        return out


@dataclass(frozen=True)
class Progress:
    """The newest run when it has not finished: running, interrupted or crashed."""

    run_id: int
    status: str
    done: int
    total: int

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Broken:
    """A published interval that is not what its publish promised (stale or partial)."""

    model: str
    start: str | None
    end: str | None
    reason: str
    fix: str | None = None  # the command that repairs it

    def as_json(self) -> dict:
        return _without_fix(asdict(self))


@dataclass(frozen=True)
class MissingTable:
    """A model with published intervals whose table is gone from the warehouse."""

    model: str
    intervals: int
    reason: str
    fix: str | None = None

    def as_json(self) -> dict:
        return _without_fix(asdict(self))


def _without_fix(item: dict) -> dict:
    """An item's JSON has a "fix" only when there is one."""
    if not item["fix"]:
        del item["fix"]
    return item


@dataclass(frozen=True)
class LateRows:
    model: str
    intervals: int  # republished with another row count
    rows: int  # the change, summed

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Promises:
    """The broken promises of SPEC §7; `tables_checked` is 'yes' or why not."""

    stale: tuple[Broken, ...] = ()
    partial: tuple[Broken, ...] = ()
    missing_tables: tuple[MissingTable, ...] = ()
    tables_checked: str = "yes"
    late_rows: tuple[LateRows, ...] = ()

    def as_json(self) -> dict:
        return {
            "stale": [b.as_json() for b in self.stale],
            "partial": [b.as_json() for b in self.partial],
            "missing_tables": [m.as_json() for m in self.missing_tables],
            "tables_checked": self.tables_checked,
            "late_rows": [r.as_json() for r in self.late_rows],
        }


Gaps = tuple[tuple[str, str], ...] | str  # merged [start, end) ranges, or "never built"


@dataclass(frozen=True)
class StatusReport:
    """Everything `pipe status` shows; `as_json()` is what `--json` prints."""

    project: str
    target: str
    runs: tuple[RunRow, ...]
    failures: tuple[Failure, ...]
    missing: tuple[tuple[str, Gaps], ...]  # (model, its gaps), in the project's order
    in_progress: Progress | None
    backfill: BackfillProgress | None
    execution_time: str
    promises: Promises

    def as_json(self) -> dict:
        return {
            "project": self.project,
            "target": self.target,
            "runs": [r.as_json() for r in self.runs],
            "failures": [f.as_json() for f in self.failures],
            "missing": {
                m: g if isinstance(g, str) else [list(r) for r in g] for m, g in self.missing
            },
            "in_progress": self.in_progress.as_json() if self.in_progress else None,
            "backfill": self.backfill.as_json() if self.backfill else None,
            "execution_time": self.execution_time,
            **self.promises.as_json(),
        }


def collect(
    cp: CompiledProject,
    interval: Interval | None,
    limit: int = 5,
    execution_time: datetime | None = None,
) -> StatusReport:
    """The status of `cp`'s target: its last `limit` runs (those of `interval` when it is
    given and has any), the last run's failures, what is missing up to `execution_time`
    (default: now) and the broken promises."""
    state = StateStore(cp.raw.root, readonly=True)
    try:
        target = cp.target.name
        runs = [run_row(row) for row in state.runs(limit, target)]
        if interval is not None:
            runs = [r for r in runs if r.label == interval.label] or runs
        last = runs[0] if runs else None
        failures = _failures(state, last.run_id, interval) if last else ()
        progress = _progress(state, last)
        entries = state.published_entries(target)
    finally:
        state.close()
    now = execution_time or datetime.now(UTC).replace(tzinfo=None)
    found = promises(cp, entries, now)
    gone = {t.model for t in found.missing_tables}  # their intervals are gaps too
    published = {k: e.fingerprint for k, e in entries.items() if k[0] not in gone}
    backfill = None
    if last is not None and last.kind == "backfill":
        select = json.loads(last.args or "{}").get("select")
        backfill = backfill_progress(cp, parse_label(last.label), select, published)
    return StatusReport(
        cp.name,
        target,
        tuple(runs),
        failures,
        _missing(cp, interval, published, now),
        progress,
        backfill,
        iso(now),
        found,
    )


def _failures(state: StateStore, run_id: int, interval: Interval | None) -> tuple[Failure, ...]:
    """The failed tasks and the checks that did not pass of run `run_id` (within
    `interval` when it is given)."""

    def outside(start: str) -> bool:
        return bool(
            interval is not None and start and not iso(interval.start) <= start < iso(interval.end)
        )

    out = [
        Failure(o.model, o.interval_start, o.interval_end, o.status, o.reason)
        for o in state.task_outcomes(run_id)
        if o.status in ("failed", "upstream_failed") and not outside(o.interval_start)
    ]
    out += [_check_failure(c) for c in state.failed_checks(run_id) if not outside(c.interval_start)]
    return tuple(out)


def _check_failure(c: StoredCheck) -> Failure:
    sample = tuple(json.loads(c.sample)) if c.sample else None
    found = check_found(c.check_type, c.failures, sample)
    if c.check_type == "row_count":
        sample = None  # the count is the one row: said in `found`
    return Failure(
        c.model, c.interval_start, None, f"check {c.status}", f"{c.check_name}: {found}",
        check=True, sample=sample,
    )  # fmt: skip


def _progress(state: StateStore, last: RunRow | None) -> Progress | None:
    if last is None or last.status not in ("running", "interrupted", "crashed"):
        return None
    return Progress(last.run_id, last.status, state.settled(last.run_id), last.tasks)


def _ranges(intervals: list[Interval]) -> tuple[tuple[str, str], ...]:
    """Merge adjacent intervals: ((start, end), ...)."""
    out: list[list[str]] = []
    for iv in intervals:
        if out and out[-1][1] == iso(iv.start):
            out[-1][1] = iso(iv.end)
        else:
            out.append([iso(iv.start), iso(iv.end)])
    return tuple((s, e) for s, e in out)


def _missing(
    cp: CompiledProject, interval: Interval | None, published: dict, now: datetime
) -> tuple[tuple[str, Gaps], ...]:
    cfg = cp.raw.config
    if interval is None:
        if cfg.start is None:
            return ()
        interval = Interval(cfg.start, floor(now, cfg.schedule))
        if interval.end <= interval.start:
            return ()
    have: dict[str, set] = {}
    for model, s, e in published:
        have.setdefault(model, set()).add((s, e))
    out: list[tuple[str, Gaps]] = []
    for node in cp.models():
        if node.kind == "incremental":
            gaps = [
                iv
                for iv in expand(interval, node.grain)
                if (iso(iv.start), iso(iv.end)) not in have.get(node.name, ())
            ]
            if gaps:
                out.append((node.name, _ranges(gaps)))
        elif node.kind != "source" and node.name not in have:
            out.append((node.name, "never built"))
    return tuple(out)


# ---------------------------------------------------------------- broken promises (SPEC §7)


def promises(cp: CompiledProject, entries: dict[Key, Entry], now: datetime) -> Promises:
    """The published intervals that are not what a publish promises: stale, partial, gone;
    and the rows that arrived late. Each entry says why and, where one exists, the command
    that repairs it."""
    out_stale = []
    superseded = _superseded(cp, entries)
    for key, why in sorted(stale(entries).items()):
        if key in superseded:
            continue
        since = f" at {stamp(why.since)}" if why.since is not None else ""
        reason = (
            f"{describe(why.upstream)} was published again{since} after this was built"
            if why.since is not None
            else f"it read {describe(why.upstream)}, which is stale itself"
        )
        out_stale.append(_item(key, reason))
    partial = []
    for key, e in sorted(entries.items()):
        if e.partial and key[2]:
            end = from_iso(key[2])
            reason = "built before its interval was complete; " + (
                f"complete since {key[2]}Z: the next run or backfill that covers it rebuilds it"
                if end <= now
                else f"its interval ends at {key[2]}Z"
            )
            partial.append(_item(key, reason, fix=end <= now))
    missing_tables, probe = _missing_tables(cp, entries)
    incremental = {n.name for n in cp.models() if n.kind == "incremental"}
    late = tuple(
        LateRows(m, n, rows) for m, (n, rows) in sorted(late_rows(entries, incremental).items())
    )
    return Promises(tuple(out_stale), tuple(partial), missing_tables, probe, late)


def _superseded(cp: CompiledProject, entries: dict[Key, Entry]) -> set[Key]:
    """Keys of full models and views older than the model's latest publish: the table holds
    the latest build only, so an older label's promise is history, not a gap."""
    latest: dict[str, Key] = {}
    whole = {n.name for n in cp.models() if n.kind in ("full", "view")}
    for key, e in entries.items():
        if key[0] in whole and (
            key[0] not in latest or e.published_at > entries[latest[key[0]]].published_at
        ):
            latest[key[0]] = key
    return {k for k in entries if k[0] in whole and latest[k[0]] != k}


def _item(key: Key, reason: str, fix: bool = True) -> Broken:
    model, start, end = key
    repair = None
    if fix and start:
        repair = f"pipe backfill --start {_arg(start)} --end {_arg(end)} --select {model}"
    return Broken(model, start or None, end or None, reason, repair)


def _arg(iso_time: str) -> str:
    """An ISO bound as the shortest --start/--end argument."""
    return iso_time[:10] if iso_time.endswith("T00:00:00") else iso_time[:16]


def _missing_tables(
    cp: CompiledProject, entries: dict[Key, Entry]
) -> tuple[tuple[MissingTable, ...], str]:
    """Models with published intervals whose table is gone, and whether that was checked:
    'yes', or why not (a run holds the warehouse; it cannot be reached)."""
    models = sorted({m for m, _, _ in entries})
    if not models:
        return (), "yes"
    try:
        reader = open_reader(cp.target, cp.raw.root)
    except UserError as exc:
        return (), f"no: {exc.message}"
    if reader is None:
        gone = models  # no warehouse at all
    else:
        try:
            reader.prefetch_catalog({TableName.parse(m).schema for m in models})
            gone = [m for m in models if reader.relation_kind(m) is None]
        except AdapterError as exc:
            return (), f"no: {str(exc).splitlines()[0]}"
        finally:
            reader.close()
    out = []
    for model in gone:
        keys = sorted(k for k in entries if k[0] == model)
        spans = [k for k in keys if k[1]]
        fix = None
        if spans:
            fix = (
                f"pipe backfill --start {_arg(spans[0][1])} --end "
                f"{_arg(max(k[2] for k in spans))} --select {model}"
            )
        reason = (
            f"the table is missing from the warehouse (dropped outside pipe?): "
            f"its {len(keys)} published interval(s) are gone; the next run or backfill "
            "that covers them rebuilds them"
        )
        out.append(MissingTable(model, len(keys), reason, fix))
    return tuple(out), "yes"
