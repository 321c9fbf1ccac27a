"""Data intervals: half-open [start, end) in UTC, grains, run labels, expansion.

A label is data time, never wall-clock time: `2026-06-15` is the day
[2026-06-15 00:00, 2026-06-16 00:00), `2026-06-15T10` the hour [10:00, 11:00),
`2026-06` the month, and `2026-06-15T00:00/2026-06-17T00:00` an explicit range.
All datetimes here are naive and mean UTC. Nothing in this module reads the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .errors import IntervalError

GRAINS = ("hourly", "daily", "monthly")

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_HOUR = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})$")
_MINUTE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?Z?$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True, order=True, slots=True)
class Interval:
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """The shortest label that names exactly this interval."""
        s, e = self.start, self.end
        if s.minute == 0 and s.second == 0:
            if e - s == timedelta(hours=1):
                return s.strftime("%Y-%m-%dT%H")
            if s.hour == 0 and e - s == timedelta(days=1):
                return s.strftime("%Y-%m-%d")
            if s.hour == 0 and s.day == 1 and e == next_start(s, "monthly"):
                return s.strftime("%Y-%m")
        return f"{_fmt(s)}/{_fmt(e)}"

    @property
    def file_stem(self) -> str:
        """The label made safe for a file name (no ':' or '/')."""
        return self.label.replace(":", "").replace("/", "--")

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def to_json(self) -> dict:
        return {"start": iso(self.start), "end": iso(self.end)}


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M")


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def bound_arg(iso_time: str) -> str:
    """An ISO bound as the shortest `--start`/`--end` argument that means it."""
    return iso_time[:10] if iso_time.endswith("T00:00:00") else iso_time[:16]


def from_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")


def floor(t: datetime, grain: str) -> datetime:
    if grain == "hourly":
        return t.replace(minute=0, second=0, microsecond=0)
    if grain == "daily":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_start(t: datetime, grain: str) -> datetime:
    """The start of the grain interval after the one starting at t (t must be aligned)."""
    if grain == "hourly":
        return t + timedelta(hours=1)
    if grain == "daily":
        return t + timedelta(days=1)
    return t.replace(year=t.year + (t.month == 12), month=t.month % 12 + 1)


def previous(interval: Interval, grain: str) -> Interval:
    """The grain interval just before `interval` (which is one grain interval)."""
    if grain == "hourly":
        start = interval.start - timedelta(hours=1)
    elif grain == "daily":
        start = interval.start - timedelta(days=1)
    else:
        s = interval.start
        start = s.replace(year=s.year - (s.month == 1), month=(s.month - 2) % 12 + 1)
    return Interval(start, interval.start)


def expand(interval: Interval, grain: str):
    """Yield the grain intervals that lie wholly inside `interval`, oldest first."""
    t = floor(interval.start, grain)
    if t < interval.start:
        t = next_start(t, grain)
    while True:
        n = next_start(t, grain)
        if n > interval.end:
            return
        yield Interval(t, n)
        t = n


def parse_point(text: str, what: str = "date") -> datetime:
    """Parse a point in time: YYYY-MM-DD, YYYY-MM-DDTHH, YYYY-MM-DDTHH:MM, or YYYY-MM."""
    text = str(text).strip()
    try:
        if m := _DAY.match(text):
            return datetime(int(m[1]), int(m[2]), int(m[3]))
        if m := _HOUR.match(text):
            return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]))
        if m := _MINUTE.match(text):
            return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0))
        if m := _MONTH.match(text):
            return datetime(int(m[1]), int(m[2]), 1)
    except ValueError as exc:
        raise IntervalError(f"invalid {what} '{text}': {exc}") from None
    raise IntervalError(
        f"invalid {what} '{text}'",
        hint="use YYYY-MM-DD, YYYY-MM-DDTHH, YYYY-MM-DDTHH:MM or YYYY-MM, in UTC",
    )


def parse_label(label: str) -> Interval:
    """Parse a run label into its interval (see the module docstring)."""
    label = str(label).strip()
    if "/" in label:
        a, _, b = label.partition("/")
        iv = Interval(parse_point(a, "interval start"), parse_point(b, "interval end"))
        if iv.end <= iv.start:
            raise IntervalError(f"invalid interval '{label}': the end must come after the start")
        return iv
    if _DAY.match(label):
        s = parse_point(label, "interval label")
        return Interval(s, next_start(s, "daily"))
    if _HOUR.match(label):
        s = parse_point(label, "interval label")
        return Interval(s, next_start(s, "hourly"))
    if _MONTH.match(label):
        s = parse_point(label, "interval label")
        return Interval(s, next_start(s, "monthly"))
    raise IntervalError(
        f"invalid interval label '{label}'",
        hint="use 2026-06-15 (a day), 2026-06-15T10 (an hour), 2026-06 (a month) "
        "or 2026-06-15T00:00/2026-06-17T00:00",
    )


def parse_range(start: str, end: str) -> Interval:
    iv = Interval(parse_point(start, "--start"), parse_point(end, "--end"))
    if iv.end <= iv.start:
        raise IntervalError(f"--end {end} must come after --start {start}")
    return iv


def parse_duration(value, what: str = "duration") -> float:
    """'30s', '10m', '2h', '1d', '250ms' or a number of seconds -> seconds; anything else
    is an IntervalError (a user's mistake, never a bare ValueError)."""
    m = None if isinstance(value, bool) else _DURATION.match(str(value))
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if not m:
        raise IntervalError(f"'{what}' must be a duration like 30s, 10m or 2h, got '{value}'")
    return float(m[1]) * _UNIT_SECONDS[m[2]]


def as_datetime(value) -> datetime:
    """A YAML date/datetime/string -> naive UTC datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return parse_point(str(value), "start")
