"""What a user sees of a run at `--concurrency 1`, pinned down task by task, on DuckDB and
Postgres: a failing task (SQL error, failed error check, a ledger row the warehouse
refuses, a timeout) fails alone with its own error, whatever ran before and after it on
the same worker is published and recorded exactly once, nothing is recorded that is not
published nor published that is not recorded, and `kill -9` or Ctrl-C in the middle leave
a warehouse the resume finishes.

The one worker of a `--concurrency 1` run may keep its warehouse transaction open across
several tasks and commit them together; none of that may show: these tests hold whether it
does or not.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import date, datetime

from conftest import run_cli
from pipe.ledger import decode_row, fold
from runner_helpers import TEMP_MARK, attempts, outcomes, run, state, statuses_by_model
from test_contract import (  # noqa: F401 (engine, spawn, pytest_generate_tests: fixtures)
    INCREMENTAL,
    KILL_YML,
    SLOW,
    TASK_LINE,
    assert_nothing_half_published,
    engine,
    generated_project,
    load_events,
    pytest_generate_tests,
    spawn,
)
from test_gaps import EVENTS, pipe
from test_ledger_format import _ledger_refusing

C1 = ("--concurrency", "1")
DAY = "2026-06-01T00:00:00"

# Twelve full models: the chain m.a -> m.b -> m.c -> m.d, a second chain n.p1 -> ... ->
# n.p5 -> q.after and two loners o.x1, o.x2. In plan order m.c is the 7th task: six
# publish before it and four after it on the one worker (m.d, below it, does not run).
# raw.knob's `version` goes into every table; its `bad` picks how m.c goes wrong:
# 0 it does not, 1 an SQL error at run time, 2 a failing error check, 3 a failing warn
# check.
CHAIN = {
    "sources.yml": "sources:\n  - name: raw.knob\n",
    "models/m/a.sql": "select version as v from raw.knob",
    "models/m/b.sql": "select v + 1 as v from m.a",
    "models/m/c.sql": (
        "select cast(case when k.bad = 1 then 'boom in c' else cast(b.v + 1 as varchar) end "
        "as integer) as v, k.bad as bad\nfrom m.b as b cross join raw.knob as k"
    ),
    "models/m/c.yml": (
        "checks:\n"
        "  - expression: bad <> 2\n    name: c_is_not_two\n"
        "  - expression: bad <> 3\n    name: c_is_not_three\n    severity: warn\n"
    ),
    "models/m/d.sql": "select v * 10 as v from m.c",
    "models/n/p1.sql": "select version * 100 as v from raw.knob",
    **{f"models/n/p{i}.sql": f"select v + 1 as v from n.p{i - 1}" for i in range(2, 6)},
    "models/o/x1.sql": "select version * 1000 + 1 as v from raw.knob",
    "models/o/x2.sql": "select version * 1000 + 2 as v from raw.knob",
    "models/q/after.sql": "select v * 2 as v from n.p5",
}
# the order of the plan, which the one worker follows
PLAN_ORDER = ["m.a", "n.p1", "o.x1", "o.x2", "m.b", "n.p2", "m.c", "n.p3", "m.d", "n.p4"]
PLAN_ORDER += ["n.p5", "q.after"]
OTHERS = ["m.a", "m.b", "n.p1", "n.p2", "n.p3", "n.p4", "n.p5", "o.x1", "o.x2", "q.after"]
ALL = sorted([*OTHERS, "m.c", "m.d"])


def expected_v(model: str, version: int) -> int:
    """The one value of column v a model of CHAIN holds after a run at `version`."""
    n5 = 100 * version + 4
    return {
        "m.a": version,
        "m.b": version + 1,
        "m.c": version + 2,
        "m.d": 10 * (version + 2),
        **{f"n.p{i}": 100 * version + i - 1 for i in range(1, 6)},
        "o.x1": 1000 * version + 1,
        "o.x2": 1000 * version + 2,
        "q.after": 2 * n5,
    }[model]


def set_knob(wh, version: int, bad: int) -> None:
    wh.execute(
        "create schema if not exists raw; drop table if exists raw.knob; "
        f"create table raw.knob as select {version} as version, {bad} as bad"
    )


def ledger_rows(wh) -> list[tuple]:
    """Every row of the warehouse's ledger, superseded ones included: [(key, entry)]."""
    return [decode_row(text) for (text,) in wh.query("select entry from _pipe.ledger")]


def ledger_count(wh) -> Counter:
    """How many ledger rows each model has (one per publish of an interval)."""
    return Counter(key[0] for key, _ in ledger_rows(wh))


def assert_published(wh, models, version: int) -> None:
    got = {m: wh.query(f"select v from {m}") for m in models}
    assert got == {m: [(expected_v(m, version),)] for m in models}


def assert_not_built(wh, *models: str) -> None:
    tables = wh.relations()
    assert not [m for m in models if m in tables], tables


def success_attempts_only(root, models) -> None:
    """Each model ran once in the last run, and that attempt succeeded (no attempt of an
    innocent task shows as failed, none is counted twice)."""
    got = {m: [a["status"] for a in attempts(root, model=m)] for m in models}
    assert got == {m: ["success"] for m in models}


def failed_line(root, model: str, status: str = "failed") -> str:
    """The line of `pipe status` that says `model` failed (or `status`) in the last run,
    and why."""
    code, out = run_cli(["status", "--project", root])
    assert code == 0, out
    [line] = [x for x in out.splitlines() if x.split()[:2] == [status, model]]
    return line


def plan_order(root) -> list[str]:
    plan = json.loads((root / "plans" / "dev" / "2026-06-01.json").read_text())
    return [t["model"] for t in plan["tasks"]]


# ---------------------------------------------------------------- one task fails


def test_an_sql_error_fails_its_task_alone_and_the_rerun_runs_only_it(engine):  # noqa: F811
    root = engine.project(CHAIN)
    wh = engine.warehouse(root)
    set_knob(wh, 1, bad=1)
    code, out = run(root, *C1)
    assert code == 1, out
    assert plan_order(root) == PLAN_ORDER  # m.c in the middle
    assert "10 succeeded, 1 failed, 1 upstream failed" in out, out
    assert "failed: m.c 2026-06-01: " in out and "boom in c" in out, out
    assert "upstream failed (1 tasks): m.d" in out, out

    got = outcomes(root)
    assert got[("m.c", DAY)][0] == "failed" and "boom in c" in got[("m.c", DAY)][1]
    assert got[("m.d", DAY)] == ("upstream_failed", "upstream m.c failed")
    assert {m: got[(m, DAY)][0] for m in OTHERS} == dict.fromkeys(OTHERS, "success")
    success_attempts_only(root, OTHERS)
    assert [a["status"] for a in attempts(root, model="m.c")] == ["failed"]
    assert attempts(root, model="m.d") == []

    assert_published(wh, OTHERS, 1)
    assert_not_built(wh, "m.c", "m.d")
    assert ledger_count(wh) == Counter(OTHERS)  # one row each, none for m.c or m.d
    assert wh.temp_tables() == []
    assert "boom in c" in failed_line(root, "m.c").split(f"m.c {DAY}: ")[1]
    assert failed_line(root, "m.d", "upstream_failed").endswith(": upstream m.c failed")

    # the fix: only m.c and m.d run, the rest is skipped as published
    set_knob(wh, 1, bad=0)
    code, out = run(root, *C1)
    assert code == 0, out
    assert "10 skipped" in out and "2 succeeded" in out, out
    success_attempts_only(root, ["m.c", "m.d"])
    assert {a["model"] for a in attempts(root)} == {"m.c", "m.d"}
    assert_published(wh, ALL, 1)
    assert ledger_count(wh) == Counter(ALL)
    assert wh.temp_tables() == []


def test_a_failing_error_check_keeps_the_old_table_and_the_others_publish(engine):  # noqa: F811
    root = engine.project(CHAIN)
    wh = engine.warehouse(root)
    set_knob(wh, 1, bad=0)
    code, out = run(root, *C1)
    assert code == 0, out
    old = {m: wh.contents(m) for m in ("m.c", "m.d")}
    before = fold(ledger_rows(wh))

    set_knob(wh, 2, bad=2)
    code, out = run(root, "--force", *C1)
    assert code == 1, out
    assert "failed: m.c 2026-06-01: check failed: c_is_not_two (1 failing rows)" in out, out
    assert "upstream failed (1 tasks): m.d" in out, out
    assert statuses_by_model(root) == {
        **{m: {"success"} for m in OTHERS},
        "m.c": {"failed"},
        "m.d": {"upstream_failed"},
    }
    success_attempts_only(root, OTHERS)
    assert {m: wh.contents(m) for m in ("m.c", "m.d")} == old
    assert wh.query("select v, bad from m.c") == [(3, 0)]
    assert_published(wh, OTHERS, 2)
    # the others have a second ledger row, newer than the first; m.c and m.d have not
    assert ledger_count(wh) == Counter(OTHERS * 2 + ["m.c", "m.d"])
    after = fold(ledger_rows(wh))
    assert {k[0] for k in after if after[k].published_at > before[k].published_at} == set(OTHERS)
    assert {k: after[k] for k in after if k[0] in ("m.c", "m.d")} == {
        k: before[k] for k in before if k[0] in ("m.c", "m.d")
    }
    assert wh.temp_tables() == []
    assert state(
        root,
        "select model, check_name, status, failures from check_results "
        "where run_id = (select max(run_id) from runs) order by check_name",
    ) == [("m.c", "c_is_not_three", "pass", 0), ("m.c", "c_is_not_two", "error", 1)]
    assert failed_line(root, "m.c").endswith(": check failed: c_is_not_two (1 failing rows)")


def test_a_failing_warn_check_in_the_middle_publishes_everything(engine):  # noqa: F811
    root = engine.project(CHAIN)
    wh = engine.warehouse(root)
    set_knob(wh, 1, bad=3)
    code, out = run(root, *C1)
    assert code == 0, out
    assert "12 succeeded" in out, out
    assert "warning: check c_is_not_three: 1 failing rows" in out, out
    success_attempts_only(root, ALL)
    assert_published(wh, ALL, 1)
    assert ledger_count(wh) == Counter(ALL)
    assert wh.temp_tables() == []
    assert state(
        root, "select model, check_name, status, failures from check_results order by 2"
    ) == [("m.c", "c_is_not_three", "warn", 1), ("m.c", "c_is_not_two", "pass", 0)]


def test_a_ledger_row_the_warehouse_refuses_fails_only_its_task(engine):  # noqa: F811
    root = engine.project(CHAIN)
    wh = engine.warehouse(root)
    set_knob(wh, 1, bad=0)
    code, out = run(root, *C1)
    assert code == 0, out
    old = {m: wh.contents(m) for m in ("m.c", "m.d")}
    _ledger_refusing(wh, "m.c")

    set_knob(wh, 2, bad=0)
    code, out = run(root, "--force", *C1)
    assert code == 1, out
    assert "failed: m.c 2026-06-01: " in out and "upstream failed (1 tasks): m.d" in out, out
    assert statuses_by_model(root) == {
        **{m: {"success"} for m in OTHERS},
        "m.c": {"failed"},
        "m.d": {"upstream_failed"},
    }
    success_attempts_only(root, OTHERS)
    assert {m: wh.contents(m) for m in ("m.c", "m.d")} == old
    assert_published(wh, OTHERS, 2)
    assert ledger_count(wh) == Counter(OTHERS * 2 + ["m.c", "m.d"])
    assert not [r for r in wh.relations() if "tmp" in r]

    _ledger_refusing(wh, None)
    code, out = run(root, *C1)
    assert code == 0, out
    assert "10 skipped" in out and "2 succeeded" in out, out
    assert_published(wh, ALL, 2)


def test_a_timeout_fails_its_task_alone(engine):  # noqa: F811
    files = {
        **CHAIN,
        "models/m/c.sql": SLOW,
        "models/m/c.yml": "timeout: 1s\n",
        "models/m/d.sql": "select * from m.c",
    }
    root = engine.project(files)
    wh = engine.warehouse(root)
    set_knob(wh, 1, bad=0)
    code, out = run(root, *C1)
    assert code == 1, out
    assert "failed: m.c 2026-06-01: timeout after 1." in out, out
    assert "upstream failed (1 tasks): m.d" in out, out
    [a] = attempts(root, model="m.c")
    assert a["status"] == "failed" and a["error"].startswith("timeout after 1."), a
    assert statuses_by_model(root) == {
        **{m: {"success"} for m in OTHERS},
        "m.c": {"failed"},
        "m.d": {"upstream_failed"},
    }
    success_attempts_only(root, OTHERS)
    assert_published(wh, OTHERS, 1)
    assert_not_built(wh, "m.c", "m.d")
    assert ledger_count(wh) == Counter(OTHERS)
    assert wh.temp_tables() == []


# ---------------------------------------------------------------- a backfill

CHECKED_EVENTS = {
    **EVENTS,
    "models/staging/events.yml": (
        "kind: incremental\ntime_column: ts\nchecks:\n  - expression: amount < 100\n"
    ),
}
DAYS = ["2026-06-01", "2026-06-02", "2026-06-03", "2026-06-04", "2026-06-05"]


def per_day(wh, table: str, column: str) -> dict[str, int]:
    return dict(
        wh.query(
            f"select cast(cast({column} as date) as varchar), count(*) from {table} group by 1"
        )
    )


def ledger_days(wh) -> Counter:
    """(model, day) -> how many ledger rows that interval has."""
    return Counter((k[0], k[1][:10]) for k, _ in ledger_rows(wh))


def test_a_backfill_publishes_every_day_but_the_one_that_fails(engine):  # noqa: F811
    root = engine.project(CHECKED_EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {d: 1 if d != "2026-06-03" else 500 for d in DAYS})
    args = ("backfill", "--start", DAYS[0], "--end", "2026-06-06", *C1)
    code, out = pipe(root, *args)
    assert code == 1, out
    assert "failed: staging.events 2026-06-03: check failed: expression(amount < 100)" in out
    good = [d for d in DAYS if d != "2026-06-03"]
    assert per_day(wh, "staging.events", "ts") == dict.fromkeys(good, 3)
    assert wh.query("select cast(day as varchar), n, total from marts.daily order by 1") == [
        (d, 3, 3) for d in good
    ]
    assert ledger_days(wh) == Counter(
        {(m, d): 1 for m in ("staging.events", "marts.daily") for d in good}
    )
    assert {(a["model"], a["interval_start"][:10], a["status"]) for a in attempts(root)} == {
        *((m, d, "success") for m in ("staging.events", "marts.daily") for d in good),
        ("staging.events", "2026-06-03", "failed"),
    }
    assert len(attempts(root)) == 9  # one attempt per task that ran
    assert wh.temp_tables() == []

    load_events(wh, dict.fromkeys(DAYS, 1))
    code, out = pipe(root, *args)
    assert code == 0, out
    assert sorted((a["model"], a["interval_start"][:10], a["status"]) for a in attempts(root)) == [
        ("marts.daily", "2026-06-03", "success"),
        ("staging.events", "2026-06-03", "success"),
    ]
    assert per_day(wh, "staging.events", "ts") == dict.fromkeys(DAYS, 3)
    assert ledger_days(wh) == Counter(
        {(m, d): 1 for m in ("staging.events", "marts.daily") for d in DAYS}
    )
    assert wh.temp_tables() == []


# ---------------------------------------------------------------- kill -9, Ctrl-C


def clean_tables(engine, files) -> dict:  # noqa: F811
    """The tables of an uninterrupted run of `files` in a project of its own."""
    root = engine.project(files, KILL_YML, name="reference")
    code, out = run(root)
    assert code == 0, out
    return engine.warehouse(root).snapshot()


def interval_start(table: str, whole) -> str:
    """The ledger's interval start of a row's (hour or day) interval."""
    if isinstance(whole, datetime):
        return whole.isoformat()
    assert isinstance(whole, date), (table, whole)
    return datetime.combine(whole, datetime.min.time()).isoformat()


def assert_recorded_iff_published(root, wh, reference: dict, ok_lines: list[str]) -> None:
    """On a warehouse a run started empty: each ledger row's table exists and holds that
    publish's rows (the reference's); each table (each interval of an incremental one)
    has a ledger row; what the state store and the task lines read call done is in the
    ledger; no interval has two ledger rows."""
    assert_nothing_half_published(wh, reference)
    rows = ledger_rows(wh) if "_pipe.ledger" in wh.relations() else []
    keys = Counter(key for key, _ in rows)
    assert [k for k, n in keys.items() if n > 1] == []
    recorded = {(m, s) for m, s, _ in keys}
    got = {t: v for t, v in wh.snapshot(temp_ok=True).items() if TEMP_MARK not in t}
    published = set()
    for table, (_, cols, table_rows) in got.items():
        if table in INCREMENTAL:
            ts = [c[0] for c in cols].index("ts")
            whole = INCREMENTAL[table]
            published |= {(table, interval_start(table, whole(r[ts]))) for r in table_rows}
        else:
            published.add((table, "2026-06-01T00:00:00"))
    assert recorded == published
    # the state store calls done only what the warehouse recorded
    assert set(state(root, "select model, interval_start from published")) <= recorded
    done = state(root, "select model, interval_start from attempts where status = 'success'")
    assert set(done) <= recorded
    # and so does every OK line the run printed
    ok = Counter(line.split()[1] for line in ok_lines if line.startswith("OK "))
    by_model = Counter(m for m, _ in recorded)
    assert {m: n for m, n in ok.items() if n > by_model[m]} == {}


def test_kill_9_mid_run_leaves_nothing_recorded_unpublished_and_the_resume_finishes(
    engine,  # noqa: F811
    spawn,  # noqa: F811
):
    files = generated_project(engine.busy_rows // 4)  # 44 tasks of ~21 models
    reference = clean_tables(engine, files)
    root = engine.project(files, KILL_YML, name="killed")
    wh = engine.warehouse(root)
    for tasks in (2, 7):  # task lines read before the kill, in two successive runs
        r = spawn(root, *C1)
        r.read_until(tasks)
        read = list(r.lines)
        r.signal(signal.SIGKILL)
        code, out = r.finish()
        assert code == -signal.SIGKILL, out
        assert_recorded_iff_published(root, wh, reference, read)

    code, out = run(root, *C1)
    assert code == 0, out
    header = next(x for x in out.splitlines() if x.startswith("running "))
    assert not header.endswith(" 0 already published"), header
    assert wh.snapshot() == reference  # also: no temp table left
    assert wh.temp_tables() == []
    # every interval published exactly once over the three runs
    assert Counter(key for key, _ in ledger_rows(wh)) == Counter(
        {k: 1 for k in fold(ledger_rows(wh))}
    )
    assert len(ledger_rows(wh)) == 44
    assert state(root, "select status from runs order by run_id") == [
        ("crashed",),
        ("crashed",),
        ("success",),
    ]


def test_ctrl_c_mid_run_commits_what_it_reports_and_the_resume_finishes(
    engine,  # noqa: F811
    spawn,  # noqa: F811
):
    files = generated_project(engine.busy_rows // 4)
    reference = clean_tables(engine, files)
    root = engine.project(files, KILL_YML, name="interrupted")
    wh = engine.warehouse(root)
    r = spawn(root, *C1)
    r.read_until(3)
    r.signal(signal.SIGINT)
    code, out = r.finish()
    assert code == 130, out
    assert "stopping: no new tasks" in out, out
    assert "INTERRUPTED: run 1" in out, out
    ok_lines = [x for x in out.splitlines() if x.startswith("OK ")]
    assert 3 <= len(ok_lines) < 44, out
    assert not [x for x in out.splitlines() if x.startswith(TASK_LINE) and x[:3] != "OK "]
    assert_recorded_iff_published(root, wh, reference, ok_lines)
    # every task reported done is published and recorded, and nothing else is
    done = state(root, "select model, interval_start from attempts where status = 'success'")
    assert len(done) == len(ok_lines) == len(ledger_rows(wh)), out
    assert state(root, "select count(*) from attempts where status <> 'success'") == [(0,)]
    assert wh.temp_tables() == []

    code, out = run(root, *C1)
    assert code == 0, out
    assert f"{len(done)} already published" in out, out
    assert wh.snapshot() == reference
    assert len(ledger_rows(wh)) == 44 == len(fold(ledger_rows(wh)))
    assert state(root, "select status from runs order by run_id") == [
        ("interrupted",),
        ("success",),
    ]
