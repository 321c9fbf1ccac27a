"""Shared fixtures: small projects written on the fly, the example project, the CLI.

Everything runs on real files in tmp_path; nothing is mocked. `run_cli` drives the click
app in-process (fast); tests that need the real console script use `run_pipe`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipe.cli import main
from servers import start_postgres, start_spark_connect

TESTS = Path(__file__).resolve().parent
EXAMPLE = TESTS.parent / "example_project"

PIPE_YML = """\
name: t
start: 2026-06-01
schedule: daily
default_target: dev
targets:
  dev: {adapter: duckdb, path: warehouse.duckdb}
"""


def write_files(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def write_project(tmp_path):
    """`write_project({"models/a/b.sql": "select 1 as x"})` -> the project's root.

    pipe.yml is PIPE_YML unless given (None leaves it out); `name` picks a sub-directory
    of tmp_path so one test can write several projects."""

    def write(files: dict[str, str], pipe_yml: str | None = PIPE_YML, name: str = "proj"):
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        if pipe_yml is not None:
            files = {"pipe.yml": pipe_yml, **files}
        return write_files(root, files)

    return write


def copy_example(dest: Path) -> Path:
    shutil.copytree(
        EXAMPLE, dest, ignore=shutil.ignore_patterns(".pipe", "plans", "*.duckdb", "*.duckdb.wal")
    )
    return dest


@pytest.fixture
def example_project(tmp_path) -> Path:
    """A fresh copy of example_project/ (no plans, no state, no warehouse)."""
    return copy_example(tmp_path / "shop")


def run_cli(args: list[str], cwd: Path | None = None) -> tuple[int, str]:
    """Run `pipe ARGS` in-process from `cwd`: (exit code, stdout and stderr interleaved).

    click >= 8.2 always captures stderr separately and also mixes it into `output`, which
    is what a user sees on a terminal."""
    result = _invoke(args, cwd)
    return result.exit_code, result.output


def run_cli_json(args: list[str], cwd: Path | None = None):
    """Run a `--json` command that must succeed; parse its stdout alone."""
    result = _invoke(args, cwd)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _invoke(args, cwd):
    runner = CliRunner()
    with contextlib.chdir(cwd) if cwd else contextlib.nullcontext():
        # catch_exceptions=False: a bug surfaces as the test's own traceback
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def pipe_executable() -> str:
    """The `pipe` console script of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("pipe")
    found = str(beside) if beside.exists() else shutil.which("pipe")
    assert found, "the pipe console script is not installed (pip install -e '.[test]')"
    return found


def run_pipe(args: list[str], cwd: Path, env: dict | None = None):
    """Run the real console script in a subprocess: a CompletedProcess with text output."""
    return subprocess.run(
        [pipe_executable(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below root (relative posix path -> bytes); {} when root does not exist."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def _pg_admin():
    """(admin DSN, None) of the server the tests use, or (None, why there is none):
    PIPE_TEST_PG_DSN when set, else a throwaway cluster this session starts (initdb +
    pg_ctl, see servers.py), first asked for by a test that needs it, stopped at the end."""
    dsn = os.environ.get("PIPE_TEST_PG_DSN")
    if dsn:
        yield dsn, None
        return
    server, dsn_or_why = start_postgres()
    if server is None:
        yield None, dsn_or_why
        return
    try:
        yield dsn_or_why, None
    finally:
        server.stop()


def _no_server(message: str):
    """Skip with the reason; under CI=true a server test that cannot run fails instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: .ci/run must start one)")
    pytest.skip(message)


class PgServer:
    """The test server: `database(suffix)` creates a fresh, empty database and returns its
    DSN; every database it created is dropped when the test ends."""

    def __init__(self, admin: str, prefix: str):
        self.admin, self.prefix, self.names = admin, prefix, []

    def database(self, suffix: str = "") -> str:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        name = self.prefix + (f"_{suffix}" if suffix else "")
        with psycopg.connect(self.admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}"')
            con.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        params = conninfo_to_dict(self.admin)
        params["dbname"] = name
        return make_conninfo(**params)

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as con:
            for name in self.names:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_server(request):
    """Fresh PostgreSQL databases for this test (see PgServer).

    The server is PIPE_TEST_PG_DSN's (one that lets us CREATE DATABASE) or, without it, a
    cluster the session starts. Without either the test skips with the reason, except
    under CI=true, where a skipped server test is a failure."""
    admin, why = request.getfixturevalue("_pg_admin")
    if not admin:
        _no_server(f"no PostgreSQL server for this test: {why}")
    import psycopg

    server = PgServer(admin, f"pipe_t_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}")
    try:
        psycopg.connect(admin, autocommit=True, connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        _no_server(f"PostgreSQL at PIPE_TEST_PG_DSN is not answering: {exc}")
    yield server
    server.drop_all()


@pytest.fixture
def pg_dsn(pg_server):
    """A DSN to a fresh, empty PostgreSQL database, dropped after the test."""
    return pg_server.database()


# ---------------------------------------------------------------- Spark Connect


@pytest.fixture(scope="session")
def _spark_remote():
    """('sc://...', None) of the Spark Connect server every Spark test shares, or (None,
    why there is none): PIPE_TEST_SPARK_REMOTE when set, else a local server this session
    starts from the installed pyspark (see servers.py) the first time a Spark test runs,
    stopped at the end."""
    remote = os.environ.get("PIPE_TEST_SPARK_REMOTE")
    if remote:
        yield remote, None
        return
    server, url_or_why = start_spark_connect()
    if server is None:
        yield None, url_or_why
        return
    try:
        yield url_or_why, None
    finally:
        from spark_helpers import close_sessions

        close_sessions()  # before the server goes: an open client would hang the exit
        server.stop()


@pytest.fixture
def spark_remote(request) -> str:
    """The shared Spark Connect server's URL; skips without one (fails under CI=true)."""
    remote, why = request.getfixturevalue("_spark_remote")
    if not remote:
        _no_server(f"no Spark Connect server for this test: {why}")
    return remote
