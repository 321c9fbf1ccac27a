"""The warehouse interface the executor and runner talk to; engines differ by subclass.

An Adapter is one connection. `worker()` opens another connection to the same warehouse
for a worker thread; `interrupt()` may be called from any thread to stop the statement
running on this connection. Write-audit-publish is expressed in four calls:
`create_temp` (or `create_temp_view`), checks through `query`, then one of
`publish_full`, `publish_interval`, `publish_view`, each a single transaction. The SQL
here is plain ANSI spelled through sqlglot for the adapter's dialect; a subclass
overrides a method where its engine has a better way (STYLE §6).

Capability flags tell the runner what an engine can do, never `if engine == ...`.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path

from .. import sql as sqlmod
from ..config import Target
from ..errors import ConfigError, SourceLocation

TEMP_MARK = "__pipe_tmp_"
LEDGER = "_pipe.ledger"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, what: str) -> str:
    """Replace ${VAR} from the environment; a missing variable is a ConfigError."""

    def sub(m: re.Match) -> str:
        if m[1] not in os.environ:
            raise ConfigError(f"{what} uses ${{{m[1]}}} but the environment variable {m[1]} "
                              "is not set", at=SourceLocation("pipe.yml"),
                              hint=f"export {m[1]}=... before running pipe")
        return os.environ[m[1]]

    return _ENV.sub(sub, str(value))


class AdapterError(Exception):
    """A warehouse error during a task (SQL error, lost connection): the task fails."""


class Interrupted(AdapterError):
    """The statement was interrupted (timeout or Ctrl-C)."""


class Adapter(ABC):
    dialect = "duckdb"
    #: DDL (drop, rename, create) can run inside a transaction and is invisible until commit
    transactional_ddl = True
    #: several connections can write at once
    concurrent_writers = True

    def __init__(self, target: Target, root: Path):
        self.target = target
        self.root = root
        self._staged: list[str] = []  # ledger statements for the next COMMIT

    # -- connections
    @abstractmethod
    def worker(self) -> Adapter: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def interrupt(self) -> None: ...

    # -- statements
    @abstractmethod
    def execute(self, sql: str) -> int | None:
        """Run one statement; return the affected row count when the engine gives one."""

    @abstractmethod
    def query(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run a query; return (column names, rows)."""

    def scalar(self, sql: str):
        return self.query(sql)[1][0][0]

    @contextmanager
    def transaction(self):
        """BEGIN ... COMMIT; statements staged with `stage_ledger` run just before COMMIT,
        so the record of a publish in _pipe.ledger commits with the publish itself."""
        self.execute("BEGIN")
        try:
            yield
            for statement in self._staged:
                self.execute(statement)
        except BaseException:
            try:
                self.execute("ROLLBACK")
            except AdapterError:
                pass  # the engine already ended it; the original error is what matters
            raise
        self.execute("COMMIT")
        self._staged = []

    # -- the ledger: what is published, kept in the warehouse, atomic with each publish
    def ensure_ledger(self) -> None:
        self.ensure_schema("_pipe")
        self.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} (model VARCHAR, interval_start "
                     "VARCHAR, interval_end VARCHAR, fingerprint VARCHAR, rows BIGINT)")

    def read_ledger(self) -> dict[tuple[str, str, str], str]:
        _, rows = self.query(f"SELECT model, interval_start, interval_end, fingerprint "
                             f"FROM {LEDGER}")
        return {(m, s, e): fp for m, s, e, fp in rows}

    def stage_ledger(self, key: tuple[str, str, str], fingerprint: str,
                     rows: int | None) -> None:
        """Record `key` as published by the next transaction to commit (the publish)."""
        m, s, e = (sqlmod.literal(v, self.dialect) for v in key)
        where = f"model = {m} AND interval_start = {s} AND interval_end = {e}"
        self._staged = [
            f"DELETE FROM {LEDGER} WHERE {where}",
            (f"INSERT INTO {LEDGER} VALUES ({m}, {s}, {e}, "
             f"{sqlmod.literal(fingerprint, self.dialect)}, "
             f"{'NULL' if rows is None else int(rows)})")]

    def flush_ledger(self) -> None:
        """Write a staged record no transaction took (a publish without one)."""
        if self._staged:
            with self.transaction():
                pass

    # -- names
    def q(self, table: str) -> str:
        return sqlmod.quote_table(table, self.dialect)

    def col(self, name: str) -> str:
        return sqlmod.column(name, self.dialect)

    def ts(self, value: str) -> str:
        """A timestamp literal for an ISO 'YYYY-MM-DDTHH:MM:SS' value."""
        return f"CAST('{value.replace('T', ' ')}' AS TIMESTAMP)"

    # -- catalog
    @abstractmethod
    def relation_kind(self, table: str) -> str | None:
        """'table', 'view' or None when `table` does not exist."""

    @abstractmethod
    def temp_relations(self) -> list[tuple[str, str]]:
        """Every (name, kind) whose table name carries TEMP_MARK, in any schema."""

    def ensure_schema(self, schema: str) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {sqlmod.column(schema, self.dialect)}")

    def drop(self, table: str) -> None:
        kind = self.relation_kind(table)
        if kind:
            self.execute(f"DROP {'VIEW' if kind == 'view' else 'TABLE'} {self.q(table)}")

    # -- write-audit-publish
    def create_temp(self, temp: str, select_sql: str) -> int:
        """Build `temp` from a SELECT; return its row count."""
        n = self.execute(f"CREATE TABLE {self.q(temp)} AS\n{select_sql}")
        return n if n is not None else int(self.scalar(f"SELECT count(*) FROM {self.q(temp)}"))

    def create_temp_view(self, temp: str, select_sql: str) -> None:
        self.execute(f"CREATE VIEW {self.q(temp)} AS\n{select_sql}")

    def _outside(self, time_column: str, start: str, end: str) -> str:
        c = self.col(time_column)
        return f"NOT ({c} >= {self.ts(start)} AND {c} < {self.ts(end)}) OR {c} IS NULL"

    def delete_outside(self, temp: str, time_column: str, start: str, end: str) -> int:
        """Remove the rows of `temp` outside [start, end); return how many there were."""
        n = self.execute(f"DELETE FROM {self.q(temp)} WHERE {self._outside(time_column, start, end)}")
        return int(n or 0)

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {self.q(table)}"))

    def publish_full(self, temp: str, table: str) -> None:
        """Replace `table` by `temp` in one transaction; `temp` is gone afterwards."""
        name = table.split(".", 1)[1]
        with self.transaction():
            self._drop_in_tx(table)
            self.execute(f"ALTER TABLE {self.q(temp)} RENAME TO {self.col(name)}")

    def _drop_in_tx(self, table: str) -> None:
        kind = self.relation_kind(table)
        if kind:
            self.execute(f"DROP {'VIEW' if kind == 'view' else 'TABLE'} {self.q(table)}")

    def publish_interval(self, temp: str, table: str, time_column: str, start: str,
                         end: str) -> None:
        """Replace exactly the [start, end) rows of `table` by `temp`, in one transaction."""
        kind = self.relation_kind(table)
        if kind == "view":
            self.drop(table)
            kind = None
        if kind is None:  # first interval: create the table empty, with the temp's columns
            try:
                self.execute(f"CREATE TABLE {self.q(table)} AS SELECT * FROM {self.q(temp)} "
                             "WHERE 1 = 0")
            except AdapterError:
                if self.relation_kind(table) is None:
                    raise  # not a concurrent task creating it first: a real error
        c = self.col(time_column)
        with self.transaction():
            self.execute(f"DELETE FROM {self.q(table)} WHERE {c} >= {self.ts(start)} "
                         f"AND {c} < {self.ts(end)}")
            self.execute(self.insert_sql(temp, table))
        try:
            self.drop(temp)
        except AdapterError:  # e.g. a timeout firing just now: the interval is published;
            pass              # the runner's clean_temp drops the left-over

    def insert_sql(self, temp: str, table: str) -> str:
        return f"INSERT INTO {self.q(table)} SELECT * FROM {self.q(temp)}"

    def publish_view(self, table: str, select_sql: str) -> None:
        with self.transaction():
            if self.relation_kind(table) == "table":
                self.execute(f"DROP TABLE {self.q(table)}")
            self.execute(f"CREATE OR REPLACE VIEW {self.q(table)} AS\n{select_sql}")

    def is_conflict(self, exc: AdapterError) -> bool:
        """A concurrent-write conflict: the same publish can simply be tried again."""
        return False

    @abstractmethod
    def load_seed(self, temp: str, csv_path: Path, column_types: dict[str, str]) -> int:
        """Load a CSV file into a new table `temp`; return its row count."""
