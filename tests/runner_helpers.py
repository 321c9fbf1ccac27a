"""Helpers of the runner tests: read a DuckDB warehouse and the state store, replay a plan
directly in DuckDB (the oracle), wait on conditions without sleeping blindly.

Everything reads real files: the warehouse a run wrote, `.pipe/state.db`, plan JSON.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from conftest import run_cli

INTERVAL = "2026-06-01"
TEMP_MARK = "__pipe_tmp_"


def run(root: Path, *args: str, interval: str = INTERVAL) -> tuple[int, str]:
    """`pipe run --interval INTERVAL ARGS` in-process: (exit code, output)."""
    return run_cli(["run", "--interval", interval, "--project", root, *args])


@contextlib.contextmanager
def warehouse(root: Path, name: str = "warehouse.duckdb"):
    con = duckdb.connect(str(root / name))
    try:
        yield con
    finally:
        con.close()


def tables_of(con) -> dict[str, str]:
    """schema.name -> 'BASE TABLE' | 'VIEW' for every relation of the database."""
    rows = con.execute("SELECT table_schema, table_name, table_type FROM "
                       "information_schema.tables ORDER BY 1, 2").fetchall()
    return {f"{s}.{n}": t for s, n, t in rows}


def contents(con, table: str) -> tuple[list[tuple], list[tuple]]:
    """(columns with types, every row sorted): what a table holds, comparable as a value."""
    schema, name = table.split(".", 1)
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                       [schema, name]).fetchall()
    rows = con.execute(f'SELECT * FROM "{schema}"."{name}" ORDER BY ALL').fetchall()
    return cols, rows


def snapshot(root: Path, temp_ok: bool = False) -> dict[str, tuple]:
    """Every relation of the project's warehouse -> (kind, columns, sorted rows), but for
    pipe's own bookkeeping in schema _pipe (its ledger records publish times)."""
    if not (root / "warehouse.duckdb").exists():
        return {}
    with warehouse(root) as con:
        out = {}
        for table, kind in tables_of(con).items():
            if TEMP_MARK in table:
                assert temp_ok, f"temporary table left behind: {table}"
                continue
            if table.startswith("_pipe."):
                continue
            out[table] = (kind, *contents(con, table))
        return out


def temp_tables(root: Path) -> list[str]:
    with warehouse(root) as con:
        return [t for t in tables_of(con) if TEMP_MARK in t or "tmp" in t.split(".")[1]]


def rows(root: Path, sql: str) -> list[tuple]:
    with warehouse(root) as con:
        return con.execute(sql).fetchall()


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
    return {(m, s): (st, r) for m, s, st, r in state(
        root, "SELECT model, interval_start, status, reason FROM task_outcomes "
        "WHERE run_id = ?", (rid,))}


def statuses_by_model(root: Path, run_id: int | None = None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for (model, _), (status, _) in outcomes(root, run_id).items():
        out.setdefault(model, set()).add(status)
    return out


def attempts(root: Path, run_id: int | None = None, model: str | None = None) -> list[dict]:
    rid = run_id or last_run_id(root)
    sql = ("SELECT task_id, attempt, model, interval_start, status, started_at, finished_at, "
           "rows, leaked, error FROM attempts WHERE run_id = ?")
    params: tuple = (rid,)
    if model:
        sql += " AND model = ?"
        params += (model,)
    names = ["task_id", "attempt", "model", "interval_start", "status", "started_at",
             "finished_at", "rows", "leaked", "error"]
    return [dict(zip(names, r, strict=True)) for r in state(root, sql + " ORDER BY started_at",
                                                              params)]


def peak_overlap(spans: list[tuple[float, float]]) -> int:
    """The most [start, finish] spans open at one instant (a finish at t frees its slot
    before a start at the same t: the scheduler records the finish first)."""
    events = sorted([(s, 1) for s, _ in spans] + [(f, -1) for _, f in spans],
                    key=lambda e: (e[0], e[1]))
    peak = n = 0
    for _, delta in events:
        n += delta
        peak = max(peak, n)
    return peak


# ---------------------------------------------------------------- the oracle

def replay_plans(root: Path, plan_files: list[Path]) -> duckdb.DuckDBPyConnection:
    """Run each plan's SQL directly in a fresh in-memory DuckDB, in plan order, without
    pipe: seeds with read_csv, full models CREATE TABLE AS, incremental models INSERT
    (the plan SQL filters its interval), views CREATE VIEW. The caller closes it."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for path in plan_files:
        plan = json.loads(path.read_text())
        for task in plan["tasks"]:
            schema, name = task["table"].split(".", 1)
            target = f'"{schema}"."{name}"'
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            sql = "\n".join(task.get("sql", []))
            kind = task["kind"]
            if kind == "seed":
                types = task.get("column_types") or {}
                opt = ""
                if types:
                    opt = ", types = {" + ", ".join(f"'{k}': '{v}'" for k, v in
                                                    sorted(types.items())) + "}"
                csv = (root / task["seed_path"]).as_posix()
                con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM "
                            f"read_csv('{csv}', header = true{opt})")
            elif kind == "full":
                con.execute(f"CREATE OR REPLACE TABLE {target} AS\n{sql}")
            elif kind == "view":
                con.execute(f"CREATE OR REPLACE VIEW {target} AS\n{sql}")
            elif kind == "incremental":
                exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                     "table_schema = ? AND table_name = ?",
                                     [schema, name]).fetchone()[0]
                if exists:
                    con.execute(f"INSERT INTO {target} BY NAME\n{sql}")
                else:
                    con.execute(f"CREATE TABLE {target} AS\n{sql}")
            else:
                assert kind == "sensor", kind
    return con


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
