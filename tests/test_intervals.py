"""Intervals (SPEC §3): labels, explicit ranges, expansion per grain, month boundaries."""

from __future__ import annotations

import itertools
from datetime import date, datetime

import pytest

from pipe.errors import IntervalError
from pipe.intervals import (
    Interval,
    as_datetime,
    expand,
    floor,
    next_start,
    parse_duration,
    parse_label,
    parse_point,
    parse_range,
    previous,
)
from pipe.intervalsql import date_literal, timestamp_literal


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def iv(a: str, b: str) -> Interval:
    return Interval(dt(a), dt(b))


@pytest.mark.parametrize(
    ("label", "start", "end"),
    [
        ("2026-06-15", "2026-06-15T00:00", "2026-06-16T00:00"),
        ("2026-06-30", "2026-06-30T00:00", "2026-07-01T00:00"),
        ("2026-12-31", "2026-12-31T00:00", "2027-01-01T00:00"),
        ("2028-02-29", "2028-02-29T00:00", "2028-03-01T00:00"),
        ("2026-06-15T10", "2026-06-15T10:00", "2026-06-15T11:00"),
        ("2026-06-15T23", "2026-06-15T23:00", "2026-06-16T00:00"),
        ("2026-06-15T00", "2026-06-15T00:00", "2026-06-15T01:00"),
        ("2026-06", "2026-06-01T00:00", "2026-07-01T00:00"),
        ("2026-12", "2026-12-01T00:00", "2027-01-01T00:00"),
        ("2026-06-15T00:00/2026-06-17T00:00", "2026-06-15T00:00", "2026-06-17T00:00"),
        ("2026-06-15T06:30/2026-06-15T07:45", "2026-06-15T06:30", "2026-06-15T07:45"),
        ("2026-06-15/2026-06-17", "2026-06-15T00:00", "2026-06-17T00:00"),
        ("2026-06-15T00:00Z/2026-06-16T00:00Z", "2026-06-15T00:00", "2026-06-16T00:00"),
        ("  2026-06-15 ", "2026-06-15T00:00", "2026-06-16T00:00"),
    ],
)
def test_parse_label(label, start, end):
    assert parse_label(label) == iv(start, end)


@pytest.mark.parametrize(
    ("interval", "label"),
    [
        (iv("2026-06-15T00:00", "2026-06-16T00:00"), "2026-06-15"),
        (iv("2026-06-15T10:00", "2026-06-15T11:00"), "2026-06-15T10"),
        (iv("2026-02-01T00:00", "2026-03-01T00:00"), "2026-02"),
        (iv("2026-06-15T00:00", "2026-06-17T00:00"), "2026-06-15T00:00/2026-06-17T00:00"),
        (iv("2026-06-15T06:30", "2026-06-15T07:30"), "2026-06-15T06:30/2026-06-15T07:30"),
        (iv("2026-06-15T10:00", "2026-06-16T10:00"), "2026-06-15T10:00/2026-06-16T10:00"),
    ],
)
def test_label_is_the_shortest_name_and_round_trips(interval, label):
    assert interval.label == label
    assert parse_label(label) == interval
    assert "/" not in interval.file_stem and ":" not in interval.file_stem


def test_file_stem():
    assert parse_label("2026-06-15").file_stem == "2026-06-15"
    assert (
        parse_label("2026-06-15T00:00/2026-06-17T00:00").file_stem
        == "2026-06-15T0000--2026-06-17T0000"
    )


@pytest.mark.parametrize(
    "label",
    [
        "",
        "yesterday",
        "today",
        "2026",
        "2026-13",
        "2026-13-01",
        "2026-02-30",
        "2026-06-31",
        "2026-6-1",
        "26-06-01",
        "2026-06-15T24",
        "2026-06-15T7",
        "2026-06-15T10:00",
        "2026/06/15",
        "2026-06-15T00:00/",
        "/2026-06-15T00:00",
        "2026-06-17/2026-06-15",
        "2026-06-15/2026-06-15",
        "2026-06-15T10:61/2026-06-15T11:00",
        "2026-06-15 10",
    ],
)
def test_invalid_labels(label):
    with pytest.raises(IntervalError) as info:
        parse_label(label)
    assert "interval" in str(info.value)


def test_invalid_label_message_suggests_the_forms():
    with pytest.raises(IntervalError) as info:
        parse_label("last week")
    assert "2026-06-15T10" in str(info.value) and "2026-06" in str(info.value)


def test_parse_range_and_point():
    assert parse_range("2026-06-01", "2026-06-03") == iv("2026-06-01T00:00", "2026-06-03T00:00")
    assert parse_range("2026-06-01T10", "2026-06-01T12") == iv(
        "2026-06-01T10:00", "2026-06-01T12:00"
    )
    assert parse_point("2026-06") == dt("2026-06-01T00:00")
    assert parse_point("2026-06-01 10:30") == dt("2026-06-01T10:30")
    with pytest.raises(IntervalError):
        parse_range("2026-06-03", "2026-06-01")
    with pytest.raises(IntervalError):
        parse_range("2026-06-03", "2026-06-03")
    with pytest.raises(IntervalError):
        parse_point("soon")


def starts(intervals) -> list[str]:
    return [i.start.isoformat(timespec="minutes") for i in intervals]


def test_expand_a_day_into_hours():
    hours = list(expand(parse_label("2026-06-15"), "hourly"))
    assert len(hours) == 24
    assert hours[0] == parse_label("2026-06-15T00")
    assert hours[-1] == parse_label("2026-06-15T23")
    assert all(a.end == b.start for a, b in itertools.pairwise(hours))


def test_expand_same_grain_is_itself():
    day = parse_label("2026-06-15")
    assert list(expand(day, "daily")) == [day]
    month = parse_label("2026-06")
    assert list(expand(month, "monthly")) == [month]


def test_expand_finer_run_gives_no_coarser_interval():
    assert list(expand(parse_label("2026-06-15T10"), "daily")) == []
    assert list(expand(parse_label("2026-06-15"), "monthly")) == []


def test_expand_keeps_only_whole_intervals():
    run = iv("2026-06-15T10:30", "2026-06-15T14:15")
    assert starts(expand(run, "hourly")) == [
        "2026-06-15T11:00",
        "2026-06-15T12:00",
        "2026-06-15T13:00",
    ]
    assert list(expand(iv("2026-06-15T06:00", "2026-06-17T06:00"), "daily")) == [
        parse_label("2026-06-16")
    ]


def test_expand_month_boundaries():
    assert len(list(expand(parse_label("2026-02"), "daily"))) == 28
    assert len(list(expand(parse_label("2028-02"), "daily"))) == 29
    assert len(list(expand(parse_label("2026-06"), "daily"))) == 30
    assert len(list(expand(parse_label("2026-07"), "hourly"))) == 31 * 24
    days = list(expand(iv("2026-06-29T00:00", "2026-07-02T00:00"), "daily"))
    assert starts(days) == ["2026-06-29T00:00", "2026-06-30T00:00", "2026-07-01T00:00"]
    months = list(expand(iv("2026-11-01T00:00", "2027-03-01T00:00"), "monthly"))
    assert [m.label for m in months] == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert list(expand(iv("2026-11-15T00:00", "2027-01-15T00:00"), "monthly")) == [
        parse_label("2026-12")
    ]


@pytest.mark.parametrize(
    ("label", "grain", "before"),
    [
        ("2026-06-15", "daily", "2026-06-14"),
        ("2026-06-01", "daily", "2026-05-31"),
        ("2026-01-01", "daily", "2025-12-31"),
        ("2028-03-01", "daily", "2028-02-29"),
        ("2026-06-15T00", "hourly", "2026-06-14T23"),
        ("2026-06-15T10", "hourly", "2026-06-15T09"),
        ("2026-06", "monthly", "2026-05"),
        ("2026-01", "monthly", "2025-12"),
        ("2026-03", "monthly", "2026-02"),
    ],
)
def test_previous(label, grain, before):
    assert previous(parse_label(label), grain) == parse_label(before)


def test_floor_and_next_start():
    t = dt("2026-12-31T17:45")
    assert floor(t, "hourly") == dt("2026-12-31T17:00")
    assert floor(t, "daily") == dt("2026-12-31T00:00")
    assert floor(t, "monthly") == dt("2026-12-01T00:00")
    assert next_start(dt("2026-12-01T00:00"), "monthly") == dt("2027-01-01T00:00")
    assert next_start(dt("2026-01-31T00:00"), "daily") == dt("2026-02-01T00:00")
    assert next_start(dt("2026-06-15T23:00"), "hourly") == dt("2026-06-16T00:00")


def test_interval_relations():
    day = parse_label("2026-06-15")
    assert day.contains(parse_label("2026-06-15T23"))
    assert not day.contains(parse_label("2026-06-16T00"))
    assert day.overlaps(iv("2026-06-14T12:00", "2026-06-15T01:00"))
    assert not day.overlaps(parse_label("2026-06-16"))  # half-open: touching is not overlap
    assert not day.overlaps(parse_label("2026-06-14"))


def test_sql_literals_are_utc_without_zone():
    day = parse_label("2026-06-15")
    assert timestamp_literal(day.start) == "TIMESTAMP '2026-06-15 00:00:00'"
    assert timestamp_literal(day.end) == "TIMESTAMP '2026-06-16 00:00:00'"
    assert timestamp_literal(dt("2026-06-15T10:30:05")) == "TIMESTAMP '2026-06-15 10:30:05'"
    assert date_literal(dt("2026-06-15T10:30")) == "DATE '2026-06-15'"
    assert day.to_json() == {"start": "2026-06-15T00:00:00", "end": "2026-06-16T00:00:00"}


def test_as_datetime_from_yaml_values():
    assert as_datetime(date(2026, 6, 1)) == dt("2026-06-01T00:00")
    assert as_datetime(dt("2026-06-01T05:00")) == dt("2026-06-01T05:00")
    assert as_datetime("2026-06-01") == dt("2026-06-01T00:00")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("250ms", 0.25),
        (45, 45),
        ("1.5h", 5400),
        ("90", 90),
    ],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "10 minutes", "-5s", True, "h", -3])
def test_parse_duration_rejects(value):
    # a user's mistake is a UserError, never a bare ValueError (that would read as a bug)
    with pytest.raises(IntervalError) as info:
        parse_duration(value, "timeout")
    assert not isinstance(info.value, ValueError)
    assert info.value.message.startswith("'timeout' must be a duration like 30s")
