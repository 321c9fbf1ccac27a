"""What ran, what failed and why, what is missing: a read-only view of the state store.

Missing intervals are counted per model from the project's `start` up to the last whole
interval before now (the one place pipe reads the wall clock: status is about the present,
plans never are), or over one interval's plan with `--interval`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .compiler import CompiledProject
from .intervals import Interval, expand, floor, iso, parse_label
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


def collect(cp: CompiledProject, interval: Interval | None, limit: int = 5) -> dict:
    state = StateStore(cp.raw.root, readonly=True)
    try:
        target = cp.target.name
        runs = []
        for (run_id, kind, _target, label, status, started, finished, total, summary,
             _args) in state.runs(limit, target):
            runs.append({
                "run_id": run_id, "kind": kind, "label": label, "status": status,
                "started_at": datetime.fromtimestamp(started, UTC).strftime(
                    "%Y-%m-%d %H:%M:%SZ"),
                "seconds": round(finished - started, 3) if finished else None,
                "tasks": total, "counts": json.loads(summary) if summary else None})
        if interval is not None:
            runs = [r for r in runs if r["label"] == interval.label] or runs
        failures = []
        progress = None
        if runs:
            last = runs[0]["run_id"]
            for _tid, model, s, e, st, reason in state.task_outcomes(last):
                if interval is not None and s and not (iso(interval.start) <= s < iso(
                        interval.end)):
                    continue
                if st in ("failed", "upstream_failed"):
                    failures.append({"model": model, "interval": [s, e], "status": st,
                                     "reason": reason})
            for model, s, check, _severity, st, n, sample in state.failed_checks(last):
                if interval is not None and s and not (iso(interval.start) <= s < iso(
                        interval.end)):
                    continue
                failures.append({"model": model, "interval": [s, None], "status": f"check {st}",
                                 "reason": f"{check}: {n} failing rows",
                                 "sample": json.loads(sample) if sample else None})
            if runs[0]["status"] in ("running", "interrupted", "crashed"):
                done = sum(1 for o in state.task_outcomes(last) if o[4] in ("success",
                                                                          "skipped"))
                progress = {"run_id": last, "status": runs[0]["status"], "done": done,
                            "total": runs[0]["tasks"]}
        published = state.published_fingerprints(target)
        missing = _missing(cp, interval, published)
        backfill = None
        if runs and runs[0]["kind"] == "backfill":
            args = json.loads(state.runs(1, target)[0][9] or "{}")
            backfill = backfill_progress(cp, parse_label(runs[0]["label"]), args.get("select"),
                                         published)
        return {"project": cp.name, "target": target, "runs": runs, "failures": failures,
                "missing": missing, "in_progress": progress, "backfill": backfill}
    finally:
        state.close()


def backfill_progress(cp: CompiledProject, span: Interval, select: str | None,
                      published: dict) -> dict:
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
    return {"span": span.label, "tasks_done": done_tasks, "tasks_total": len(stubs),
            "intervals_done": len(complete), "intervals_total": len(per),
            "intervals_partial": partial,
            "intervals_pending": sorted(label for label, (d, n) in per.items() if d == 0)}


def _missing(cp: CompiledProject, interval: Interval | None, published: dict) -> dict:
    cfg = cp.raw.config
    if interval is None:
        if cfg.start is None:
            return {}
        now = datetime.now(UTC).replace(tzinfo=None)
        interval = Interval(cfg.start, floor(now, cfg.schedule))
        if interval.end <= interval.start:
            return {}
    have: dict[str, set] = {}
    for (model, s, e) in published:
        have.setdefault(model, set()).add((s, e))
    out = {}
    for node in cp.models():
        if node.kind == "incremental":
            gaps = [iv for iv in expand(interval, node.grain)
                    if (iso(iv.start), iso(iv.end)) not in have.get(node.name, ())]
            if gaps:
                out[node.name] = _ranges(gaps)
        elif node.kind != "source" and node.name not in have:
            out[node.name] = "never built"
    return out



