"""The state store as the docs site shows it: runs with their attempts and critical path,
the backfill grid (model x interval), freshness per model, the latest check results.

Read-only: the store is opened with `StateStore(readonly=True)` and only SELECTed from.
Times in the output are seconds since the run started (floats rounded to the millisecond)
or ISO strings, so the page does no date arithmetic of its own.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import freshness, ledger, runrecord
from .compiler import CompiledProject
from .intervals import Interval, expand, floor, iso, next_start
from .runrecord import stamp
from .state import StateStore

RUNS = 30  # newest runs on the site
ATTEMPTS_PER_RUN = 5000  # a longer run shows its failures, its critical path and the first ones
GRID_COLUMNS = 366  # newest schedule intervals in the backfill grid
EXPAND_LIMIT = 50_000  # tasks: a run's edges come from expanding the project over its label
CHAIN_GAP = 0.05  # s: a task queued this soon after another finished was waiting for it

# The backfill grid's cell states, one character each in a model's row string: the index
# in this tuple. A new state is one name here, one rule where a cell is decided
# (`_published`, `_incremental_row`, `_span_row`) and one colour in style.css (.st-<name>).
STATES = ("published", "failed", "missing", "stale", "partial")
PUBLISHED, STALE, PARTIAL = "0", "3", "4"
FAILED = ("failed", "upstream_failed")


@dataclass(frozen=True)
class SiteRuns:
    """What the site shows of the state store, each part as the page reads it."""

    runs: tuple[dict, ...]  # newest first: each run with its tasks and critical path
    grid: dict  # the backfill grid: states, interval labels, a row string per model
    freshness: tuple[dict, ...]  # per model
    checks: dict[str, dict[str, dict]]  # model -> check -> its latest result

    def as_json(self) -> dict:
        return {
            "runs": list(self.runs),
            "grid": self.grid,
            "freshness": list(self.freshness),
            "checks": self.checks,
        }


def runs_data(
    cp: CompiledProject, store: StateStore, now: datetime, upstream_ids: dict[str, list[str]]
) -> SiteRuns:
    target = cp.target.name
    runs = [
        _run(store, row, {**upstream_ids, **_edges(cp, row[3], row[7])})
        for row in store.runs(RUNS, target)
    ]
    entries = store.published_entries(target)
    published = _published(entries)
    failed = _failed(store, target)
    grid = _grid(cp, published, failed, now)
    incremental = {n.name for n in cp.models() if n.kind == "incremental"}
    late = ledger.late_rows(entries, incremental)
    fresh = _freshness(cp, published, freshness.newest(entries), late, now)
    return SiteRuns(tuple(runs), grid, tuple(fresh), _latest_checks(store, target))


# ---------------------------------------------------------------- runs


def _t(value: float | None, zero: float) -> float | None:
    return None if value is None else round(value - zero, 3)


def _run(store: StateStore, row: tuple, upstream_ids: dict) -> dict:
    run_id, kind, _target, label, status, started, finished, total, summary, args = row[:10]
    attempts = store.attempts(run_id)
    outcomes = store.task_outcomes(run_id)
    path = critical_path(attempts, upstream_ids)
    tasks = _tasks(_shown(attempts, set(path)), outcomes, started, set(path))
    _add_checks(tasks, store.checks_of(run_id))
    return {
        "id": run_id,
        "kind": kind,
        "label": label,
        "status": status,
        "started_at": stamp(started),
        "seconds": round(finished - started, 3) if finished else None,
        "total": total,
        "counts": json.loads(summary) if summary else None,
        "args": json.loads(args) if args else {},
        "tasks": list(tasks.values()),
        # tasks that never started: upstream_failed, blocked, skipped
        "not_started": [
            {"id": tid, "model": m, "interval": _label(s, e), "status": st, "reason": r}
            for tid, m, s, e, st, r in outcomes
            if tid not in tasks and st != "skipped"
        ],
        "hidden": len({a.task_id for a in attempts}) - len(tasks),
        "critical_path": path,
    }


def _shown(attempts: list, on_path: set[str]) -> list:
    """The attempts the page lists: all of them, or for a longer run its failures, its
    critical path and the first others up to ATTEMPTS_PER_RUN."""
    if len(attempts) <= ATTEMPTS_PER_RUN:
        return attempts
    keep = {a.task_id for a in attempts if a.status != "success"} | on_path
    shown = [a for a in attempts if a.task_id in keep]
    shown += [a for a in attempts if a.task_id not in keep][: ATTEMPTS_PER_RUN - len(shown)]
    shown.sort(key=lambda a: (a.started_at or 0, a.task_id, a.attempt))
    return shown


def _tasks(shown: list, outcomes: list, started: float, on_path: set[str]) -> dict[str, dict]:
    """Task id -> the task with its attempts, times in seconds since the run started."""
    settled = {tid: (st, reason) for tid, _m, _s, _e, st, reason in outcomes}
    labels = {tid: _label(s, e) for tid, _m, s, e, _st, _r in outcomes}
    tasks: dict[str, dict] = {}
    for a in shown:
        t = tasks.setdefault(
            a.task_id,
            {
                "id": a.task_id,
                "model": a.model,
                "interval": labels.get(a.task_id) or _label(a.interval_start, a.interval_end),
                "status": settled.get(a.task_id, (a.status, None))[0],
                "reason": settled.get(a.task_id, (None, None))[1],
                "critical": a.task_id in on_path,
                "attempts": [],
            },
        )
        t["attempts"].append(
            {
                "n": a.attempt,
                "status": a.status,
                "queued": _t(a.queued_at, started),
                "start": _t(a.started_at, started),
                "end": _t(a.finished_at, started),
                "rows": a.rows,
                "error": a.error,
            }
        )
    return tasks


def _add_checks(tasks: dict[str, dict], checks: list[tuple]) -> None:
    for tid, attempt, name, severity, st, failures, sample in checks:
        if tid in tasks:
            tasks[tid].setdefault("checks", []).append(
                {
                    "attempt": attempt,
                    "name": name,
                    "severity": severity,
                    "status": st,
                    "failures": failures,
                    "sample": json.loads(sample) if sample else None,
                }
            )


def _edges(cp: CompiledProject, label: str, total: int) -> dict[str, tuple[str, ...]]:
    """The run's edges as `pipe status --run` finds them; {} for a run too large to expand
    cheaply (then the plan files' edges and the queue-time rule serve)."""
    return {} if total > EXPAND_LIMIT else runrecord.edges(cp, runrecord.span_of(label))


def _label(start: str, end: str) -> str:
    if not start:
        return "-"
    return Interval(datetime.fromisoformat(start), datetime.fromisoformat(end)).label


def critical_path(attempts, upstream_ids: dict[str, list[str]]) -> list[str]:
    """Task ids of the chain that decided when the run ended, first task first
    (`runrecord.chain`): a task whose edges are unknown steps to the task that finished
    just before it was queued, within CHAIN_GAP. Every attempt of a task counts."""
    queued: dict[str, float] = {}
    finished: dict[str, float] = {}
    for a in attempts:
        if a.finished_at is None:
            continue
        q = a.queued_at if a.queued_at is not None else a.started_at
        queued[a.task_id] = min(queued.get(a.task_id, q), q)
        finished[a.task_id] = max(finished.get(a.task_id, a.finished_at), a.finished_at)
    return list(runrecord.chain(finished, upstream_ids, queued, CHAIN_GAP))


# ---------------------------------------------------------------- ledger views


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
    for (m, s, e), (run_id, st) in store.latest_outcomes(target).items():
        if st in FAILED:
            out.setdefault(m, {})[(s, e)] = run_id
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


def _grid(cp: CompiledProject, published: dict, failed: dict, now: datetime) -> dict:
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
        row = {"model": node.name, "kind": node.kind, "states": states}
        if fail:  # a failed cell links to the run that failed it
            row["runs"] = {
                i: _failed_run(spelled[i], fail) for i, c in enumerate(states) if c == "1"
            }
        rows.append(row)
    return {"states": list(STATES), "intervals": [c.label for c in cells], "rows": rows}


def _freshness(
    cp: CompiledProject, published: dict, newest_of: dict, late: dict, now: datetime
) -> list[dict]:
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
            check = {
                "status": row.status,
                "warn_after": row.warn_after,
                "error_after": row.error_after,
                "age": row.age,
            }
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
            {
                "model": node.name,
                "kind": node.kind,
                "grain": node.grain,
                "newest_end": newest,
                "due_end": iso(due),
                "behind": behind,
                "published_at": stamp(at) if at else None,
                "status": status,
                "late_rows": late.get(node.name),
                "check": check,
            }
        )
    return out


def _intervals_in(lag: timedelta, grain: str) -> int:
    if grain == "hourly":
        return int(lag.total_seconds() // 3600)
    if grain == "daily":
        return lag.days
    return round(lag.days / 30.44)


def _latest_checks(store: StateStore, target: str) -> dict[str, dict[str, dict]]:
    """model -> check name -> its latest result (newest run, attempt and interval)."""
    out: dict[str, dict[str, dict]] = {}
    for run_id, tid, m, s, name, st, failures in store.check_history(target):
        out.setdefault(m, {})[name] = {
            "run": run_id,
            "task": tid,
            "status": st,
            "failures": failures,
            "interval_start": s,
        }
    return out
