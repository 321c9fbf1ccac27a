"""The Spark warehouse of the tests: read and write a Spark Connect server directly,
without pipe (runner_helpers.Warehouse's interface).

Spark has no information_schema: relations come from SHOW DATABASES / TABLES / VIEWS, and
a pipe view over a `_pipe` physical table counts as the table it publishes (what a reader
queries). All Spark tests share one server (conftest `_spark_remote`), so `wipe()` drops
every database but `default`: an engine wipes before each project (see test_contract).
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path

import duckdb

from pipe import sql as sqlmod
from pipe.engines import SparkRules
from runner_helpers import TEMP_MARK, Warehouse, _normal, _read_csv

_VIEW_OF = re.compile(r"\bFROM\s+`?_pipe`?\.", re.IGNORECASE)
_SESSIONS: dict[tuple[str, int], object] = {}
_LOCK = threading.Lock()


def session(remote: str):
    """One Spark Connect session per thread and server (a session is cheap to keep and
    slow to create; a reader thread gets its own)."""
    from pyspark.sql.connect.session import SparkSession

    key = (remote, threading.get_ident())
    with _LOCK:
        if key not in _SESSIONS:
            s = SparkSession.builder.remote(remote).create()
            s.conf.set("spark.sql.session.timeZone", "UTC")
            # the tests' INSERT ... VALUES ('2026-06-01 01:00:00') into a timestamp column
            s.conf.set("spark.sql.storeAssignmentPolicy", "LEGACY")
            _SESSIONS[key] = s
        return _SESSIONS[key]


def close_sessions() -> None:
    """Stop every session this module opened, and any other Spark Connect client still
    open: a client left open runs cleanup RPCs at interpreter exit and, once the test
    server is gone, retries them for minutes before the process can end."""
    import gc

    with _LOCK:
        for s in _SESSIONS.values():
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - already gone is closed enough
                pass
        _SESSIONS.clear()
    try:
        from pyspark.sql.connect.client.core import SparkConnectClient
    except ImportError:
        return
    for obj in gc.get_objects():
        if isinstance(obj, SparkConnectClient) and not obj.is_closed:
            try:
                obj.close()
            except Exception:  # noqa: BLE001
                pass


class _Con:
    """A DB-API-like cursor over a session: execute() then fetchall()/fetchone()."""

    def __init__(self, spark):
        self.spark, self.rows = spark, []

    def execute(self, sql: str):
        df = self.spark.sql(sql)
        first = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        self.rows = (
            [tuple(r) for r in df.collect()]
            if first in ("SELECT", "WITH", "SHOW", "DESCRIBE", "VALUES", "(")
            else []
        )
        return self

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


class SparkWarehouse(Warehouse):
    dialect = "spark"
    cascade = ""

    def __init__(self, remote: str):
        self.remote = remote

    def ident(self, *parts: str) -> str:
        return ".".join(f"`{p}`" for p in parts)

    @contextlib.contextmanager
    def connect(self):
        yield _Con(session(self.remote))

    def _statements(self, sql: str, dialect: str | None) -> list[str]:
        if dialect is None or dialect == self.dialect:
            return [sql]
        import sqlglot

        return [
            SparkRules.rewrite(stmt).sql(dialect="spark")
            for stmt in sqlglot.parse(sql, read=dialect)
            if stmt is not None
        ]

    def load_csv(self, con, table: str, csv: Path, types: dict[str, str]) -> None:
        with duckdb.connect() as duck:
            columns = duck.execute(f"DESCRIBE SELECT * FROM {_read_csv(csv, types)}").fetchall()
            rows = duck.execute(f"SELECT * FROM {_read_csv(csv, types)}").fetchall()
        schema = ", ".join(
            f"`{name}` {sqlmod.transpile_type(dtype, 'duckdb', 'spark')}"
            for name, dtype, *_ in columns
        )
        con.spark.createDataFrame(rows, schema=schema).write.format("parquet").saveAsTable(
            table.replace("`", "")
        )

    def overwrite(self, table: str, select_sql: str) -> None:
        """No DELETE or UPDATE on Parquet tables: INSERT OVERWRITE."""
        self.execute(f"insert overwrite table {table} {select_sql}", "spark")

    def wipe(self) -> None:
        """Drop every database but `default` (and whatever is in them)."""
        with self.connect() as con:
            for (db,) in con.execute("SHOW DATABASES").fetchall():
                if db != "default":
                    con.execute(f"DROP DATABASE IF EXISTS `{db}` CASCADE")

    def relations(self) -> dict[str, str]:
        out = {}
        with self.connect() as con:
            for (db,) in con.execute("SHOW DATABASES").fetchall():
                views = {r[1] for r in con.execute(f"SHOW VIEWS IN `{db}`").fetchall() if not r[2]}
                for _, name, temporary in con.execute(f"SHOW TABLES IN `{db}`").fetchall():
                    if temporary:
                        continue
                    kind = "table"
                    if name in views:
                        text = con.execute(f"SHOW CREATE TABLE `{db}`.`{name}`").fetchone()[0]
                        kind = "table" if _VIEW_OF.search(text.split(" AS ", 1)[-1]) else "view"
                    out[f"{db}.{name}"] = kind
        return dict(sorted(out.items()))

    def contents(self, table: str) -> tuple[list[tuple], list[tuple]]:
        schema, name = table.split(".", 1)
        with self.connect() as con:
            cols = []
            for col, dtype, *_ in con.execute(f"DESCRIBE TABLE `{schema}`.`{name}`").fetchall():
                if not col or col.startswith("#"):
                    break
                cols.append((col, dtype))
            rows = con.execute(f"SELECT * FROM `{schema}`.`{name}`").fetchall()
        return cols, sorted(map(_normal, rows), key=repr)

    def snapshot(self, temp_ok: bool = False) -> dict[str, tuple]:
        out = {}
        for table, kind in self.relations().items():
            if TEMP_MARK in table:
                assert temp_ok, f"temporary table left behind: {table}"
                continue
            if not table.startswith("_pipe."):
                out[table] = (kind, *self.contents(table))
        return out
