"""The warehouse interface the executor and runner talk to; engines differ by subclass.

An Adapter is one connection. `worker()` opens another connection to the same warehouse
for a worker thread; `interrupt()` may be called from any thread to stop the statement
running on this connection. A task is one `transaction()`: `create_temp` (or
`create_temp_view`), checks through `query`, one of `publish_full`, `publish_interval`,
`publish_view`, and `record_published` (the ledger row), then COMMIT. Until the commit
nobody else sees any of it; a failed check or an error rolls it all back, temp table
included. The SQL here is plain ANSI spelled through sqlglot for the adapter's dialect; a
subclass overrides a method where its engine has a better way (STYLE §6).

Capability flags tell the runner what an engine can do, never `if engine == ...`.
"""

from __future__ import annotations

import os
import re
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path

from .. import sql as sqlmod
from ..config import Target
from ..errors import ConfigError, SourceLocation, UserError

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

    sqlstate: str | None = None  # the engine's error code, where it has one


class Interrupted(AdapterError):
    """The statement was interrupted (timeout or Ctrl-C)."""


class Catalog:
    """Which relations exist, shared by the connections of one run: a name maps to
    'table' or 'view'; in a schema listed whole (`load`), a missing name does not exist.
    Transactions publish their changes here when they commit."""

    def __init__(self):
        self._lock = threading.Lock()
        self._kinds: dict[str, str] = {}
        self._complete: set[str] = set()

    def lookup(self, table: str) -> tuple[bool, str | None]:
        with self._lock:
            if table in self._kinds:
                return True, self._kinds[table]
            return table.split(".", 1)[0] in self._complete, None

    def apply(self, changes: dict[str, str | None]) -> None:
        with self._lock:
            for table, kind in changes.items():
                if kind is None:
                    self._kinds.pop(table, None)
                else:
                    self._kinds[table] = kind

    def forget(self, tables) -> None:
        with self._lock:
            for table in tables:
                self._kinds.pop(table, None)
                self._complete.discard(table.split(".", 1)[0])

    def load(self, schemas, kinds: dict[str, str]) -> None:
        with self._lock:
            self._kinds.update(kinds)
            self._complete.update(schemas)


class Adapter(ABC):
    dialect = "duckdb"
    #: DDL (drop, rename, create) can run inside a transaction and is invisible until commit
    transactional_ddl = True
    #: several connections can write at once
    concurrent_writers = True

    def __init__(self, target: Target, root: Path):
        self.target = target
        self.root = root
        self.catalog = Catalog()  # shared with this adapter's workers: see worker()
        self._pending: dict[str, str | None] = {}  # relations this transaction changed
        self._in_tx = False

    @classmethod
    def lineage_namespace(cls, target: Target, root: Path) -> tuple[str, str]:
        """(OpenLineage dataset namespace, prefix of dataset names) for this target's
        tables, following OpenLineage's naming where it names the engine; never a
        credential. Needs no connection."""
        return f"{target.adapter}://{target.name}", ""

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
        """BEGIN ... COMMIT, or ROLLBACK when the block raises. A task runs whole inside
        one: what it created (its temp table) vanishes with a rollback, and what it
        published appears, with its ledger row, at the commit and not before."""
        self.execute("BEGIN")
        self._in_tx = True
        try:
            yield
            self.execute("COMMIT")  # may fail too (a write conflict found at commit)
        except BaseException:
            self.catalog.forget(self._pending)  # look again rather than trust a guess
            self._pending = {}
            try:
                self.execute("ROLLBACK")
            except AdapterError:
                pass  # the engine already ended it; the original error is what matters
            raise
        finally:
            self._in_tx = False
        self.catalog.apply(self._pending)
        self._pending = {}

    # -- the ledger: what is published, kept in the warehouse, atomic with each publish
    # The ledger is append-only (an upsert costs 2-3x an insert, and the publish path is
    # hot): the latest row of a key wins; `compact_ledger` folds the history away.
    def ensure_ledger(self) -> None:
        self.ensure_schema("_pipe")
        self.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} (model VARCHAR NOT NULL, "
                     "interval_start VARCHAR NOT NULL, interval_end VARCHAR NOT NULL, "
                     "fingerprint VARCHAR NOT NULL, rows BIGINT, published_at "
                     "DOUBLE PRECISION NOT NULL)")

    def read_ledger(self) -> dict[tuple[str, str, str], str]:
        """(model, start, end) -> fingerprint of the latest publish of each key."""
        _, rows = self.query(f"SELECT model, interval_start, interval_end, fingerprint "
                             f"FROM {LEDGER} ORDER BY published_at")
        return {(m, s, e): fp for m, s, e, fp in rows}

    def compact_ledger(self) -> int:
        """Delete superseded ledger rows; return how many."""
        with self.transaction():
            n = self.execute(
                f"DELETE FROM {LEDGER} WHERE published_at < (SELECT max(l.published_at) FROM "
                f"{LEDGER} AS l WHERE l.model = {LEDGER}.model AND l.interval_start = "
                f"{LEDGER}.interval_start AND l.interval_end = {LEDGER}.interval_end)")
        return int(n or 0)

    def record_published(self, key: tuple[str, str, str], fingerprint: str,
                         rows: int | None) -> None:
        """Append the ledger row of `key`; call inside the publishing transaction."""
        values = ", ".join(sqlmod.literal(v, self.dialect) for v in (*key, fingerprint))
        self.execute(f"INSERT INTO {LEDGER} VALUES ({values}, "
                     f"{'NULL' if rows is None else int(rows)}, {time.time()!r})")

    # -- names
    def q(self, table: str) -> str:
        return sqlmod.quote_table(table, self.dialect)

    def col(self, name: str) -> str:
        return sqlmod.column(name, self.dialect)

    def ts(self, value: str) -> str:
        """A timestamp literal for an ISO 'YYYY-MM-DDTHH:MM:SS' value."""
        return f"CAST('{value.replace('T', ' ')}' AS TIMESTAMP)"

    # -- catalog
    def relation_kind(self, table: str) -> str | None:
        """'table', 'view' or None when `table` does not exist. Answered from this
        transaction's own changes, then the shared catalog, then the engine's catalog (a
        catalog query costs as much as a small statement, on every task)."""
        if table in self._pending:
            return self._pending[table]
        known, kind = self.catalog.lookup(table)
        if not known:
            kind = self._relation_kind(table)
            self.catalog.apply({table: kind} if kind else {})
        return kind

    def _changed(self, table: str, kind: str | None) -> None:
        if self._in_tx:
            self._pending[table] = kind
        else:
            self.catalog.apply({table: kind})

    def prefetch_catalog(self, schemas) -> None:
        """List every relation of `schemas` once; the run's tasks then ask no catalog
        query. Sound under the project lock: only this process changes those schemas."""
        schemas = sorted(set(schemas))
        if not schemas:
            return
        names = ", ".join(sqlmod.literal(x, self.dialect) for x in schemas)
        _, rows = self.query("SELECT table_schema, table_name, table_type FROM "
                             f"information_schema.tables WHERE table_schema IN ({names})")
        self.catalog.load(schemas, {f"{sch}.{n}": "view" if t == "VIEW" else "table"
                                    for sch, n, t in rows})

    def _relation_kind(self, table: str) -> str | None:
        """Ask the catalog: 'table', 'view' or None."""
        schema, name = (sqlmod.literal(x, self.dialect) for x in table.split(".", 1))
        _, rows = self.query("SELECT table_type FROM information_schema.tables "
                             f"WHERE table_schema = {schema} AND table_name = {name}")
        if not rows:
            return None
        return "view" if rows[0][0] == "VIEW" else "table"

    def columns_of(self, tables) -> dict[str, tuple[tuple[str, str], ...]]:
        """(column, type) pairs, in table order, of each of `tables` the warehouse has."""
        out = {}
        for table in tables:
            schema, name = (sqlmod.literal(x, self.dialect) for x in table.split(".", 1))
            _, rows = self.query("SELECT column_name, data_type FROM information_schema.columns "
                                 f"WHERE table_schema = {schema} AND table_name = {name} "
                                 "ORDER BY ordinal_position")
            if rows:
                out[table] = tuple((str(c).lower(), str(t)) for c, t in rows)
        return out

    @classmethod
    def peek_columns(cls, target: Target, root: Path, tables) -> dict:
        """`columns_of` through a connection of its own, for a command that only reads
        (`pipe lineage`, for sources that declare no columns); {} when the warehouse
        cannot be reached. Creates nothing."""
        try:
            adapter = cls(target, root)
        except (AdapterError, UserError):
            return {}
        try:
            return adapter.columns_of(tables)
        except AdapterError:
            return {}
        finally:
            adapter.close()

    def temp_relations(self) -> list[tuple[str, str]]:
        """Every (name, kind) whose table name carries TEMP_MARK, in any schema."""
        _, rows = self.query("SELECT table_schema, table_name, table_type FROM "
                             "information_schema.tables WHERE table_name LIKE '%pipe%tmp%' "
                             "ORDER BY 1, 2")
        return [(f"{s}.{n}", "view" if t == "VIEW" else "table") for s, n, t in rows
                if TEMP_MARK in n]

    def ensure_schema(self, schema: str) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {sqlmod.column(schema, self.dialect)}")

    def drop(self, table: str, kind: str | None = None) -> None:
        """Drop `table` if it exists (`kind` when known saves a catalog query)."""
        kind = kind or self.relation_kind(table)
        if kind:
            self.execute(f"DROP {'VIEW' if kind == 'view' else 'TABLE'} {self.q(table)}")
        self._changed(table, None)

    # -- write-audit-publish, each statement inside the task's transaction
    def create_temp(self, temp: str, select_sql: str) -> int:
        """Build `temp` from a SELECT; return its row count."""
        n = self.execute(f"CREATE TABLE {self.q(temp)} AS\n{select_sql}")
        self._changed(temp, "table")
        return n if n is not None else int(self.scalar(f"SELECT count(*) FROM {self.q(temp)}"))

    def create_temp_view(self, temp: str, select_sql: str) -> None:
        self.execute(f"CREATE VIEW {self.q(temp)} AS\n{select_sql}")
        self._changed(temp, "view")

    def _within(self, time_column: str, start: str, end: str) -> str:
        c = self.col(time_column)
        return f"{c} >= {self.ts(start)} AND {c} < {self.ts(end)}"

    def delete_outside(self, temp: str, time_column: str, start: str, end: str) -> int:
        """Remove the rows of `temp` outside [start, end); return how many there were."""
        c = self.col(time_column)
        n = self.execute(f"DELETE FROM {self.q(temp)} WHERE NOT "
                         f"({self._within(time_column, start, end)}) OR {c} IS NULL")
        return int(n or 0)

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {self.q(table)}"))

    def publish_full(self, temp: str, table: str) -> None:
        """`temp` becomes `table` (whatever `table` was before)."""
        self.drop(table)
        self.execute(f"ALTER TABLE {self.q(temp)} RENAME TO {self.col(table.split('.', 1)[1])}")
        self._changed(temp, None)
        self._changed(table, "table")

    def publish_interval(self, temp: str, table: str, time_column: str, start: str,
                         end: str) -> int:
        """Replace the [start, end) rows of `table` by those of `temp` (rows of `temp`
        outside the interval are left out); drop `temp`; return the rows inserted. The
        first interval creates `table` with the temp's columns."""
        kind = self.relation_kind(table)
        if kind == "view":
            self.drop(table, kind)
        if kind != "table":
            self.execute(f"CREATE TABLE {self.q(table)} AS SELECT * FROM {self.q(temp)} "
                         "WHERE 1 = 0")
            self._changed(table, "table")
        within = self._within(time_column, start, end)
        self.execute(f"DELETE FROM {self.q(table)} WHERE {within}")
        n = self.execute(self.insert_sql(temp, table) + f" WHERE {within}")
        self.drop(temp, "table")
        return int(n or 0)

    def insert_sql(self, temp: str, table: str) -> str:
        return f"INSERT INTO {self.q(table)} SELECT * FROM {self.q(temp)}"

    def publish_view(self, temp: str, table: str, select_sql: str) -> None:
        """Drop the audited temp view and (re)create `table` as a view of `select_sql`."""
        self.drop(temp, "view")
        if self.relation_kind(table) == "table":
            self.drop(table, "table")
        self.execute(f"CREATE OR REPLACE VIEW {self.q(table)} AS\n{select_sql}")
        self._changed(table, "view")

    def is_conflict(self, exc: AdapterError) -> bool:
        """A concurrent-write conflict: the same publish can simply be tried again."""
        return False

    @abstractmethod
    def load_seed(self, temp: str, csv_path: Path, column_types: dict[str, str]) -> int:
        """Load a CSV file into a new table `temp`; return its row count."""
