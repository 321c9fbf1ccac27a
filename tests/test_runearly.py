"""`pipe run` opens its DuckDB warehouse before the command is parsed (runearly.py): a
guess from the command line and the last run's hint, taken only when the run's target
turns out to be that file; the run's output, lock and decisions are as without it."""

from __future__ import annotations

import contextlib
import json
import os
import re

import duckdb
import pytest
from click.testing import CliRunner

from conftest import run_cli, run_pipe
from pipe import runearly
from pipe.cli import main
from pipe.projectlock import LockHeld, ProjectLock
from runner_helpers import INTERVAL, run

ARGS = ["run", "--interval", INTERVAL]


def _compiled(root):
    code, out = run_cli(["compile", "--interval", INTERVAL, "--project", root])
    assert code == 0, out
    return root


def _hint(root):
    return json.loads((root / runearly.HINT).read_text())


def _lock_is_free(root) -> bool:
    lock = ProjectLock(root)
    try:
        lock.acquire(False)
    except LockHeld:
        return False
    lock.release()
    return True


@pytest.fixture
def opened():
    """`runearly.start`, as the console script calls it; closed at the test's end."""
    made = []

    def start(argv):
        early = runearly.start(argv)
        if early is not None:
            made.append(early)
        return early

    yield start
    for early in made:
        early.close_unused()  # a test that failed halfway must not keep the lock


def _run_with(root, early, *args):
    """`pipe run` in process with `early` as the console script hands it to click."""
    with contextlib.chdir(root):
        result = CliRunner().invoke(
            main, [*ARGS, *map(str, args)], obj=early, catch_exceptions=False
        )
    return result.exit_code, result.output


def test_the_compile_leaves_the_hint_and_a_run_takes_the_early_opening(example_project, opened):
    root = _compiled(example_project)
    assert _hint(root) == {"default": "dev", "targets": {"dev": "warehouse.duckdb", "pg": None}}
    code, out = run(root)  # creates the warehouse: nothing to open early before it
    assert code == 0, out
    early = opened([*ARGS, "--project", str(root), "--force"])
    assert early is not None and not _lock_is_free(root)
    code, out = _run_with(root, early, "--project", root, "--force")
    assert code == 0, out
    assert "35 succeeded" in out, out
    assert early.taken and early.con is None  # taken, and closed by the run
    assert _lock_is_free(root)


def test_an_early_opening_of_another_file_is_closed_and_the_target_opened(example_project, opened):
    root = _compiled(example_project)
    assert run(root)[0] == 0
    duckdb.connect(str(root / "other.duckdb")).close()
    # a hint naming another file (pipe.yml changed since it was written): a wrong guess,
    # found out when the run knows its target
    (root / runearly.HINT).write_text(
        json.dumps({"default": "dev", "targets": {"dev": "other.duckdb"}})
    )
    early = opened([*ARGS, "--project", str(root)])
    assert early is not None and early.path.endswith("other.duckdb")
    code, out = _run_with(root, early, "--project", root, "--force")
    assert code == 0, out
    assert "35 succeeded" in out, out
    assert not early.taken and early.con is None and _lock_is_free(root)
    with duckdb.connect(str(root / "other.duckdb")) as con:  # nothing written there
        assert con.execute("select count(*) from duckdb_tables()").fetchone() == (0,)


def test_no_early_opening_when_the_lock_is_busy_or_the_line_is_not_plain(example_project, opened):
    root = _compiled(example_project)
    assert run(root)[0] == 0
    holder = ProjectLock(root)
    holder.acquire(False, None, "pipe run elsewhere")
    try:
        assert opened([*ARGS, "--project", str(root)]) is None
    finally:
        holder.release()
    for line in (
        ["run", "--project", str(root), "--interval"],  # a missing value: click says so
        ["run", "--project", str(root), "--interval", INTERVAL, "--help"],
        ["run", "--project", str(root), "--interval", INTERVAL, "extra"],
        ["compile", "--project", str(root), "--interval", INTERVAL],
        ["run", "--project", str(root)],
        ["run", "--project", str(root), "--interval", INTERVAL, "--target", "nope"],
    ):
        assert opened(line) is None, line
    early = opened(["run", f"--project={root}", f"--interval={INTERVAL}", "--no-wait"])
    assert early is not None
    early.close_unused()
    assert _lock_is_free(root)
    early.close_unused()  # closing twice is closing once


def test_the_lock_file_names_the_run_as_the_command_does(example_project, opened):
    root = _compiled(example_project)
    assert run(root)[0] == 0
    assert opened([*ARGS, "--project", str(root)]) is not None
    assert ProjectLock(root).holder() == f"pid {os.getpid()}: pipe run {INTERVAL}"


def test_the_console_script_runs_the_same_with_and_without_the_hint(example_project):
    root = _compiled(example_project)
    first = run_pipe([*ARGS, "--project", root], root)
    assert first.returncode == 0, first.stderr
    with_hint = run_pipe([*ARGS, "--project", root, "--force"], root)
    (root / runearly.HINT).unlink()
    without = run_pipe([*ARGS, "--project", root, "--force"], root)
    assert with_hint.returncode == without.returncode == 0, with_hint.stderr + without.stderr

    def shape(text):  # the lines, in any order (4 at once), without timings and run ids
        lines = re.sub(r"\d+(\.\d+)?m?s\b|run \d+", "#", text).splitlines()
        return sorted(" ".join(line.split()) for line in lines)

    assert shape(with_hint.stdout) == shape(without.stdout)
    assert with_hint.stderr == without.stderr == ""
    assert (root / runearly.HINT).exists()  # written again by the run without it


def test_a_refused_run_after_an_early_opening_releases_the_lock(example_project):
    root = _compiled(example_project)
    assert run_pipe([*ARGS, "--project", root], root).returncode == 0
    model = root / "models" / "staging" / "customers.sql"
    model.write_text(model.read_text().replace("lower(email)", "upper(email)"))
    refused = run_pipe([*ARGS, "--project", root], root)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "stale" in refused.stderr, refused.stderr
    assert _lock_is_free(root)
    late = run_pipe([*ARGS, "--project", root, "--interval", "2099-01-01"], root)
    assert late.returncode == 2 and "not complete" in late.stderr, late.stderr
    assert _lock_is_free(root)


def test_a_busy_lock_is_said_as_before(example_project):
    root = _compiled(example_project)
    assert run_pipe([*ARGS, "--project", root], root).returncode == 0
    holder = ProjectLock(root)
    holder.acquire(False, None, "pipe run elsewhere")
    try:
        busy = run_pipe([*ARGS, "--project", root, "--no-wait"], root)
    finally:
        holder.release()
    assert busy.returncode == 2, busy.stdout + busy.stderr
    said = (
        f"another pipe process is running on this project (pid {os.getpid()}: pipe run elsewhere)"
    )
    assert said in busy.stderr, busy.stderr


def test_a_run_that_compiles_first_takes_the_early_opening(example_project):
    """A project touched since the last run, or an interval not compiled yet, takes the
    compile path: the run must use the lock the console script took, not wait on it."""
    root = _compiled(example_project)
    assert run_pipe([*ARGS, "--project", root], root).returncode == 0
    model = root / "models" / "staging" / "orders.sql"
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # `touch`: same plan
    touched = run_pipe([*ARGS, "--project", root, "--no-wait"], root)
    assert touched.returncode == 0, touched.stdout + touched.stderr
    assert "another pipe process" not in touched.stderr, touched.stderr
    later = run_pipe(["run", "--interval", "2026-06-02", "--project", root, "--no-wait"], root)
    assert later.returncode == 0, later.stdout + later.stderr
    assert "compiled plans/dev/2026-06-02.json" in later.stdout + later.stderr
    assert _lock_is_free(root)
