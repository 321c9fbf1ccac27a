"""Group commit (groupcommit.py): at --concurrency 1 the worker holds several tasks in one
transaction. The scheduler records a held task only once a commit settles it and fails
what a redo could not publish; on DuckDB and Postgres a failing task rolls the group back,
the others are redone alone and published once, and the group's tasks really share one
transaction (Postgres: the catalog rows of the group's tables carry one xmin).

The first tests drive `Scheduler` with plain work functions; the others run real projects.
"""

from __future__ import annotations

import pytest

import pipe.groupcommit as groupcommit
import pipe.runner as prunner
from pipe.executor import TaskResult
from pipe.intervals import Interval, from_iso
from pipe.plan import Task
from pipe.scheduler import Caps, Grouping, Listener, Scheduler
from test_contract import PostgresEngine, engine, pytest_generate_tests  # noqa: F401
from test_gaps import pipe

DAY = Interval(from_iso("2026-06-01T00:00:00"), from_iso("2026-06-02T00:00:00"))


def task(tid: str, upstream=()) -> Task:
    return Task(tid, f"m.{tid}", "full", DAY, tuple(upstream), "fp", f"m.{tid}")


class Events(Listener):
    def __init__(self, log):
        self.log = log

    def finished(self, task, attempt, result, started_at, finished_at, final):
        self.log.append(("finished", task.id, result.status))

    def settled(self, task, outcome):
        self.log.append(("settled", task.id, outcome.status))


class HeldWork:
    """Every task succeeds held; `commit` (an idle worker's) settles all it holds.
    `fail_on`: task id -> the (id, result) settles its attempt reports with its own
    failure (the group is then empty)."""

    def __init__(self, log, fail_on=None, broken=False):
        self.log, self.fail_on, self.broken = log, fail_on or {}, broken
        self.held: list[str] = []

    def __call__(self, t: Task, attempt: int) -> TaskResult:
        self.log.append(("ran", t.id))
        if t.id in self.fail_on:
            settles, self.held = self.fail_on[t.id], []
            return TaskResult("failed", error="boom", retryable=False, settles=settles)
        self.held.append(t.id)
        return TaskResult("success", rows=1, held=True)

    def commit(self) -> tuple:
        if self.broken:
            raise RuntimeError("a bug in the commit")
        if self.held:
            self.log.append(("commit", len(self.held)))
        held, self.held = self.held, []
        return tuple((tid, TaskResult("success", rows=1)) for tid in held)


def _run(tasks, work, log, idle=0.001):
    grouping = Grouping(work.commit, idle)
    return Scheduler(tasks, Caps(1), work, listener=Events(log), grouping=grouping).run()


def test_a_held_task_is_recorded_only_once_a_commit_settles_it():
    log: list = []
    tasks = [task(f"t{i:02d}", upstream=[f"t{i - 1:02d}"] if i % 3 else []) for i in range(25)]
    outcomes = _run(tasks, HeldWork(log), log)
    assert {o.status for o in outcomes.values()} == {"success"}
    assert sum(e[1] for e in log if e[0] == "commit") == 25
    # a task's downstream ran before the commit (it is held, not done), and nothing was
    # recorded before the commit that settled it
    held: set[str] = set()
    for event in log:
        if event[0] == "ran":
            held.add(event[1])
        elif event[0] == "commit":
            held = set()
        else:
            assert event[1] not in held, (event, log)


def test_a_held_task_that_fails_when_redone_fails_its_downstream_held_or_queued():
    """c fails; its group's a was redone and failed, so b (ran on a, held) is not done,
    and d (queued on b) never runs; x, independent, is redone fine."""
    log: list = []
    tasks = [task("a"), task("x"), task("b", ["a"]), task("c", ["b"]), task("d", ["b"])]
    redo = (
        ("a", TaskResult("failed", error="division by zero", retryable=False)),
        ("x", TaskResult("success", rows=1)),
        ("b", TaskResult("failed", error="not run", retryable=False)),
    )
    outcomes = _run(tasks, HeldWork(log, fail_on={"c": redo}), log, idle=3600)
    got = {tid: (o.status, o.reason) for tid, o in outcomes.items()}
    assert got == {
        "a": ("failed", "division by zero"),
        "x": ("success", None),
        "b": ("upstream_failed", "upstream m.a failed"),
        "c": ("upstream_failed", "upstream m.b failed"),
        "d": ("upstream_failed", "upstream m.b failed"),
    }
    assert ("ran", "d") not in log


def test_a_commit_that_raises_fails_the_held_tasks_rather_than_hangs():
    log: list = []
    outcomes = _run([task("a"), task("b", ["a"])], HeldWork(log, broken=True), log)
    assert [outcomes[t].status for t in "ab"] == ["failed", "upstream_failed"]
    assert "RuntimeError: a bug in the commit" in outcomes["a"].reason


# ---------------------------------------------------------------- real warehouses


def _chain(n: int) -> dict[str, str]:
    files = {"models/g/m00.sql": "select 1 as v"}
    for i in range(1, n):
        files[f"models/g/m{i:02d}.sql"] = f"select v + 1 as v from g.m{i - 1:02d}"
    return files


def _xmins(wh) -> dict[str, str]:
    """Each table of schema g -> the transaction that renamed it into place."""
    rows = wh.query(
        "select relname, xmin::text from pg_class "
        "where relnamespace = 'g'::regnamespace and relkind = 'r'",
        dialect=None,
    )
    return dict(rows)


@pytest.mark.postgres
def test_a_c1_run_commits_its_tasks_in_groups_and_c2_what_is_read_one_by_one(
    write_project, pg_server, monkeypatch
):
    """The xmin of a table's pg_class row is the transaction that renamed it into place:
    at --concurrency 1 ten tasks share one, and a group commits before a task of a model
    known to be slow; at --concurrency 2 a task another one reads commits alone."""
    pg = PostgresEngine(write_project, pg_server, monkeypatch)
    monkeypatch.setattr(groupcommit, "GROUP_SECONDS", 3600.0)  # groups by count only
    monkeypatch.setattr(prunner._Session, "slow", lambda self, task: task.model == "g.m03")
    root = pg.project(_chain(25))
    wh = pg.warehouse(root)
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--concurrency", "1")
    assert code == 0, out
    assert wh.query("select v from g.m24", dialect=None) == [(25,)]
    xmins = _xmins(wh)
    groups = [sorted(t for t in xmins if xmins[t] == x) for x in sorted(set(xmins.values()))]
    assert sorted(map(len, groups)) == [2, 3, 10, 10], groups
    assert ["m00", "m01", "m02"] in groups  # committed before g.m03, the slow one
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--concurrency", "2", "--force")
    assert code == 0, out
    assert len(set(_xmins(wh).values())) == 25  # a chain: each is read by the next


def test_a_failing_task_rolls_back_its_group_and_the_others_are_published_once(engine):  # noqa: F811
    """g.bad fails after five tasks of its group ran: they are redone alone and
    published, each recorded once in the ledger; g.bad's downstream is upstream_failed."""
    files = _chain(5)
    files["models/g/bad.sql"] = "select cast('x' || cast(v as varchar) as integer) as v from g.m04"
    files["models/g/after_bad.sql"] = "select v from g.bad"
    root = engine.project(files)
    wh = engine.warehouse(root)
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--concurrency", "1")
    assert code == 1, out
    assert wh.query("select v from g.m04") == [(5,)]
    published = [e for (e,) in wh.query("select entry from _pipe.ledger")]
    models = sorted(e.split('"')[1] for e in published)
    assert models == [f"g.m{i:02d}" for i in range(5)]
    assert not [r for r in wh.relations() if "tmp" in r]
    assert "g.bad" not in wh.relations() and "g.after_bad" not in wh.relations()
    assert "upstream g.bad failed" in out or "upstream_failed" in out, out


def test_a_held_task_whose_redo_fails_is_not_published_nor_what_ran_on_it(engine):  # noqa: F811
    """g.h succeeds held (the sequence's first value), g.hd runs on it, then g.bad fails:
    the group is rolled back, g.h's redo draws the sequence's next value, which its cast
    refuses, so neither g.h nor g.hd is published or recorded; g.m00 still is."""
    files = {
        "models/g/m00.sql": "select 1 as v",
        "models/g/h.sql": (
            "select cast(case when nextval('g_seq') = 1 then '1' else 'y' end as integer) as v"
        ),
        "models/g/hd.sql": "select v from g.h",
        "models/g/bad.sql": "select cast('x' || cast(v as varchar) as integer) as v from g.hd",
    }
    root = engine.project(files)
    wh = engine.warehouse(root)
    wh.execute("create schema if not exists g; create sequence g_seq")
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--concurrency", "1")
    assert code == 1, out
    relations = wh.relations()
    assert "g.m00" in relations
    assert not {"g.h", "g.hd", "g.bad"} & set(relations), relations
    published = sorted(e.split('"')[1] for (e,) in wh.query("select entry from _pipe.ledger"))
    assert published == ["g.m00"]
    assert "'y'" in out or '"y"' in out, out


def test_a_failed_check_drops_its_build_and_keeps_the_group(engine):  # noqa: F811
    """A failed check ends no statement: the tasks held before it are not rolled back and
    redone (g.a draws the sequence once: its published value is the first)."""
    files = {
        "models/g/a.sql": "select cast(nextval('g_seq') as integer) as v",
        "models/g/z.sql": "select 5 as v",
        "models/g/z.yml": "checks:\n  - expression: v < 3\n",
        "models/g/zz.sql": "select v from g.z",
    }
    root = engine.project(files)
    wh = engine.warehouse(root)
    wh.execute("create schema if not exists g; create sequence g_seq")
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--concurrency", "1")
    assert code == 1, out
    assert "check failed" in out, out
    assert wh.query("select v from g.a") == [(1,)]
    assert not [r for r in wh.relations() if "tmp" in r or r.startswith("g.z")]


def test_a_held_task_whose_redo_fails_is_retried_as_its_retries_allow(engine):  # noqa: F811
    """g.h runs held (odd value), g.bad fails and rolls the group back; g.h's redo draws an
    even value and fails, and its retry (odd again) publishes it."""
    files = {
        "models/g/h.sql": (
            "select cast(case when nextval('g_seq') % 2 = 1 then '1' else 'y' end as integer) as v"
        ),
        "models/g/h.yml": "retries: 1\nretry_delay: 0.01s\n",
        "models/g/hd.sql": "select v from g.h",
        "models/g/bad.sql": "select cast('x' || cast(v as varchar) as integer) as v from g.hd",
    }
    root = engine.project(files)
    wh = engine.warehouse(root)
    wh.execute("create schema if not exists g; create sequence g_seq")
    code, out = pipe(root, "run", "--interval", "2026-06-01", "--concurrency", "1")
    assert code == 1, out
    assert wh.query("select v from g.h") == [(1,)]
    assert wh.query("select v from g.hd") == [(1,)]
    assert wh.query("select nextval('g_seq')") == [(4,)]  # run, redo, retry
    assert "g.bad" not in wh.relations()


@pytest.mark.postgres
def test_a_timeout_covers_the_publish_of_a_task_that_commits_at_its_end(
    write_project, pg_server, monkeypatch
):
    """g.m00 is read by g.m01, so at --concurrency 2 it commits at its end: its DROP and
    RENAME wait for a reader's lock, and its timeout fires then, once. (Sent with the
    COMMIT, after the timeout's end, they waited for the lock until it gave up; the
    group's redo then ran the task a second time: the sequence says how often it ran.)"""
    import psycopg

    pg = PostgresEngine(write_project, pg_server, monkeypatch)
    files = {
        "models/g/m00.sql": "select cast(nextval('g_seq') as integer) as v",
        "models/g/m00.yml": "timeout: 1s\n",
        "models/g/m01.sql": "select v + 1 as v from g.m00",
    }
    root = pg.project(files)
    wh = pg.warehouse(root)
    wh.execute("create sequence g_seq", dialect=None)
    assert pipe(root, "run", "--interval", "2026-06-01")[0] == 0  # draws 1
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=5s")  # no endless wait, whatever
    with psycopg.connect(wh.dsn) as reader:
        reader.execute("select count(*) from g.m00")  # holds its lock until the end
        code, out = pipe(root, "run", "--interval", "2026-06-01", "--concurrency", "2", "--force")
    assert code == 1, out
    assert "g.m00 2026-06-01: timeout after 1." in out, out
    assert wh.query("select nextval('g_seq')", dialect=None) == [(3,)]  # 2 ran once
    assert wh.query("select v from g.m00", dialect=None) == [(1,)]


@pytest.mark.postgres
def test_a_backfill_groups_tasks_whose_upstream_was_published_before_it(
    write_project, pg_server, monkeypatch
):
    """Two incremental models read a seed published by an earlier run: at --concurrency 2
    their tasks are leaves and their upstream is in every snapshot, so they are held and
    committed in groups (the ledger rows' xmin: one per transaction)."""
    pg = PostgresEngine(write_project, pg_server, monkeypatch)
    monkeypatch.setattr(groupcommit, "GROUP_SECONDS", 3600.0)
    day = "select n, {{ interval_start }} as ts from g.s"
    files = {
        "seeds/g/s.csv": "n\n1\n2\n",
        "models/g/a.sql": day,
        "models/g/a.yml": "kind: incremental\ntime_column: ts\n",
        "models/g/b.sql": day,
        "models/g/b.yml": "kind: incremental\ntime_column: ts\n",
    }
    root = pg.project(files)
    assert pipe(root, "run", "--interval", "2026-06-01")[0] == 0
    code, out = pipe(
        root, "backfill", "--start", "2026-06-02", "--end", "2026-06-22", "--concurrency", "2"
    )
    assert code == 0, out
    wh = pg.warehouse(root)
    [(rows, xmins)] = wh.query(
        "select count(*), count(distinct xmin::text) from _pipe.ledger "
        "where xmin::text::bigint > (select min(xmin::text::bigint) from _pipe.ledger "
        "where entry like '%2026-06-02%')",
        dialect=None,
    )
    assert rows >= 39, out  # 40 tasks, less the first
    assert xmins <= rows // 4, (rows, xmins)
