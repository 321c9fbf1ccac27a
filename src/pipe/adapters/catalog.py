"""`Catalog`: which relations exist, as the connections of one run know it.

A run asks whether a table exists, and whether it is a table or a view, before most
statements it writes; a catalog query costs as much as a small statement, so the answers
are kept here, shared by an adapter and its workers (adapters.base.Adapter.catalog), and
changed only by the run's own transactions when they commit (the project lock keeps every
other pipe process out). Names are `schema.table` strings as pipe spells them
(names.TableName); a schema listed whole knows that a name it lacks does not exist.
"""

from __future__ import annotations

import threading
import time

from ..names import TableName


class Catalog:
    """Which relations exist, shared by the connections of one run: a name maps to
    'table' or 'view'; in a schema listed whole (`load`), a missing name does not exist.
    Transactions publish their changes here when they commit."""

    def __init__(self):
        self._lock = threading.Lock()
        self._kinds: dict[str, str] = {}
        self._complete: set[str] = set()
        self._columns: dict[str, tuple] = {}  # published tables' columns, as last read
        self._changed_at: dict[str, float] = {}  # table -> when a commit last changed it

    def lookup(self, table: str) -> tuple[bool, str | None]:
        with self._lock:
            if table in self._kinds:
                return True, self._kinds[table]
            return TableName.parse(table).schema in self._complete, None

    def apply(self, changes: dict[str, str | None]) -> None:
        now = time.monotonic()
        with self._lock:
            for table, kind in changes.items():
                self._columns.pop(table, None)
                self._changed_at[table] = now
                if kind is None:
                    self._kinds.pop(table, None)
                else:
                    self._kinds[table] = kind

    def forget(self, tables) -> None:
        with self._lock:
            now = time.monotonic()
            for table in tables:
                self._kinds.pop(table, None)
                self._columns.pop(table, None)
                self._changed_at[table] = now
                self._complete.discard(TableName.parse(table).schema)

    def columns(self, table: str) -> tuple | None:
        with self._lock:
            return self._columns.get(table)

    def remember_columns(self, table: str, columns: tuple, read_since: float) -> None:
        """Keep `columns`, read by a statement that sees what was committed before
        `read_since` (time.monotonic(); a DuckDB transaction sees what was committed
        before it began): not when the table changed since (they may be the old ones)."""
        with self._lock:
            if self._changed_at.get(table, -1.0) < read_since:
                self._columns[table] = columns

    def load(self, schemas, kinds: dict[str, str]) -> None:
        with self._lock:
            self._kinds.update(kinds)
            self._complete.update(schemas)
