"""The state store and the project lock on real files: WAL mode, recovery of a dead run,
published fingerprints, and a lock the kernel releases when its holder is killed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from pipe.executor import CheckResult
from pipe.ledger import Entry, Read
from pipe.projectlock import LockHeld, ProjectLock
from pipe.state import StateStore, StoredCheck

KEY = ("m.a", "2026-06-01T00:00:00", "2026-06-02T00:00:00")


def test_store_is_sqlite_in_wal_mode(tmp_path):
    StateStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / ".pipe" / "state.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_recover_marks_a_dead_run_crashed_and_its_attempts_abandoned(tmp_path):
    store = StateStore(tmp_path)
    run_id = store.start_run("run", "dev", "2026-06-01", KEY[1], KEY[2], {}, 2)
    store.begin()
    store.attempt_started(run_id, "t1", 1, KEY, 1.0, 2.0)
    store.attempt_started(run_id, "t2", 1, KEY, 1.0, 2.0)
    store.attempt_finished(run_id, "t2", 1, "success", 3.0, 5, 0, None)
    store.commit()
    store.close()  # the process "dies" here: the run is still 'running'

    store = StateStore(tmp_path)
    assert store.recover() == [run_id]
    assert store.runs()[0].status == "crashed"
    assert [(a.task_id, a.status) for a in store.attempts(run_id)] == [
        ("t1", "abandoned"),
        ("t2", "success"),
    ]
    assert store.recover() == []
    store.close()


def test_uncommitted_work_vanishes_whole(tmp_path):
    store = StateStore(tmp_path)
    run_id = store.start_run("run", "dev", "x", KEY[1], KEY[2], {}, 1)
    store.begin()
    store.attempt_started(run_id, "t1", 1, KEY, 1.0, 2.0)
    store.mark_published("dev", KEY, Entry("fp", 1.0, 3), run_id)
    store.db.close()  # no commit
    store = StateStore(tmp_path)
    assert store.attempts(run_id) == []
    assert store.published_fingerprints("dev") == {}
    store.close()


def test_published_fingerprints_by_target_and_model(tmp_path):
    store = StateStore(tmp_path)
    store.mark_published("dev", KEY, Entry("fp1", 1.0, 3), 1)
    store.mark_published("dev", KEY, Entry("fp2", 2.0, 3), 2)  # a republish replaces
    store.mark_published("prod", KEY, Entry("fp9", 3.0, 3), 3)
    store.mark_published("dev", ("m.b", "", ""), Entry("fpb", 2.5, 1), 2)
    assert store.published_fingerprints("dev") == {KEY: "fp2", ("m.b", "", ""): "fpb"}
    assert store.published_fingerprints("dev", {"m.b"}) == {("m.b", "", ""): "fpb"}
    assert store.published_fingerprints("prod") == {KEY: "fp9"}
    store.close()


def test_the_mirror_keeps_what_a_publish_read_and_follows_the_ledger(tmp_path):
    store = StateStore(tmp_path)
    up = ("m.up", "", "")
    entry = Entry("fp", 5.0, 7, (Read(up, 4.0),), partial=True, replaced=6)
    store.mark_published("dev", KEY, entry, 1)
    assert store.published_entries("dev") == {KEY: entry}
    # the warehouse ledger is the truth: the mirror becomes exactly it
    ledger = {up: Entry("fpu", 4.0, 1)}
    assert store.reconcile("dev", ledger) == 2
    assert store.published_entries("dev") == ledger
    assert store.reconcile("dev", ledger) == 0
    store.close()


def test_check_results_are_stored_per_attempt_with_samples(tmp_path):
    store = StateStore(tmp_path)
    run_id = store.start_run("run", "dev", "x", KEY[1], KEY[2], {}, 1)
    store.check_results(
        run_id,
        "t1",
        1,
        KEY,
        [
            CheckResult("unique(id)", "error", "error", 2, [{"id": 1}, {"id": 2}]),
            CheckResult("not_null(id)", "error", "pass", 0),
        ],
    )
    sample = '[{"id": 1}, {"id": 2}]'
    assert store.failed_checks(run_id) == [
        StoredCheck(run_id, "t1", 1, *KEY, "unique(id)", "error", "error", 2, sample)
    ]
    assert store.check_history("dev") == [
        StoredCheck(run_id, "t1", 1, *KEY, "not_null(id)", "error", "pass", 0, None),
        *store.failed_checks(run_id),
    ]
    store.close()


def test_a_store_of_an_older_pipe_gains_the_check_type(tmp_path):
    store = StateStore(tmp_path)
    store.db.execute("ALTER TABLE check_results DROP COLUMN check_type")  # as 0.x left it
    run_id = store.start_run("run", "dev", "x", KEY[1], KEY[2], {}, 1)
    store.db.execute(
        "INSERT INTO check_results VALUES (?, 't0', 1, ?, ?, ?, 'row_count', 'error', "
        "'error', 1, NULL)",
        (run_id, *KEY),
    )
    store.close()
    store = StateStore(tmp_path)
    result = CheckResult("renamed", "error", "error", 1, [{"n_rows": 3}])
    store.check_results(run_id, "t1", 1, KEY, [result], {"renamed": "row_count"})
    assert [(c.check_name, c.check_type) for c in store.checks_of(run_id)] == [
        ("row_count", None),  # stored before: its type unknown
        ("renamed", "row_count"),
    ]
    store.close()


def test_readonly_store_of_a_project_that_never_ran(tmp_path):
    store = StateStore(tmp_path, readonly=True)
    assert store.runs() == []
    store.close()
    assert not (tmp_path / ".pipe" / "state.db").exists()


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    first = ProjectLock(tmp_path)
    first.acquire(False, what="pipe run 2026-06-01")
    second = ProjectLock(tmp_path)
    with pytest.raises(LockHeld) as caught:
        second.acquire(False)
    assert caught.value.holder == f"pid {os.getpid()}: pipe run 2026-06-01"
    first.release()
    second.acquire(False, what="second")
    assert second.holder() == f"pid {os.getpid()}: second"
    second.release()


def test_the_kernel_releases_the_lock_of_a_killed_process(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from pipe.projectlock import ProjectLock
        ProjectLock(Path({str(tmp_path)!r})).acquire(False, what="doomed")
        print("locked", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld) as caught:
            ProjectLock(tmp_path).acquire(False)
        assert caught.value.holder == f"pid {proc.pid}: doomed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdin.close()
        proc.stdout.close()
    lock = ProjectLock(tmp_path)
    lock.acquire(False, what="after")  # no wait: the dead holder's lock is gone
    lock.release()


def test_a_running_run_whose_process_is_gone_reads_as_crashed(tmp_path):
    store = StateStore(tmp_path)
    mine = store.start_run("run", "dev", "a", KEY[1], KEY[2], {}, 1)
    dead = store.start_run("run", "dev", "b", KEY[1], KEY[2], {}, 1)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store.db.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (int(gone.stdout), dead))
    assert {r.run_id: r.status for r in store.runs()} == {mine: "running", dead: "crashed"}
    store.close()


def test_a_run_reads_back_as_frozen_rows(tmp_path):
    """runs(), run(), task_outcomes(), checks_of() and settled() give values read by name."""
    store = StateStore(tmp_path)
    run_id = store.start_run("backfill", "dev", "x", KEY[1], KEY[2], (("select", "m.a"),), 3)
    key_b, key_c = ("m.b", *KEY[1:]), ("m.c", *KEY[1:])
    store.outcomes(
        run_id,
        [("t1", *KEY, "success", None), ("t2", *key_b, "skipped", "already published")],
    )
    store.outcome(run_id, "t3", key_c, "failed", "boom")
    store.check_results(run_id, "t1", 1, KEY, [CheckResult("not_null(id)", "warn", "warn", 2)])
    store.finish_run(run_id, "failed", (("failed", 1), ("success", 1), ("skipped", 1)))
    [run] = store.runs()
    assert run == store.run(run_id)
    assert (run.kind, run.target, run.status, run.total) == ("backfill", "dev", "failed", 3)
    assert run.args == '{"select": "m.a"}'
    assert run.summary == '{"failed": 1, "skipped": 1, "success": 1}'
    assert [(o.task_id, o.model, o.status, o.reason) for o in store.task_outcomes(run_id)] == [
        ("t1", "m.a", "success", None),
        ("t2", "m.b", "skipped", "already published"),
        ("t3", "m.c", "failed", "boom"),
    ]
    [check] = store.checks_of(run_id)
    assert (check.task_id, check.check_name, check.status, check.failures) == (
        "t1",
        "not_null(id)",
        "warn",
        2,
    )
    assert store.settled(run_id) == 2
    assert store.run(run_id + 1) is None
    store.close()
