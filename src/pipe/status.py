"""What ran, what failed and why, what is missing, stale, partial or late: read-only.

Missing intervals are counted per model from the project's `start` up to the last whole
interval before the execution time (default now: status is about the present, plans never
are), or over one interval's plan with `--interval`. Stale, partial and late come from the
state store's mirror of the warehouse ledger (readable while a run holds the warehouse);
missing tables from the warehouse's catalog, when it can be opened.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .adapters import AdapterError, open_reader
from .compiler import CompiledProject
from .decide import describe
from .errors import UserError
from .intervals import Interval, expand, floor, from_iso, iso, parse_label
from .ledger import Entry, Key, late_rows, stale
from .state import StateStore


def _ranges(intervals: list[Interval]) -> list[list[str]]:
    """Merge adjacent intervals: [[start, end], ...]."""
    out: list[list[str]] = []
    for iv in intervals:
        if out and out[-1][1] == iso(iv.start):
            out[-1][1] = iso(iv.end)
        else:
            out.append([iso(iv.start), iso(iv.end)])
    return out


def collect(
    cp: CompiledProject,
    interval: Interval | None,
    limit: int = 5,
    execution_time: datetime | None = None,
) -> dict:
    state = StateStore(cp.raw.root, readonly=True)
    try:
        target = cp.target.name
        runs = []
        for (
            run_id,
            kind,
            _target,
            label,
            status,
            started,
            finished,
            total,
            summary,
            _args,
        ) in state.runs(limit, target):
            runs.append(
                {
                    "run_id": run_id,
                    "kind": kind,
                    "label": label,
                    "status": status,
                    "started_at": datetime.fromtimestamp(started, UTC).strftime(
                        "%Y-%m-%d %H:%M:%SZ"
                    ),
                    "seconds": round(finished - started, 3) if finished else None,
                    "tasks": total,
                    "counts": json.loads(summary) if summary else None,
                }
            )
        if interval is not None:
            runs = [r for r in runs if r["label"] == interval.label] or runs
        failures = []
        progress = None
        if runs:
            last = runs[0]["run_id"]
            for _tid, model, s, e, st, reason in state.task_outcomes(last):
                if (
                    interval is not None
                    and s
                    and not (iso(interval.start) <= s < iso(interval.end))
                ):
                    continue
                if st in ("failed", "upstream_failed"):
                    failures.append(
                        {"model": model, "interval": [s, e], "status": st, "reason": reason}
                    )
            for model, s, check, _severity, st, n, sample in state.failed_checks(last):
                if (
                    interval is not None
                    and s
                    and not (iso(interval.start) <= s < iso(interval.end))
                ):
                    continue
                failures.append(
                    {
                        "model": model,
                        "interval": [s, None],
                        "status": f"check {st}",
                        "reason": f"{check}: {n} failing rows",
                        "sample": json.loads(sample) if sample else None,
                    }
                )
            if runs[0]["status"] in ("running", "interrupted", "crashed"):
                done = sum(1 for o in state.task_outcomes(last) if o[4] in ("success", "skipped"))
                progress = {
                    "run_id": last,
                    "status": runs[0]["status"],
                    "done": done,
                    "total": runs[0]["tasks"],
                }
        entries = state.published_entries(target)
        now = execution_time or datetime.now(UTC).replace(tzinfo=None)
        found = promises(cp, entries, now)
        gone = {t["model"] for t in found["missing_tables"]}  # their intervals are gaps too
        published = {k: e.fingerprint for k, e in entries.items() if k[0] not in gone}
        missing = _missing(cp, interval, published, now)
        backfill = None
        if runs and runs[0]["kind"] == "backfill":
            args = json.loads(state.runs(1, target)[0][9] or "{}")
            backfill = backfill_progress(
                cp, parse_label(runs[0]["label"]), args.get("select"), published
            )
        return {
            "project": cp.name,
            "target": target,
            "runs": runs,
            "failures": failures,
            "missing": missing,
            "in_progress": progress,
            "backfill": backfill,
            "execution_time": iso(now),
            **found,
        }
    finally:
        state.close()


def backfill_progress(
    cp: CompiledProject, span: Interval, select: str | None, published: dict
) -> dict:
    """Per schedule interval of a backfill: how many of its tasks are published."""
    from .backfill import expand_stubs, inside_one
    from .graph import select as graph_select

    models = None
    if select:
        models = graph_select(cp.graph, select, {n: v.config.tags for n, v in cp.nodes.items()})
    per: dict[str, list[int]] = {}
    done_tasks = 0
    stubs = expand_stubs(cp, span, models).tasks
    for t in stubs:
        outer = inside_one(cp, t.interval)
        ok = published.get(t.key) == t.fingerprint
        done_tasks += ok
        if outer is not None:
            cell = per.setdefault(outer.label, [0, 0])
            cell[0] += ok
            cell[1] += 1
    complete = sorted(label for label, (d, n) in per.items() if d == n)
    partial = sorted(label for label, (d, n) in per.items() if 0 < d < n)
    return {
        "span": span.label,
        "tasks_done": done_tasks,
        "tasks_total": len(stubs),
        "intervals_done": len(complete),
        "intervals_total": len(per),
        "intervals_partial": partial,
        "intervals_pending": sorted(label for label, (d, n) in per.items() if d == 0),
    }


def _missing(
    cp: CompiledProject, interval: Interval | None, published: dict, now: datetime
) -> dict:
    cfg = cp.raw.config
    if interval is None:
        if cfg.start is None:
            return {}
        interval = Interval(cfg.start, floor(now, cfg.schedule))
        if interval.end <= interval.start:
            return {}
    have: dict[str, set] = {}
    for model, s, e in published:
        have.setdefault(model, set()).add((s, e))
    out = {}
    for node in cp.models():
        if node.kind == "incremental":
            gaps = [
                iv
                for iv in expand(interval, node.grain)
                if (iso(iv.start), iso(iv.end)) not in have.get(node.name, ())
            ]
            if gaps:
                out[node.name] = _ranges(gaps)
        elif node.kind != "source" and node.name not in have:
            out[node.name] = "never built"
    return out


# ---------------------------------------------------------------- broken promises (SPEC §7)


def promises(cp: CompiledProject, entries: dict[Key, Entry], now: datetime) -> dict:
    """The published intervals that are not what a publish promises: stale, partial, gone;
    and the rows that arrived late. Each entry says why and, where one exists, the command
    that repairs it."""
    out_stale = []
    superseded = _superseded(cp, entries)
    for key, why in sorted(stale(entries).items()):
        if key in superseded:
            continue
        since = f" at {_when(why.since)}" if why.since is not None else ""
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
    late = [
        {"model": m, "intervals": n, "rows": rows}
        for m, (n, rows) in sorted(late_rows(entries, incremental).items())
    ]
    return {
        "stale": out_stale,
        "partial": partial,
        "missing_tables": missing_tables,
        "tables_checked": probe,
        "late_rows": late,
    }


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


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _item(key: Key, reason: str, fix: bool = True) -> dict:
    model, start, end = key
    item = {"model": model, "start": start or None, "end": end or None, "reason": reason}
    if fix and start:
        item["fix"] = f"pipe backfill --start {_arg(start)} --end {_arg(end)} --select {model}"
    return item


def _arg(iso_time: str) -> str:
    """An ISO bound as the shortest --start/--end argument."""
    return iso_time[:10] if iso_time.endswith("T00:00:00") else iso_time[:16]


def _missing_tables(cp: CompiledProject, entries: dict[Key, Entry]) -> tuple[list, str]:
    """Models with published intervals whose table is gone, and whether that was checked:
    'yes', or why not (a run holds the warehouse; it cannot be reached)."""
    models = sorted({m for m, _, _ in entries})
    if not models:
        return [], "yes"
    try:
        reader = open_reader(cp.target, cp.raw.root)
    except UserError as exc:
        return [], f"no: {exc.message}"
    if reader is None:
        gone = models  # no warehouse at all
    else:
        try:
            reader.prefetch_catalog({m.split(".", 1)[0] for m in models})
            gone = [m for m in models if reader.relation_kind(m) is None]
        except AdapterError as exc:
            return [], f"no: {str(exc).splitlines()[0]}"
        finally:
            reader.close()
    out = []
    for model in gone:
        keys = sorted(k for k in entries if k[0] == model)
        item = {
            "model": model,
            "intervals": len(keys),
            "reason": f"the table is missing from the warehouse (dropped outside pipe?): "
            f"its {len(keys)} published interval(s) are gone; the next run or backfill "
            "that covers them rebuilds them",
        }
        spans = [k for k in keys if k[1]]
        if spans:
            item["fix"] = (
                f"pipe backfill --start {_arg(spans[0][1])} --end "
                f"{_arg(max(k[2] for k in spans))} --select {model}"
            )
        out.append(item)
    return out, "yes"
