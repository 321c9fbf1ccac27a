"""Helpers of the runner tests: read and write a warehouse directly (DuckDB or Postgres),
read the state store, replay a plan directly in the engine (the oracle), wait on
conditions without sleeping blindly.

Everything reads real files and databases: the warehouse a run wrote, `.pipe/state.db`,
plan JSON.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import sqlglot

from conftest import run_cli

INTERVAL = "2026-06-01"
TEMP_MARK = "__pipe_tmp_"


def run(root: Path, *args: str, interval: str = INTERVAL) -> tuple[int, str]:
    """`pipe run --interval INTERVAL ARGS` in-process: (exit code, output)."""
    return run_cli(["run", "--interval", interval, "--project", root, *args])


# ---------------------------------------------------------------- warehouses


class Warehouse:
    """A warehouse the test reads and writes directly, without pipe: one connection per
    call (a pipe subprocess may hold the file or the tables in between).

    `query` and `execute` take SQL in the project dialect (duckdb), transpiled for the
    engine like a model's; `dialect=None` runs it as written (a plan's SQL already is)."""

    dialect = "duckdb"
    cascade = " CASCADE"  # how DROP says "and what depends on it"

    def ident(self, *parts: str) -> str:
        """A quoted (schema-qualified) name in this engine's SQL."""
        return ".".join(f'"{p}"' for p in parts)

    def connect(self):
        """A context manager yielding a DB-API connection in UTC."""
        raise NotImplementedError

    def load_csv(self, con, table: str, csv: Path, types: dict[str, str]) -> None:
        """Create `table` on `con` from a CSV file typed as DuckDB infers it (a seed's
        contract)."""
        raise NotImplementedError

    def _statements(self, sql: str, dialect: str | None) -> list[str]:
        if dialect is None or dialect == self.dialect:
            return [sql]
        return sqlglot.transpile(sql, read=dialect, write=self.dialect)

    def spell(self, sql: str) -> str:
        """One statement of the project dialect, as this engine runs it."""
        [statement] = self._statements(sql, "duckdb")
        return statement

    def query(self, sql: str, dialect: str | None = "duckdb") -> list[tuple]:
        [statement] = self._statements(sql, dialect)
        with self.connect() as con:
            return con.execute(statement).fetchall()

    def execute(self, sql: str, dialect: str | None = "duckdb") -> None:
        """Run one statement or several (separated by ';')."""
        with self.connect() as con:
            for statement in self._statements(sql, dialect):
                con.execute(statement)

    def overwrite(self, table: str, select_sql: str) -> None:
        """Replace every row of `table` by those of a SELECT (project dialect)."""
        self.execute(f"delete from {table}; insert into {table} {select_sql}")

    def exists(self) -> bool:
        """False while connecting would create the warehouse (a DuckDB file)."""
        return True

    def busy_with(self, text: str) -> bool | None:
        """Whether another session runs a statement containing `text`; None when the
        engine cannot tell (an embedded one: its statements die with their process)."""
        return None

    def relations(self) -> dict[str, str]:
        """schema.name -> 'table' | 'view', for every relation but the engine's catalogs."""
        if not self.exists():
            return {}
        with self.connect() as con:
            return _relations(con)

    def temp_tables(self) -> list[str]:
        return [t for t in self.relations() if TEMP_MARK in t or "tmp" in t.split(".")[1]]

    def contents(self, table: str) -> tuple[list[tuple], list[tuple]]:
        """(columns with types, every row): what a table holds, comparable as a value.
        Rows are sorted and their numbers rounded alike (a DECIMAL or a float to 6
        places), so two warehouses of one engine compare exactly."""
        with self.connect() as con:
            return _contents(con, table)

    def snapshot(self, temp_ok: bool = False) -> dict[str, tuple]:
        """Every relation -> (kind, columns, sorted rows), but pipe's own bookkeeping in
        schema _pipe (its ledger records publish times); a temp table fails the test
        unless `temp_ok`."""
        if not self.exists():
            return {}
        out = {}
        with self.connect() as con:
            for table, kind in _relations(con).items():
                if TEMP_MARK in table:
                    assert temp_ok, f"temporary table left behind: {table}"
                    continue
                if not table.startswith("_pipe."):
                    out[table] = (kind, *_contents(con, table))
        return out


def _relations(con) -> dict[str, str]:
    rows = con.execute(
        "SELECT table_schema, table_name, table_type FROM "
        "information_schema.tables WHERE table_schema NOT IN "
        "('information_schema', 'pg_catalog') ORDER BY 1, 2"
    ).fetchall()
    return {f"{s}.{n}": "view" if t == "VIEW" else "table" for s, n, t in rows}


def _contents(con, table: str) -> tuple[list[tuple], list[tuple]]:
    schema, name = table.split(".", 1)
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE "
        f"table_schema = '{schema}' AND table_name = '{name}' "
        "ORDER BY ordinal_position"
    ).fetchall()
    rows = con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()
    return [tuple(c) for c in cols], sorted(map(_normal, rows), key=repr)


def _normal(row) -> tuple:
    return tuple(round(float(v), 6) if isinstance(v, Decimal | float) else v for v in row)


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def connect(self):
        con = duckdb.connect(str(self.path))
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def exists(self) -> bool:
        return self.path.exists()

    def load_csv(self, con, table: str, csv: Path, types: dict[str, str]) -> None:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM {_read_csv(csv, types)}")


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

    def __init__(self, dsn: str):
        self.dsn = dsn

    @contextlib.contextmanager
    def connect(self):
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, options="-c timezone=UTC") as con:
            yield con

    def busy_with(self, text: str) -> bool | None:
        return bool(
            self.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                f"state = 'active' AND pid <> pg_backend_pid() AND "
                f"strpos(lower(query), lower('{text}')) > 0",
                None,
            )[0][0]
        )

    def load_csv(self, con, table: str, csv: Path, types: dict[str, str]) -> None:
        """DuckDB reads and types the file; the rows go in by plain INSERTs (not pipe's
        COPY)."""
        with duckdb.connect() as duck:
            columns = duck.execute(f"DESCRIBE SELECT * FROM {_read_csv(csv, types)}").fetchall()
            rows = duck.execute(f"SELECT * FROM {_read_csv(csv, types)}").fetchall()
        ddl = ", ".join(
            f'"{name}" '
            + sqlglot.exp.DataType.build(dtype, dialect="duckdb").sql(dialect="postgres")
            for name, dtype, *_ in columns
        )
        con.execute(f"CREATE TABLE {table} ({ddl})")
        with con.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(columns))})", rows
            )


def _read_csv(csv: Path, types: dict[str, str]) -> str:
    opt = ""
    if types:
        opt = ", types = {" + ", ".join(f"'{k}': '{v}'" for k, v in sorted(types.items())) + "}"
    return f"read_csv('{csv.as_posix()}', header = true{opt})"


# The DuckDB file of a project whose target is the default `dev` (PIPE_YML), for the
# tests that are not about engines.


def warehouse_of(root: Path, name: str = "warehouse.duckdb") -> DuckDBWarehouse:
    return DuckDBWarehouse(root / name)


@contextlib.contextmanager
def warehouse(root: Path, name: str = "warehouse.duckdb"):
    with warehouse_of(root, name).connect() as con:
        yield con


def tables_of(con) -> dict[str, str]:
    """schema.name -> 'BASE TABLE' | 'VIEW' for every relation of the database."""
    rows = con.execute(
        "SELECT table_schema, table_name, table_type FROM information_schema.tables ORDER BY 1, 2"
    ).fetchall()
    return {f"{s}.{n}": t for s, n, t in rows}


def snapshot(root: Path, temp_ok: bool = False) -> dict[str, tuple]:
    return warehouse_of(root).snapshot(temp_ok)


def temp_tables(root: Path) -> list[str]:
    return warehouse_of(root).temp_tables()


def rows(root: Path, sql: str) -> list[tuple]:
    return warehouse_of(root).query(sql, None)


# ---------------------------------------------------------------- the state store


def state(root: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Query .pipe/state.db read-only (safe while a run writes: WAL mode)."""
    path = root / ".pipe" / "state.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        db.close()


def last_run_id(root: Path) -> int:
    return state(root, "SELECT max(run_id) FROM runs")[0][0]


def outcomes(root: Path, run_id: int | None = None) -> dict[tuple[str, str], tuple]:
    """(model, interval_start) -> (status, reason) of one run (default: the last)."""
    rid = run_id or last_run_id(root)
    return {
        (m, s): (st, r)
        for m, s, st, r in state(
            root,
            "SELECT model, interval_start, status, reason FROM task_outcomes WHERE run_id = ?",
            (rid,),
        )
    }


def statuses_by_model(root: Path, run_id: int | None = None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for (model, _), (status, _) in outcomes(root, run_id).items():
        out.setdefault(model, set()).add(status)
    return out


def attempts(root: Path, run_id: int | None = None, model: str | None = None) -> list[dict]:
    rid = run_id or last_run_id(root)
    sql = (
        "SELECT task_id, attempt, model, interval_start, status, started_at, finished_at, "
        "rows, leaked, error FROM attempts WHERE run_id = ?"
    )
    params: tuple = (rid,)
    if model:
        sql += " AND model = ?"
        params += (model,)
    names = [
        "task_id",
        "attempt",
        "model",
        "interval_start",
        "status",
        "started_at",
        "finished_at",
        "rows",
        "leaked",
        "error",
    ]
    return [
        dict(zip(names, r, strict=True)) for r in state(root, sql + " ORDER BY started_at", params)
    ]


def peak_overlap(spans: list[tuple[float, float]]) -> int:
    """The most [start, finish] spans open at one instant (a finish at t frees its slot
    before a start at the same t: the scheduler records the finish first)."""
    events = sorted(
        [(s, 1) for s, _ in spans] + [(f, -1) for _, f in spans], key=lambda e: (e[0], e[1])
    )
    peak = n = 0
    for _, delta in events:
        n += delta
        peak = max(peak, n)
    return peak


# ---------------------------------------------------------------- the oracle


def replay_plans(root: Path, plan_files: list[Path], into: Warehouse) -> None:
    """Run each plan's SQL directly in `into`, a fresh warehouse of the plans' engine, in
    plan order, without pipe: seeds from the CSV, full models CREATE TABLE AS, incremental
    models INSERT (the plan SQL filters its interval), views CREATE VIEW."""
    created = set()
    with into.connect() as con:
        for path in plan_files:
            plan = json.loads(path.read_text())
            for task in plan["tasks"]:
                schema, name = task["table"].split(".", 1)
                target = into.ident(schema, name)
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {into.ident(schema)}")
                sql = "\n".join(task.get("sql", []))
                kind = task["kind"]
                drop = f"DROP {'VIEW' if kind == 'view' else 'TABLE'} IF EXISTS {target}"
                drop += into.cascade
                if kind == "seed":
                    con.execute(drop)
                    into.load_csv(
                        con, target, root / task["seed_path"], task.get("column_types") or {}
                    )
                elif kind in ("full", "view"):
                    con.execute(drop)
                    con.execute(
                        f"CREATE {'VIEW' if kind == 'view' else 'TABLE'} {target} AS\n{sql}"
                    )
                elif kind == "incremental":
                    if target in created:
                        con.execute(f"INSERT INTO {target}\n{sql}")
                    else:
                        con.execute(f"CREATE TABLE {target} AS\n{sql}")
                    created.add(target)
                else:
                    assert kind == "sensor", kind


# ---------------------------------------------------------------- waiting


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    """Poll `predicate` until it returns something truthy (a condition, not a delay)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


class Background:
    """Run `fn` in a thread; `join()` re-raises what it raised (so a failed helper fails
    the test instead of hanging it)."""

    def __init__(self, fn: Callable[[], object]):
        self.error: BaseException | None = None
        self.value = None

        def target():
            try:
                self.value = fn()
            except BaseException as exc:  # noqa: BLE001 (re-raised in join())
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 60.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background helper did not finish"
        if self.error:
            raise self.error
        return self.value
