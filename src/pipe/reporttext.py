"""The text of the reports: `pipe status` (runs, backfill, what is missing, broken
promises), `pipe status --freshness`, `pipe status --run N` and `pipe lineage`.

Each function takes the report value its command built (status.py, freshness.py,
runrecord.py, lineage.py) and returns a string; console.py re-exports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .intervals import bound_arg, iso
from .texttable import duration, indent, row_text, table

if TYPE_CHECKING:
    from .freshness import FreshnessReport
    from .runrecord import RunRecord
    from .status import StatusReport


def check_found(check_type: str | None, failures: int, sample) -> str:
    """What a failed check found: '3 failing rows'; a row count says the count instead
    ('the table has 12 rows'): its one "failing row" is that count."""
    if check_type == "row_count" and sample:
        return f"the table has {next(iter(sample[0].values()))} rows"
    return f"{failures} failing rows"


def status_text(report: StatusReport) -> str:
    lines = [f"project {report.project}, target {report.target}"]
    lines += _runs_text(report.runs)
    p = report.in_progress
    if p is not None and p.status == "running":
        lines.append(f"run {p.run_id} is running: {p.done}/{p.total} tasks done")
    elif p is not None:
        said = {"crashed": "crashed", "interrupted": "was interrupted"}.get(p.status, p.status)
        lines.append(
            f"run {p.run_id} {said} with {p.done}/{p.total} tasks done; "
            "run the same command again to resume"
        )
    if report.backfill:
        lines += _backfill_text(report.backfill)
    if report.failures:
        lines.append("failures in the last run:")
        for f in report.failures:
            lines.append(f"  {f.status:<15} {f.model} {f.start}: {f.reason}")
            for row in (f.sample or ())[:5]:
                lines.append(f"      {row_text(row)}")
    lines += _missing_text(report.missing)
    lines += _promises_text(report.promises)
    return "\n".join(lines)


def _runs_text(runs) -> list[str]:
    if not runs:
        return ["no runs yet"]
    rows = []
    for r in runs:
        counts = ", ".join(f"{v} {k}" for k, v in r.counts or ())
        rows.append(
            [
                str(r.run_id),
                r.kind,
                r.label,
                r.status,
                r.started_at,
                duration(r.seconds),
                counts or f"{r.tasks} tasks",
            ]
        )
    headers = ["run", "kind", "interval", "status", "started", "took", "tasks"]
    return ["recent runs:", indent(table(rows, headers))]


def _backfill_text(b) -> list[str]:
    lines = [
        f"backfill {b.span}: {b.intervals_done}/{b.intervals_total} "
        f"intervals complete, {b.tasks_done}/{b.tasks_total} tasks published"
    ]
    if b.intervals_partial:
        lines.append("  partly done: " + ", ".join(b.intervals_partial[:10]))
    if b.intervals_pending and b.intervals_done < b.intervals_total:
        first, last = b.intervals_pending[0], b.intervals_pending[-1]
        lines.append(f"  not started: {len(b.intervals_pending)} intervals ({first} .. {last})")
    return lines


def _missing_text(missing) -> list[str]:
    if not missing:
        return ["nothing missing"]
    lines = ["missing:"]
    for model, gaps in sorted(missing):
        if isinstance(gaps, str):
            lines.append(f"  {model}: {gaps}")
        else:
            shown = ", ".join(f"[{s}, {e})" for s, e in gaps[:3])
            more = f" and {len(gaps) - 3} more ranges" if len(gaps) > 3 else ""
            lines.append(f"  {model}: {shown}{more}")
    spans = [g for _model, gaps in missing if not isinstance(gaps, str) for g in gaps]
    if spans:
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        lines.append(
            f"  fix: pipe backfill --start {bound_arg(start)} --end {bound_arg(end)}"
            " (what is published already is skipped)"
        )
    return lines


def _promises_text(promises) -> list[str]:
    """Stale, partial, missing tables, late rows: one block each, grouped by model, each
    with what is wrong, since when, and the command that repairs it."""
    lines: list[str] = []
    for items, title in (
        (promises.stale, "stale: built from upstream data that was published again"),
        (promises.partial, "partial: built before their interval was complete"),
    ):
        if items:
            lines.append(f"{title} ({len(items)} interval(s)):")
            lines += _broken_text(items)
    if promises.missing_tables:
        lines.append("missing tables:")
    for item in promises.missing_tables:
        lines.append(f"  {item.model}: {item.reason}")
        if item.fix:
            lines.append(f"    fix: {item.fix}")
    if promises.tables_checked != "yes":
        lines.append(
            f"tables not checked for drift ({promises.tables_checked.removeprefix('no: ')})"
        )
    if promises.late_rows:
        lines.append("late rows (row-count change when an interval was published again):")
        for item in promises.late_rows:
            lines.append(
                f"  {item.model}: {item.rows:+d} rows over {item.intervals} republished interval(s)"
            )
    return lines


def _broken_text(items) -> list[str]:
    """Broken intervals grouped by model: the first one's reason, the span, one fix."""
    lines = []
    by_model: dict[str, list] = {}
    for item in items:
        by_model.setdefault(item.model, []).append(item)
    for model, group in sorted(by_model.items()):
        first = group[0]
        span = f"[{first.start}, {group[-1].end})" if first.start else ""
        count = f"{len(group)} interval(s) " if len(group) > 1 else ""
        lines.append(f"  {model} {count}{span}: {first.reason}")
        fixes = [g.fix for g in group if g.fix]
        if fixes:
            start = fixes[0].split("--start ")[1].split()[0]
            end = fixes[-1].split("--end ")[1].split()[0]
            lines.append(f"    fix: pipe backfill --start {start} --end {end} --select {model}")
    return lines


def lineage_text(rows, downstream: bool, note: str | None = None) -> str:
    """`pipe lineage`: per column (lineage.ColumnReport), its parents and sources (or
    children and downstream)."""
    near, far = ("children:", "downstream:") if downstream else ("parents:", "sources:")
    lines = []
    for row in rows:
        lines.append(row.column)
        lines.append(f"  {near:<11} {', '.join(row.direct) or '-'}")
        lines.append(f"  {far:<11} {', '.join(row.transitive) or '-'}")
    if note:
        lines.append(note)
    return "\n".join(lines)


def age(seconds: float | None) -> str:
    """A data age for people: 45m, 26h, 3d 4h."""
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 72:
        return f"{hours}h"
    return f"{hours // 24}d {hours % 24}h"


def freshness_text(report: FreshnessReport) -> str:
    """`pipe status --freshness`: one row per model and source with `freshness:`."""
    rows = [
        [
            r.name,
            r.kind,
            ((iso(r.latest) if r.latest else None) or r.reason or "-").replace("T", " "),
            age(None if r.age is None else round(r.age, 3)),
            age(r.warn_after),
            age(r.error_after),
            r.status,
        ]
        for r in report.rows
    ]
    text = table(
        rows, ["name", "kind", "latest data", "age", "warn_after", "error_after", "status"]
    )
    bad = [r.name for r in report.rows if r.status == "error"]
    if bad:
        text += f"\n{len(bad)} past error_after: {', '.join(bad)}"
    return text


def _secs(value: float | None) -> str:
    """A duration as the JSON gives it (to the millisecond), for people."""
    return "-" if value is None else duration(round(value, 3))


def run_record_text(rec: RunRecord) -> str:
    """`pipe status --run N`: the run, its critical path, then every attempt."""
    from .runrecord import iso_ms

    lines = [
        f"run {rec.run_id}  {rec.kind}  {rec.label}  {rec.status}  "
        f"started {iso_ms(rec.started_at)}  took {_secs(rec.seconds)}"
    ]
    if rec.critical_path:
        chain = " -> ".join(
            t.model + (f" {t.start[:16]}" if t.start else "")
            for t in map(rec.task, rec.critical_path)
        )
        lines.append(f"critical path ({_secs(rec.critical_seconds)}): {chain}")
    lines.append(f"failed dependencies: {rec.failed_dependencies}")
    lines.append(
        f"late rows: {rec.late_total:+d}"
        + (f" over {len(rec.late_rows)} republished interval(s)" if rec.late_rows else "")
    )
    if rec.backfill:
        b = rec.backfill
        lines.append(
            f"backfill {b.span}: {b.intervals_done}/{b.intervals_total} "
            f"intervals, {b.tasks_done}/{b.tasks_total} tasks published"
        )
    headers = ["model", "interval", "attempt", "status", "wait", "exec", "rows", "checks"]
    lines.append(table(_attempt_rows(rec.tasks), [*headers, "why / error"]))
    return "\n".join(lines)


def _attempt_rows(tasks) -> list[list[str]]:
    rows = []
    for t in tasks:
        where = (t.start or "-")[:16]
        if not t.attempts:
            rows.append([t.model, where, "-", t.status, "-", "-", "-", "-", t.reason or ""])
        for a in t.attempts:
            bad = [c.name for c in a.checks if c.status != "pass"]
            checks = f"{len(a.checks) - len(bad)}/{len(a.checks)}" if a.checks else "-"
            # a failure says what went wrong; a success why it ran (the ledger's decision)
            note = (
                a.error
                or (", ".join(bad) if bad else "")
                or (t.reason or "" if a.status == "success" else "")
            )
            rows.append(
                [
                    t.model,
                    where,
                    str(a.attempt),
                    a.status,
                    _secs(a.queue_wait),
                    _secs(a.execution),
                    "-" if a.rows is None else str(a.rows),
                    checks,
                    note.splitlines()[0][:100] if note else "",
                ]
            )
    return rows
