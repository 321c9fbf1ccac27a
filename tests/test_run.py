"""`pipe run` as a command: a stale plan and a held lock are refused, a missing plan is
compiled first, `--json` prints one document, and `pipe status` explains a failed run.

What a run does to a warehouse (tables equal to the plan's SQL, idempotent reruns,
intervals, checks, failures, retries, timeouts, kill -9, concurrent readers) is the
contract suite, tests/test_contract.py, run on every adapter; these tests use the default
DuckDB target."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import files_under, pipe_executable, run_cli, run_cli_json
from pipe.projectlock import ProjectLock
from runner_helpers import outcomes, run, state


def test_stale_plan_is_refused_and_nothing_is_written(example_project):
    root = example_project
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    model = root / "models" / "staging" / "customers.sql"
    model.write_text(model.read_text().replace("lower(email)", "upper(email)"))
    before = files_under(root / "plans")

    code, out = run(root)
    assert code == 2, out
    assert "plans/dev/2026-06-01.json" in out and "stale" in out, out
    assert "pipe compile --interval 2026-06-01" in out, out
    assert "Traceback" not in out
    assert not (root / "warehouse.duckdb").exists()
    assert files_under(root / "plans") == before
    assert state(root, "select count(*) from runs") in ([], [(0,)])

    # recompiling is the way out
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    code, out = run(root)
    assert code == 0, out


def test_a_run_compiles_a_missing_plan_first(example_project):
    code, out = run(example_project)
    assert code == 0, out
    assert out.startswith("compiled plans/dev/2026-06-01.json (35 tasks)"), out
    assert (example_project / "plans" / "dev" / "2026-06-01.json").is_file()


def test_no_wait_exits_2_naming_the_lock_holder(example_project):
    """A busy lock is for the user to resolve (wait, or stop the other run): exit 2."""
    lock = ProjectLock(example_project)
    lock.acquire(False, what="pipe backfill 2026-06")
    try:
        code, out = run(example_project, "--no-wait")
    finally:
        lock.release()
    assert code == 2, out
    assert out.splitlines()[-1] == (
        "error: .pipe/lock: another pipe process is running on this project "
        f"(pid {os.getpid()}: pipe backfill 2026-06) "
        "(wait for it, or drop --no-wait to queue behind it)"
    ), out
    assert "Traceback" not in out, out
    assert not (example_project / "warehouse.duckdb").exists()
    assert state(example_project, "select count(*) from runs") in ([], [(0,)])


def test_no_wait_with_a_holder_that_did_not_sign_the_lock(example_project):
    lock = ProjectLock(example_project)
    lock.acquire(False, what="")
    lock.path.write_text("")  # an older pipe, or one that died while writing it
    try:
        code, out = run(example_project, "--no-wait")
    finally:
        lock.release()
    assert code == 2, out
    said = "another pipe process is running on this project (the lock file does not say which)"
    assert said in out, out


def test_a_warehouse_that_refuses_the_runs_set_up_is_a_user_error(write_project):
    """Someone else's table where pipe keeps its ledger: the run's own statements fail
    before any task. Exit 2 naming the target, not 'a bug in pipe' (exit 3)."""
    import duckdb

    root = write_project({"models/a/b.sql": "select 1 as x"})
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("create schema _pipe; create table _pipe.ledger (x integer)")
    con.close()
    code, out = run(root)
    assert code == 2, out
    assert "Traceback" not in out and "bug in pipe" not in out, out
    [line] = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert line.startswith(
        "error: pipe.yml: target 'dev' (duckdb) refused what pipe does before the run's "
        "first task: Binder Error: "
    ), out
    assert "grant the target's role those privileges" in line, out
    assert state(root, "select count(*) from runs") in ([], [(0,)])


def test_without_no_wait_a_run_waits_for_the_lock_saying_why(example_project):
    root = example_project
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    lock = ProjectLock(root)
    lock.acquire(False, what="the test")
    proc = subprocess.Popen(
        [pipe_executable(), "run", "--interval", "2026-06-01"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline()  # blocks until the run says it waits
        assert f"waiting for the project lock held by pid {os.getpid()}: the test" in line
        assert not (root / "warehouse.duckdb").exists()
    finally:
        lock.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "35 succeeded" in out


FAILING = {
    "models/a/base.sql": "select 1 as id, timestamp '2026-06-01 10:00' as ts",
    "models/a/base.yml": "kind: incremental\ntime_column: ts\ngrain: hourly\n",
    "models/a/bad.sql": "select id, 1 / 0 as x, cast('x' as integer) as y from a.base",
    "models/a/after_bad.sql": "select * from a.bad",
}


def test_status_after_a_failed_run_shows_the_reason_and_what_is_missing(write_project):
    root = write_project(FAILING)
    code, out = run(root)
    assert code == 1, out
    assert "failed: a.bad 2026-06-01" in out and "Conversion Error" in out, out

    code, text = run_cli(["status", "--project", root])
    assert code == 0, text
    assert "failed" in text and "a.bad 2026-06-01T00:00:00: " in text, text
    assert "Conversion Error" in text, text
    assert "LINE 1" not in text and "^^^" not in text, text  # the message, not the excerpt
    assert "upstream_failed" in text and "upstream a.bad failed" in text, text
    assert "missing:" in text and "a.bad: never built" in text, text
    assert "a.base: [2026-06-02T00:00:00," in text, text  # only 06-01 ran
    # and the one command that fills every gap up to the last complete interval
    code, text = run_cli(["status", "--project", root, "--execution-time", "2026-06-05T09:00"])
    assert "a.base: [2026-06-02T00:00:00, 2026-06-05T00:00:00)" in text, text
    assert (
        "fix: pipe backfill --start 2026-06-02 --end 2026-06-05 (what is published already "
        "is skipped)"
    ) in text, text

    report = run_cli_json(["status", "--json", "--project", root])
    [last] = report["runs"][:1]
    assert last["status"] == "failed"
    assert last["counts"] == {"failed": 1, "success": 24, "upstream_failed": 1}
    by_model = {f["model"]: f for f in report["failures"]}
    assert by_model["a.bad"]["status"] == "failed"
    assert "Conversion Error" in by_model["a.bad"]["reason"]
    assert by_model["a.after_bad"]["status"] == "upstream_failed"
    assert report["missing"]["a.bad"] == "never built"
    assert report["missing"]["a.after_bad"] == "never built"
    assert report["missing"]["a.base"][0][0] == "2026-06-02T00:00:00"  # from the next day

    missing = run_cli_json(["status", "--json", "--interval", "2026-06-01", "--project", root])
    assert "a.base" not in missing["missing"], missing["missing"]
    assert missing["missing"]["a.bad"] == "never built"
    assert outcomes(root)[("a.bad", "2026-06-01T00:00:00")][0] == "failed"


def test_run_json_output_is_one_document(example_project):
    proc = subprocess.run(
        [pipe_executable(), "run", "--interval", "2026-06-01", "--json"],
        cwd=example_project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "success" and doc["counts"] == {"success": 35}
    assert len(doc["tasks"]) == 35


def test_status_before_any_run(example_project):
    """`pipe status` before any run: no runs, everything missing."""
    report = run_cli_json(["status", "--json", "--project", example_project])
    assert report["runs"] == [] and report["failures"] == []
    assert report["missing"]["staging.customers"] == "never built"


def test_a_damaged_state_store_is_explained_and_rebuilt_from_the_ledger(example_project):
    root = example_project
    code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    (root / ".pipe" / "state.db").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (root / ".pipe" / f"state.db{suffix}").unlink(missing_ok=True)
    code, out = run_cli(["status", "--project", root])
    assert code == 2, out
    assert ".pipe/state.db: the state store is damaged" in out and "Traceback" not in out
    assert "rebuilds what is published from the warehouse's ledger" in out
    code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    assert "note: .pipe/state.db was damaged: kept as .pipe/state.db.damaged" in out
    assert "35 skipped" in out  # nothing rebuilt: the ledger knows what is published
    assert (root / ".pipe" / "state.db.damaged").exists()
    assert run_cli(["status", "--project", root])[0] == 0


@pytest.mark.parametrize(
    "content, said",
    [
        (b"", "this plan file is empty"),
        (b"{not json", "this plan file is not valid JSON"),
        (b'{"pipe_plan": 99, "tasks": []}', "this plan has format 99; this pipe reads format 1"),
        (b'["a list"]', "this is not a pipe plan"),
        (None, "this is a directory, not a plan file"),
    ],
)
def test_a_plan_file_pipe_cannot_read_says_what_is_wrong_with_it(example_project, content, said):
    path = example_project / "plans" / "dev" / "2026-06-01.json"
    path.parent.mkdir(parents=True)
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    code, out = run_cli(["run", "--project", example_project, "--interval", "2026-06-01"])
    assert code == 2, out
    assert "plans/dev/2026-06-01.json" in out and said in out, out
    assert "stale" not in out and "Traceback" not in out
