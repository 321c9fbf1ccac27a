"""decide.py and ledger.py as pure functions: staleness, reasons, what is blocked."""

from __future__ import annotations

from datetime import datetime

from pipe.decide import decide
from pipe.intervals import Interval
from pipe.ledger import Entry, Read, late_rows, stale
from pipe.plan import Task

DAY1 = ("a", "2026-06-01T00:00:00", "2026-06-02T00:00:00")
B1 = ("b", *DAY1[1:])
C1 = ("c", *DAY1[1:])
NOW = datetime(2026, 7, 1)


def task(tid, model, upstream=(), fp="fp", kind="incremental", lookback=False, day=1):
    iv = Interval(datetime(2026, 6, day), datetime(2026, 6, day + 1))
    return Task(tid, model, kind, iv, tuple(upstream), fp, model, lookback=lookback)


def test_stale_follows_republishes_transitively_in_one_pass():
    entries = {
        DAY1: Entry("fp", 10.0),  # republished at 10 after b read its version 1
        B1: Entry("fp", 5.0, reads=(Read(DAY1, 1.0),)),
        C1: Entry("fp", 6.0, reads=(Read(B1, 5.0),)),  # read b's current version
    }
    found = stale(entries)
    assert found[B1].upstream == DAY1 and found[B1].since == 10.0
    assert found[C1].upstream == B1 and found[C1].since is None  # through a stale upstream
    assert DAY1 not in found
    # an upstream that is gone (a dropped table) makes nothing stale by itself
    assert stale({B1: Entry("fp", 5.0, reads=(Read(DAY1, 1.0),))}) == {}


def test_late_rows_count_only_republished_incremental_intervals_that_changed():
    entries = {
        DAY1: Entry("fp", 1.0, rows=5, replaced=3),
        B1: Entry("fp", 1.0, rows=2),
        C1: Entry("fp", 1.0, rows=4, replaced=4),
    }
    assert late_rows(entries, {"a", "b", "c"}) == {"a": (1, 2)}
    assert late_rows(entries, {"b"}) == {}


def test_reasons_in_order_of_precedence():
    a, b = task("ta", "a"), task("tb", "b", ["ta"])
    ctx = {t.id: t for t in (a, b)}
    fresh = decide([a, b], ctx, {}, {}, execution_time=NOW)
    assert fresh.run == {"ta": "never published", "tb": "never published"}
    done = {DAY1: Entry("fp", 1.0), B1: Entry("fp", 2.0, reads=(Read(DAY1, 1.0),))}
    assert decide([a, b], ctx, done, stale(done), execution_time=NOW).skip == {"ta", "tb"}
    changed = decide([task("ta", "a", fp="new"), b], ctx, done, stale(done), execution_time=NOW)
    assert changed.run == {
        "ta": "model fingerprint changed",
        "tb": "upstream rebuilt: a [2026-06-01T00:00:00, 2026-06-02T00:00:00)",
    }
    partial = {**done, DAY1: Entry("fp", 1.0, partial=True)}
    assert decide([a, b], ctx, partial, {}, execution_time=NOW).run["ta"].startswith("partial")
    assert decide([a, b], ctx, done, {}, execution_time=NOW, force=True).run == {
        "ta": "forced",
        "tb": "forced",
    }


def test_blocked_when_an_unselected_upstream_is_missing_stale_or_outdated():
    a, b = task("ta", "a"), task("tb", "b", ["ta"])
    ctx = {t.id: t for t in (a, b)}
    [blocked] = decide([b], ctx, {}, {}, execution_time=NOW).blocked
    assert (blocked.task.model, blocked.upstream.model, blocked.why) == (
        "b",
        "a",
        "is not published",
    )
    old = {DAY1: Entry("old", 1.0)}
    assert decide([b], ctx, old, {}, execution_time=NOW).blocked[0].why == (
        "was published by an older version of its model"
    )
    ok = {DAY1: Entry("fp", 1.0)}
    assert decide([b], ctx, ok, {}, execution_time=NOW).blocked == ()


def test_lookback_intervals_run_only_when_the_model_runs_and_partial_is_by_the_clock():
    back = task("t0", "a", lookback=True, day=1)
    today = task("t1", "a", ["t0"], day=2)
    ctx = {t.id: t for t in (back, today)}
    day2 = ("a", "2026-06-02T00:00:00", "2026-06-03T00:00:00")
    published = {DAY1: Entry("fp", 1.0), day2: Entry("fp", 2.0)}
    assert decide([back, today], ctx, published, {}, execution_time=NOW).run == {}
    d = decide(
        [back, today], ctx, {DAY1: Entry("fp", 1.0)}, {}, execution_time=datetime(2026, 6, 2, 12)
    )
    assert d.run == {"t0": "lookback: rebuilt for late data", "t1": "never published"}
    assert d.partial == {"t1"}
