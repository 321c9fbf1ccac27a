"""Every line a human reads: error formatting, task lines, run summaries, progress, the
dry-run table; the reports' text is reporttext.py's and the plain pieces (tables,
durations) texttable.py's, both re-exported here.

Functions here return strings (or drive a rich progress bar on a terminal); only cli.py
decides where they go. Output meant for snapshots is plain text with no colour or timing
unless asked for.
"""

from __future__ import annotations

import sys

from .errors import ErrorGroup, UserError
from .reporttext import age as age  # re-exported: the commands call console.*
from .reporttext import freshness_text as freshness_text
from .reporttext import lineage_text as lineage_text
from .reporttext import run_record_text as run_record_text
from .reporttext import status_text as status_text
from .texttable import duration as duration
from .texttable import row_text
from .texttable import table as table


def format_user_error(exc: UserError) -> str:
    if isinstance(exc, ErrorGroup):
        lines = [f"error: {e}" for e in exc.errors]
        lines.append(f"{len(exc.errors)} errors")
        return "\n".join(lines)
    return f"error: {exc}"


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


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
                line += f"\n      {c.name}: " + "; ".join(row_text(r) for r in c.sample)
    for w in result.warnings:
        line += f"\n      warning: {w}"
    return line.rstrip()


def run_summary(result) -> str:
    c = dict(result.counts)
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
        # an attempt undone because its upstream failed (a group's redo): the SKIP line
        # of its outcome says it
        if not self.quiet and result.status != "upstream_failed":
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
