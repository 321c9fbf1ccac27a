"""Every line a human reads: error formatting, tables, task lines, summaries, progress.

Functions here return strings (or drive a rich progress bar on a terminal); only cli.py
decides where they go. Output meant for snapshots is plain text with no colour or timing
unless asked for.
"""

from __future__ import annotations

import sys

from .errors import ErrorGroup, UserError


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
