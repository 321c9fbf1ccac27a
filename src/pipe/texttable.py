"""Plain text pieces every report is made of: an aligned table, a duration, a row of
values, an indented block. Deterministic (no colour, no width of the terminal), so a
report is snapshot-friendly.
"""

from __future__ import annotations


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain aligned text table (deterministic: snapshot-friendly)."""
    cells = [headers] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for r in cells:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(out)


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


def row_text(row: dict) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in row.items()) + "}"


def indent(text: str) -> str:
    return "\n".join("  " + ln for ln in text.splitlines())
