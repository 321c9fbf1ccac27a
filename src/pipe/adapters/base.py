"""The warehouse interface the executor and runner talk to; engines differ by subclass.

An Adapter is one connection. `worker()` opens another connection to the same warehouse
for a worker thread; `interrupt()` may be called from any thread to stop the statement
running on this connection. A task is one `transaction()`: `create_temp` (or
`create_temp_view`), checks through `query`, one of `publish_full`, `publish_interval`,
`publish_view`, and `record_published` (the ledger row), then COMMIT. Until the commit
nobody else sees any of it; a failed check or an error rolls it all back, temp table
included. The SQL here is plain ANSI spelled through sqlglot for the adapter's dialect; a
subclass overrides a method where its engine has a better way (STYLE §6).

An Adapter is also its engine's rules (engines.py: `PostgresAdapter(PostgresRules,
Adapter)`): its dialect, the names and SQL the engine refuses. Capability flags tell the
runner what an engine can do, never `if engine == ...`.

Split out of this module: the shared relation cache (catalog.py), the ledger table's
statements (ledgertable.py, a part of every Adapter) and the errors (errors.py).
"""

from __future__ import annotations

import os
import re
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path

from .. import sql as sqlmod
from ..config import Target
from ..engines import EngineRules
from ..errors import ConfigError, SourceLocation
from ..names import TableName
from .catalog import Catalog
from .errors import AdapterError
from .ledgertable import LedgerTable

TEMP_MARK = "__pipe_tmp_"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, what: str) -> str:
    """Replace ${VAR} from the environment; a missing variable is a ConfigError."""

    def sub(m: re.Match) -> str:
        if m[1] not in os.environ:
            raise ConfigError(
                f"{what} uses ${{{m[1]}}} but the environment variable {m[1]} is not set",
                at=SourceLocation("pipe.yml"),
                hint=f"export {m[1]}=... before running pipe",
            )
        return os.environ[m[1]]

    return _ENV.sub(sub, str(value))


class Adapter(LedgerTable, EngineRules, ABC):
    #: DDL (drop, rename, create) can run inside a transaction and is invisible until
    #: commit; without it the runner sweeps temp relations again at the end of a run
    transactional_ddl = True
    #: the constructor may run on another thread, while the run loads its plan (the
    #: driver releases the GIL while it connects or reads its catalog)
    opens_in_background = False
    #: `guarded_insert_sql` checks the temp table's columns inside the publish's INSERT:
    #: an incremental task whose table's columns are known lists the temp's only when
    #: that INSERT fails (one statement less a task; executor.sync_columns)
    guards_columns = False

    def __init__(self, target: Target, root: Path):
        self.target = target
        self.root = root
        self.catalog = Catalog()  # shared with this adapter's workers: see worker()
        self._pending: dict[str, str | None] = {}  # relations this transaction changed
        self._in_tx = False
        self._began = 0.0  # when the transaction began (time.monotonic())
        self.ledger_rows = 0  # rows in the ledger at the last read_ledger
        self._spelled: dict[str, str] = {}  # q(): a task spells its tables 5-6 times

    @classmethod
    def lineage_namespace(cls, target: Target, root: Path) -> tuple[str, str]:
        """(OpenLineage dataset namespace, prefix of dataset names) for this target's
        tables, following OpenLineage's naming where it names the engine; never a
        credential. Needs no connection."""
        return f"{target.adapter}://{target.name}", ""

    # -- connections
    @classmethod
    def reader(cls, target: Target, root: Path) -> Adapter | None:
        """A connection for reading the catalog only; None: the warehouse does not exist."""
        return cls(target, root)

    @abstractmethod
    def worker(self) -> Adapter: ...

    @abstractmethod
    def close(self) -> None: ...

    def healthy(self) -> bool:
        """False once the connection is known to be unusable (closed by the server)."""
        return True

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
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    # the three steps of `transaction`, for a transaction that outlives one block: a
    # worker's group of tasks at --concurrency 1 (groupcommit.py)
    def begin(self) -> None:
        self._began = time.monotonic()
        self.execute("BEGIN")
        self._in_tx = True

    def commit(self) -> None:
        """COMMIT (it may fail too: a write conflict found at commit; then it is rolled
        back and the error raised)."""
        try:
            self.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        self._in_tx = False
        self.catalog.apply(self._pending)
        self._pending = {}

    def rollback(self) -> None:
        self.catalog.forget(self._pending)  # look again rather than trust a guess
        self._pending = {}
        try:
            self.execute("ROLLBACK")
        except AdapterError:
            pass  # the engine already ended it; the original error is what matters
        finally:
            self._in_tx = False

    def send_ahead(self) -> None:
        """Send what waits to go with the next statement (ledgertext's `_ahead`): a task
        in a group ends with its own statements run, so an error in them is its own."""

    # -- names
    def q(self, table: str) -> str:
        spelled = self._spelled.get(table)
        if spelled is None:
            spelled = self._spelled[table] = sqlmod.quote_table(table, self.dialect)
        return spelled

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

    def changed(self, table: str) -> bool:
        """Whether this transaction created, altered or replaced `table`."""
        return table in self._pending

    def _changed(self, table: str, kind: str | None) -> None:
        if self._in_tx:
            self._pending[table] = kind
        else:
            self.catalog.apply({table: kind})

    def open_worker_ahead(self) -> None:
        """Start opening the first worker's connection while the run starts (a no-op
        where workers share the connection or opening one is cheap; Postgres opens it)."""

    def prefetch_seeds(self, tasks) -> None:
        """Start reading what loading these seed tasks needs, in order (a no-op where
        the engine reads the CSV itself; Postgres reads them through DuckDB)."""

    def prefetch_catalog(self, schemas) -> None:
        """List every relation of `schemas` once; the run's tasks then ask no catalog
        query. Sound under the project lock: only this process changes those schemas."""
        schemas = sorted(set(schemas))
        if not schemas:
            return
        names = ", ".join(sqlmod.literal(x, self.dialect) for x in schemas)
        _, rows = self.query(
            "SELECT table_schema, table_name, table_type FROM "
            f"information_schema.tables WHERE table_schema IN ({names})"
        )
        self.catalog.load(schemas, _kinds(rows))

    def relations(self) -> dict[str, str]:
        """Every relation of the warehouse outside the engine's own schemas: 'schema.name' ->
        'table' or 'view'. One catalog query: what a run's start needs to know (temp
        relations left behind, schemas to create, the ledger, the catalog) at once."""
        _, rows = self.query(
            "SELECT table_schema, table_name, table_type FROM "
            "information_schema.tables WHERE table_schema NOT IN "
            "('information_schema', 'pg_catalog')"
        )
        return _kinds(rows)

    def _where(self, table: str) -> str:
        """The condition of an information_schema query that picks `table`."""
        name = TableName.parse(table)
        schema, bare = (sqlmod.literal(x, self.dialect) for x in (name.schema, name.table))
        return f"table_schema = {schema} AND table_name = {bare}"

    def _relation_kind(self, table: str) -> str | None:
        """Ask the catalog: 'table', 'view' or None."""
        _, rows = self.query(
            f"SELECT table_type FROM information_schema.tables WHERE {self._where(table)}"
        )
        if not rows:
            return None
        return "view" if rows[0][0] == "VIEW" else "table"

    def columns_of(self, tables) -> dict[str, tuple[tuple[str, str], ...]]:
        """(column, type) pairs, in table order, of each of `tables` the warehouse has."""
        out = {}
        for table in tables:
            _, rows = self.query(
                "SELECT column_name, data_type FROM information_schema.columns "
                f"WHERE {self._where(table)} ORDER BY ordinal_position"
            )
            if rows:
                out[table] = tuple((str(c).lower(), str(t)) for c, t in rows)
        return out

    @classmethod
    def peek_columns(cls, target: Target, root: Path, tables) -> dict:
        """`columns_of` through a `reader` of its own, for a command that only reads
        (`pipe lineage`, for sources that declare no columns); {} when the warehouse does
        not exist or cannot be reached now. Creates nothing."""
        try:
            adapter = cls.reader(target, root)
        except Exception:  # noqa: BLE001 - a probe: whatever stops it, lineage goes without
            return {}
        if adapter is None:
            return {}
        try:
            return adapter.columns_of(tables)
        except AdapterError:
            return {}
        finally:
            adapter.close()

    def temp_relations(self, relations: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """Every (name, kind) whose table name carries TEMP_MARK, in any schema (of
        `relations`, a listing already made, when given)."""
        if relations is not None:
            return sorted(
                (n, k) for n, k in relations.items() if TEMP_MARK in TableName.listed(n).table
            )
        _, rows = self.query(
            "SELECT table_schema, table_name, table_type FROM "
            "information_schema.tables WHERE table_name LIKE '%pipe%tmp%' "
            "ORDER BY 1, 2"
        )
        return list(_kinds(row for row in rows if TEMP_MARK in row[1]).items())

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
        n = self.execute(
            f"DELETE FROM {self.q(temp)} WHERE NOT "
            f"({self._within(time_column, start, end)}) OR {c} IS NULL"
        )
        return int(n or 0)

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {self.q(table)}"))

    def publish_full(self, temp: str, table: str) -> None:
        """`temp` becomes `table` (whatever `table` was before)."""
        self.drop(table)
        renamed = self.col(TableName.parse(table).table)
        self.execute(f"ALTER TABLE {self.q(temp)} RENAME TO {renamed}")
        self._changed(temp, None)
        self._changed(table, "table")

    def publish_interval(
        self,
        temp: str,
        table: str,
        time_column: str,
        start: str,
        end: str,
        columns: tuple[tuple[str, str], ...] | None = None,
    ) -> tuple[int, int]:
        """Replace the [start, end) rows of `table` by those of `temp` (rows of `temp`
        outside the interval are left out); drop `temp`; return (rows inserted, rows the
        interval held before). The first interval creates `table` with the temp's columns.
        `columns` (engines that `guards_columns` only): `table`'s columns as last read; the
        insert fails unless `temp` has exactly these (see `guarded_insert_sql`)."""
        kind = self.relation_kind(table)
        if kind == "view":
            self.drop(table, kind)
        if kind != "table":
            self.execute(
                f"CREATE TABLE {self.q(table)} AS SELECT * FROM {self.q(temp)} WHERE 1 = 0"
            )
            self._changed(table, "table")
        within = self._within(time_column, start, end)
        replaced = self.execute(f"DELETE FROM {self.q(table)} WHERE {within}")
        insert = (
            self.insert_sql(temp, table)
            if columns is None
            else self.guarded_insert_sql(temp, table, columns)
        )
        n = self.execute(insert + f" WHERE {within}")
        self.drop(temp, "table")
        return int(n or 0), int(replaced or 0)

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, type) of each column of `table`, in order ([] when it does not exist).
        Inside a transaction it sees the transaction's own tables (a temp table)."""
        _, rows = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE {self._where(table)} ORDER BY ordinal_position"
        )
        return [(c, t) for c, t in rows]

    def table_columns(self, table: str) -> tuple[tuple[str, str], ...]:
        """`columns` of a published table, cached for the run (a table's columns change
        only through this run's own transactions, which invalidate the cache)."""
        if table in self._pending:
            return tuple(self.columns(table))
        found = self.catalog.columns(table)
        if found is None:
            # what this statement sees: what was committed before its transaction began
            since = self._began if self._in_tx else time.monotonic()
            found = tuple(self.columns(table))
            self.catalog.remember_columns(table, found, since)
        return found

    def known_columns(self, table: str) -> tuple[tuple[str, str], ...] | None:
        """`table_columns` when this run has read them already and `table` is a table
        this transaction has not changed; None otherwise (no query either way)."""
        if table in self._pending or self.relation_kind(table) != "table":
            return None
        return self.catalog.columns(table) or None

    def add_column(self, table: str, column: str, dtype: str) -> None:
        self._alter(table, f"ADD COLUMN {self.col(column)} {dtype}")

    def drop_column(self, table: str, column: str) -> None:
        self._alter(table, f"DROP COLUMN {self.col(column)}")

    def _alter(self, table: str, change: str) -> None:
        """An on_schema_change ALTER. Another worker publishing an interval of the same
        model may be making the change too, or have made it: the task is tried again (a
        conflict, `altered_first`), reading the table's columns afresh."""
        try:
            self.execute(f"ALTER TABLE {self.q(table)} {change}")
        except AdapterError as exc:
            if self.altered_first(exc):
                self.catalog.forget([table])
                exc.conflict = True
            raise
        self._changed(table, "table")

    def altered_first(self, exc: AdapterError) -> bool:
        """Whether an ALTER failed because another transaction changed the same column
        (engines say how; a genuine failure, no privilege or a view depending on the
        column, is not one)."""
        return False

    def insert_sql(self, temp: str, table: str) -> str:
        return f"INSERT INTO {self.q(table)} SELECT * FROM {self.q(temp)}"

    def guarded_insert_sql(self, temp: str, table: str, columns) -> str:
        """`insert_sql` that fails unless `temp` has exactly `columns` (by name, in any
        order): an engine that `guards_columns` overrides it."""
        raise NotImplementedError

    def publish_view(self, temp: str, table: str, select_sql: str) -> None:
        """Drop the audited temp view and (re)create `table` as a view of `select_sql`."""
        self.drop(temp, "view")
        if self.relation_kind(table) == "table":
            self.drop(table, "table")
        self.execute(f"CREATE OR REPLACE VIEW {self.q(table)} AS\n{select_sql}")
        self._changed(table, "view")

    # -- grants: engines with privileges override this (DuckDB has none)
    def apply_grants(self, table: str, grants) -> None:
        """Grant (privilege, roles) on `table`, inside the publishing transaction; a no-op
        on an engine without privileges."""
        return None

    def is_conflict(self, exc: AdapterError) -> bool:
        """A concurrent-write conflict: the same publish can simply be tried again."""
        return exc.conflict

    def is_missing_relation(self, exc: AdapterError) -> bool:
        """The statement read a table or schema that does not exist (yet): a sensor waits
        for it; any other error in its `wait_for` is a mistake that fails the sensor."""
        return False

    @abstractmethod
    def load_seed(self, temp: str, csv_path: Path, column_types: dict[str, str]) -> int:
        """Load a CSV file into a new table `temp`; return its row count."""


def _kinds(rows) -> dict[str, str]:
    """A catalog listing's (schema, name, table_type) rows as 'schema.name' -> 'table' or
    'view', in the listing's order."""
    return {str(TableName(s, n)): "view" if t == "VIEW" else "table" for s, n, t in rows}
