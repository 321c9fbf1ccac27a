"""Every line a human reads: error formatting, tables, task lines, summaries, progress.

Functions here return strings (or drive a rich progress bar on a terminal); only cli.py
decides where they go. Output meant for snapshots is plain text with no colour or timing
unless asked for.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .errors import ErrorGroup, UserError
from .intervals import iso

if TYPE_CHECKING:
    from .freshness import FreshnessReport
    from .runrecord import RunRecord
    from .status import StatusReport


def format_user_error(exc: UserError) -> str:
    if isinstance(exc, ErrorGroup):
        lines = [f"error: {e}" for e in exc.errors]
        lines.append(f"{len(exc.errors)} errors")
        return "\n".join(lines)
    return f"error: {exc}"


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain aligned text table (deterministic: snapshot-friendly)."""
    cells = [headers] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for r in cells:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(out)


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


# ---------------------------------------------------------------- runs

_MARK = {"success": "OK", "failed": "FAIL", "retry": "RETRY"}


def task_line(task, result, attempt: int, seconds: float, final: bool) -> str:
    status = result.status if final or result.status == "success" else "retry"
    rows = f"{result.rows} rows" if result.rows is not None else ""
    line = f"{_MARK[status]:<5} {task.model:<32} {task.label:<16} {rows:>12} {duration(seconds):>7}"
    if attempt > 1:
        line += f"  (attempt {attempt})"
    if result.status != "success":
        line += f"\n      {result.error}"
        for c in result.checks:
            if c.status == "error" and c.sample:
                line += f"\n      {c.name}: " + "; ".join(_row(r) for r in c.sample)
    for w in result.warnings:
        line += f"\n      warning: {w}"
    return line.rstrip()


def _row(row: dict) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in row.items()) + "}"


def run_summary(result) -> str:
    c = result.counts
    parts = [
        f"{c.get(k, 0)} {label}"
        for k, label in (
            ("success", "succeeded"),
            ("skipped", "skipped"),
            ("failed", "failed"),
            ("upstream_failed", "upstream failed"),
            ("not_run", "not run"),
        )
        if c.get(k)
    ]
    head = {"success": "done", "failed": "FAILED", "interrupted": "INTERRUPTED"}[result.status]
    lines = [
        f"{head}: run {result.run_id}, {', '.join(parts) or 'nothing to do'} "
        f"in {duration(result.seconds)}"
    ]
    failed = [r for r in result.reports if r.status == "failed"]
    for r in failed:
        lines.append(f"  failed: {r.model} {r.label}: {r.reason}")
    blocked = [r for r in result.reports if r.status == "upstream_failed"]
    if blocked:
        names = sorted({r.model for r in blocked})
        lines.append(f"  upstream failed ({len(blocked)} tasks): {', '.join(names)}")
    if result.status == "interrupted":
        lines.append("  run the same command again to resume where it stopped")
    elif failed:
        lines.append(
            "  fix the cause and run the same command again: published tasks are "
            "skipped ('pipe status' shows details)"
        )
    return "\n".join(lines)


class ConsoleReporter:
    """Plain lines per finished task; a rich progress bar too when stdout is a terminal."""

    def __init__(
        self,
        echo,
        quiet: bool = False,
        progress: bool | None = None,
        intervals: dict[str, str] | None = None,
    ):
        self.echo = echo
        self.quiet = quiet
        self.progress = None
        self._want_progress = is_terminal() if progress is None else progress
        # backfill: task id -> its schedule interval, for a second bar by interval
        self._interval_of = intervals or {}
        self._left: dict[str, int] = {}
        for label in self._interval_of.values():
            self._left[label] = self._left.get(label, 0) + 1

    def waiting_for_lock(self, holder: str) -> None:
        self.echo(f"waiting for the project lock held by {holder}", err=True)

    def note(self, text: str) -> None:
        self.echo(f"note: {text}", err=self.quiet)

    def start(self, total: int, skipped: int, label: str) -> None:
        if not self.quiet:
            self.echo(f"running {label}: {total} tasks, {skipped} already published")
        if self._want_progress and total - skipped > 1:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self.progress.start()
            self._bar = self.progress.add_task("tasks", total=total - skipped)
            if self._left:
                self._ibar = self.progress.add_task("intervals", total=len(self._left))

    def skipped(self, task_ids) -> None:
        """Tasks already published count as done for the interval bar."""
        for tid in task_ids:
            label = self._interval_of.get(tid)
            if label is not None:
                self._left[label] -= 1
        if self.progress is not None and self._left:
            done = sum(1 for n in self._left.values() if n == 0)
            self.progress.update(self._ibar, completed=done)

    def _print(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            self.echo(text)

    def task_started(self, task, attempt) -> None:
        pass

    def task_finished(self, task, result, attempt, seconds, final) -> None:
        if not self.quiet:
            self._print(task_line(task, result, attempt, seconds, final))

    def task_settled(self, task, outcome) -> None:
        label = self._interval_of.get(task.id)
        if label is not None and outcome.status in ("success", "skipped"):
            self._left[label] -= 1
            if self._left[label] == 0 and self.progress is not None:
                self.progress.advance(self._ibar)
        if self.progress is not None and outcome.status != "skipped":
            self.progress.advance(self._bar)
        if outcome.status in ("upstream_failed",) and not self.quiet:
            self._print(f"SKIP  {task.model:<32} {task.label:<16} {outcome.reason}")
        elif outcome.status == "failed" and outcome.attempts == 0 and not self.quiet:
            self._print(f"FAIL  {task.model:<32} {task.label:<16}\n      {outcome.reason}")

    def stopping(self, running: int) -> None:
        self._print(
            f"stopping: no new tasks; waiting for {running} running task(s) to "
            "finish (Ctrl-C again to interrupt them)"
        )

    def done(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


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
                lines.append(f"      {_row(row)}")
    lines += _missing_text(report.missing)
    lines += _promises_text(report.promises)
    return "\n".join(lines)


def _runs_text(runs) -> list[str]:
    if not runs:
        return ["no runs yet"]
    rows = []
    for r in runs:
        counts = ", ".join(f"{v} {k}" for k, v in sorted((r.counts or {}).items()))
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
    return ["recent runs:", _indent(table(rows, headers))]


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
    for model, gaps in sorted(missing.items()):
        if isinstance(gaps, str):
            lines.append(f"  {model}: {gaps}")
        else:
            shown = ", ".join(f"[{s}, {e})" for s, e in gaps[:3])
            more = f" and {len(gaps) - 3} more ranges" if len(gaps) > 3 else ""
            lines.append(f"  {model}: {shown}{more}")
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


def _indent(text: str) -> str:
    return "\n".join("  " + ln for ln in text.splitlines())


def dry_run_text(report: dict, concurrency: int) -> str:
    span = report["span"]
    lines = [
        f"dry run: backfill [{span['start']}, {span['end']}) would run "
        f"{report['total']['to_run']} of {report['total']['tasks']} tasks "
        f"({report['total']['skipped']} already published); nothing was written"
    ]
    rows = []
    for m in report["models"]:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(m["reasons"].items()))
        rows.append(
            [
                m["model"],
                m["kind"],
                str(m["intervals"]),
                str(m["to_run"]),
                str(m["skipped"]),
                reasons or "-",
            ]
        )
    lines.append(table(rows, ["model", "kind", "tasks", "to run", "skipped", "why"]))
    blocked = report.get("blocked") or []
    if blocked:
        first = blocked[0]
        lines.append(
            f"blocked: {len(blocked)} task(s) read upstream intervals that are not "
            f"usable, e.g. {first['model']} {first['interval']} reads "
            f"{first['upstream']} {first['upstream_interval']}, which {first['why']}; "
            f"the backfill would refuse to start: add the upstream with "
            f"--select '+{first['model']}'"
        )
    secs = report["estimated_task_seconds"]
    if report["estimate_known_for"]:
        lines.append(
            f"estimated: {duration(secs)} of task time, about "
            f"{duration(secs / max(1, concurrency))} at concurrency {concurrency} "
            "(from past attempts)"
        )
    else:
        lines.append("estimated: unknown (no past attempts to learn from)")
    return "\n".join(lines)


class Counter:
    """`done/total` progress for a step that may take a while: a line every 10%."""

    def __init__(self, echo, what: str):
        self.echo, self.what, self.last = echo, what, -1

    def __call__(self, done: int, total: int) -> None:
        step = done * 10 // max(1, total)
        if total > 20 and (step != self.last or done == total):
            self.last = step
            self.echo(f"{self.what}: {done}/{total}")


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
