"""The Postgres target: configuration errors, secrets, compile-time validation of the
transpiled SQL, and the example project giving the same tables as on DuckDB.

Server tests take `pg_dsn` (a fresh database per test); they skip locally without
PIPE_TEST_PG_DSN and fail under CI=true.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from conftest import PIPE_YML, run_cli
from runner_helpers import snapshot as duckdb_snapshot
from runner_helpers import state

PG_YML = """\
name: t
start: 2026-06-01
targets:
  dev: {adapter: duckdb, path: warehouse.duckdb}
  pg: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}
"""


@pytest.mark.parametrize(
    ("sql", "line", "message"),
    [
        (
            "select x\nfrom a.base\nwhere list_transform([1], y -> y + 1) = [2]",
            3,
            "list lambdas (list_transform / x -> ...) cannot run on postgres",
        ),
        ("select {'a': 1} as s", 1, "STRUCT values"),
        ("select *\nexclude (x) from a.base", 1, "SELECT * EXCLUDE/REPLACE cannot run on postgres"),
        (
            "select x from a.base asof join a.base b on a.base.x >= b.x",
            1,
            "ASOF JOIN cannot run on postgres",
        ),
    ],
)
def test_constructs_postgres_cannot_run_are_compile_errors(write_project, sql, line, message):
    root = write_project(
        {"models/a/base.sql": "select 1 as x", "models/a/m.sql": sql}, pipe_yml=PG_YML
    )
    code, out = run_cli(
        ["compile", "--project", root, "--target", "pg", "--interval", "2026-06-01"]
    )
    assert code == 2, out
    assert f"error: models/a/m.sql:{line}: {message}" in out
    assert "Traceback" not in out
    assert not (root / "plans").exists()
    # the same models are fine on DuckDB
    assert run_cli(["compile", "--project", root, "--interval", "2026-06-01"])[0] == 0


def test_sql_postgres_does_not_parse_is_a_compile_error(write_project):
    # DuckDB's `x // y` (integer division) has no postgres spelling sqlglot knows
    root = write_project({"models/a/m.sql": "select 7 // 2 as x"}, pipe_yml=PG_YML)
    code, out = run_cli(
        ["compile", "--project", root, "--target", "pg", "--interval", "2026-06-01"]
    )
    if code == 0:  # sqlglot learnt to write it: nothing to refuse
        return
    assert code == 2
    assert "models/a/m.sql" in out and "Traceback" not in out


def test_missing_dsn_variable_names_pipe_yml_and_the_variable(write_project, monkeypatch):
    monkeypatch.delenv("PIPE_PG_DSN", raising=False)
    root = write_project({"models/a/m.sql": "select 1 as x"}, pipe_yml=PG_YML)
    code, out = run_cli(["run", "--project", root, "--target", "pg", "--interval", "2026-06-01"])
    assert code == 2
    assert out.startswith("error: pipe.yml: target 'pg' dsn uses ${PIPE_PG_DSN}")
    assert "PIPE_PG_DSN is not set" in out
    assert not (root / ".pipe" / "state.db").exists()


def test_a_password_never_appears_in_plans_or_errors(write_project, monkeypatch):
    secret = "s3cr3t-pw-271828"
    monkeypatch.setenv("PIPE_PG_DSN", f"postgresql://pipe:{secret}@127.0.0.1:1/nowhere")
    root = write_project({"models/a/m.sql": "select 1 as x"}, pipe_yml=PG_YML)
    code, out = run_cli(["run", "--project", root, "--target", "pg", "--interval", "2026-06-01"])
    assert code == 2
    assert "cannot connect to target 'pg' (postgres)" in out
    assert secret not in out
    for path in (root / "plans").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text()


@pytest.mark.parametrize(
    "dsn, secret",
    [
        ("postgresql://pipe:pa%zzsecret-1@127.0.0.1:1/nowhere", "zzsecret-1"),  # a stray %
        ("host=127.0.0.1 port=1 password=top s3cret-2 user=pipe", "s3cret-2"),  # unquoted space
        ("host=127.0.0.1 port=1 password='quoted s3cret-3' user=pipe", "s3cret-3"),
    ],
)
def test_a_password_the_driver_quotes_in_its_error_is_masked(
    write_project, monkeypatch, dsn, secret
):
    monkeypatch.setenv("PIPE_PG_DSN", dsn)
    root = write_project({"models/a/m.sql": "select 1 as x"}, pipe_yml=PG_YML)
    code, out = run_cli(["run", "--project", root, "--target", "pg", "--interval", "2026-06-01"])
    assert code == 2, out
    assert "cannot connect to target 'pg' (postgres)" in out
    assert secret not in out and "Traceback" not in out, out


def _pg_snapshot(dsn: str) -> dict[str, list[tuple]]:
    import psycopg

    out = {}
    with psycopg.connect(dsn) as con:
        rels = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE "
            "table_schema NOT IN ('pg_catalog', 'information_schema', '_pipe') "
            "ORDER BY 1, 2"
        ).fetchall()
        for schema, name in rels:
            assert "__pipe_tmp_" not in name
            cols = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s ORDER BY ordinal_position",
                    (schema, name),
                )
            ]
            rows = con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()
            out[f"{schema}.{name}"] = (cols, sorted(map(_normal, rows), key=repr))
    return out


def _normal(row) -> tuple:
    """Values as both engines agree on them: decimals and floats rounded alike."""
    return tuple(round(float(v), 6) if isinstance(v, Decimal | float) else v for v in row)


def test_example_project_gives_the_same_tables_on_duckdb_and_postgres(
    example_project, pg_dsn, monkeypatch
):
    monkeypatch.setenv("PIPE_PG_DSN", pg_dsn)
    for day in ("2026-06-01", "2026-06-02"):
        code, out = run_cli(["run", "--project", example_project, "--interval", day])
        assert code == 0, out
        code, out = run_cli(
            ["run", "--project", example_project, "--interval", day, "--target", "pg"]
        )
        assert code == 0, out
    pg = _pg_snapshot(pg_dsn)
    duck = {
        name: ([c for c, _ in cols], sorted(map(_normal, rows), key=repr))
        for name, (_, cols, rows) in duckdb_snapshot(example_project).items()
        if not name.startswith("_pipe.")
    }
    assert sorted(pg) == sorted(duck)
    for name in duck:
        assert pg[name] == duck[name], name
    # and a rerun on postgres skips everything: the ledger is in the warehouse
    code, out = run_cli(
        ["run", "--project", example_project, "--interval", "2026-06-02", "--target", "pg"]
    )
    assert code == 0
    assert "35 skipped" in out


def test_a_connection_killed_mid_task_is_replaced_for_the_retry_and_later_tasks(
    write_project, pg_dsn, monkeypatch
):
    """pg_terminate_backend (a server restart, a network blip): the retry reconnects, and
    the tasks the same worker runs afterwards do not inherit the dead connection."""
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as con:
        con.execute("create sequence public.kills")
    monkeypatch.setenv("PIPE_PG_DSN", pg_dsn)
    root = write_project(
        {
            # the first attempt kills its own connection; nextval is not rolled back
            "models/a/victim.sql": "select case when nextval('public.kills') = 1 then "
            "pg_terminate_backend(pg_backend_pid()) else true end as ok",
            "models/a/victim.yml": "retries: 1\nretry_delay: 0.01s\n",
            "models/a/after.sql": "select ok from a.victim",
            "models/a/other.sql": "select 1 as x",
        },
        pipe_yml=PIPE_YML.replace(
            "dev: {adapter: duckdb, path: warehouse.duckdb}",
            'dev: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}',
        )
        + "concurrency: 1\n",
    )
    code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    assert "RETRY a.victim" in out or "RETRY" in out, out
    assert "3 succeeded" in out, out
    with psycopg.connect(pg_dsn) as con:
        assert con.execute("select ok from a.after").fetchall() == [(True,)]


def test_a_worker_that_cannot_connect_fails_its_tasks_and_the_run_is_recorded(
    write_project, pg_dsn, monkeypatch
):
    """The server refuses a worker's connection (max_connections, a role's limit): the tasks
    fail with the server's reason, the run exits 1 and is recorded as failed (never left
    'running'), and no traceback."""
    import os

    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    role = f"pipe_limited_{os.getpid()}"
    with psycopg.connect(pg_dsn, autocommit=True) as con:
        con.execute(f"create role {role} login connection limit 1")
        con.execute(f"grant all on database {conninfo_to_dict(pg_dsn)['dbname']} to {role}")
        con.execute(f"grant create on schema public to {role}")
    try:
        monkeypatch.setenv("PIPE_PG_DSN", make_conninfo(pg_dsn, user=role))
        root = write_project(
            {"models/a/b.sql": "select 1 as x"},
            pipe_yml=PIPE_YML.replace(
                "dev: {adapter: duckdb, path: warehouse.duckdb}",
                'dev: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}',
            ),
        )
        code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
        assert code == 1, out
        assert "Traceback" not in out and "bug in pipe" not in out, out
        assert "cannot connect to target 'dev' (postgres)" in out, out
        assert "too many connections for role" in out, out
        assert state(root, "select status from runs") == [("failed",)]
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as con:
            con.execute(
                f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'"
            )
            con.execute(f"drop owned by {role}")
            con.execute(f"drop role {role}")


def test_a_republish_keeps_the_tables_grants_and_grants_in_a_sidecar_are_applied(
    write_project, pg_dsn, monkeypatch
):
    import os

    import psycopg

    reader, declared = f"pipe_reader_{os.getpid()}", f"pipe_declared_{os.getpid()}"
    with psycopg.connect(pg_dsn, autocommit=True) as con:
        for role in (reader, declared):
            con.execute(f"drop role if exists {role}")
            con.execute(f"create role {role} nologin")
    monkeypatch.setenv("PIPE_PG_DSN", pg_dsn)
    root = write_project(
        {
            "models/a/base.sql": "select 1 as x",
            "models/a/view.sql": "select x from a.base",
            "models/a/view.yml": f"kind: view\ngrants: {{select: [{declared}]}}\n",
        },
        pipe_yml=PIPE_YML.replace(
            "dev: {adapter: duckdb, path: warehouse.duckdb}",
            'dev: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}',
        ),
    )

    def can(role, table):
        with psycopg.connect(pg_dsn) as con:
            return con.execute(
                "select has_table_privilege(%s, %s, 'SELECT')", (role, table)
            ).fetchone()[0]

    try:
        code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
        assert code == 0, out
        assert can(declared, "a.view")
        with psycopg.connect(pg_dsn, autocommit=True) as con:
            con.execute(f"grant usage on schema a to {reader}")
            con.execute(f"grant select on a.base to {reader}")
        code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01", "--force"])
        assert code == 0, out
        assert can(reader, "a.base")  # carried to the new table in the publish's transaction
        assert can(declared, "a.view")
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as con:
            for role in (reader, declared):
                con.execute(f"drop owned by {role}")
                con.execute(f"drop role {role}")


def test_a_role_without_privileges_is_told_so_before_any_task(write_project, pg_dsn, monkeypatch):
    """The target's role may connect but not create the models' schema: a user error
    (exit 2) naming the target and the server's reason, not 'a bug in pipe' (exit 3)."""
    import os

    import psycopg
    from psycopg.conninfo import make_conninfo

    role = f"pipe_bare_{os.getpid()}"
    with psycopg.connect(pg_dsn, autocommit=True) as con:
        con.execute(f"create role {role} login")
    try:
        monkeypatch.setenv("PIPE_PG_DSN", make_conninfo(pg_dsn, user=role))
        root = write_project(
            {"models/a/b.sql": "select 1 as x"},
            pipe_yml=PIPE_YML.replace(
                "dev: {adapter: duckdb, path: warehouse.duckdb}",
                'dev: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}',
            ),
        )
        code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
        assert code == 2, out
        assert "Traceback" not in out and "bug in pipe" not in out, out
        [line] = [ln for ln in out.splitlines() if ln.startswith("error:")]
        assert line.startswith(
            "error: pipe.yml: target 'dev' (postgres) refused what pipe does before the "
            "run's first task: permission denied for database"
        ), out
        assert state(root, "select count(*) from runs") in ([], [(0,)])
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as con:
            con.execute(f"drop owned by {role}")
            con.execute(f"drop role {role}")
