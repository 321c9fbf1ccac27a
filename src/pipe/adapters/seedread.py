"""Seed CSVs as DuckDB reads them, for an engine that loads the rows itself (Postgres).

The seed contract is DuckDB's CSV reading (its dialect sniffing, types and NULLs) on every
target, so the Postgres adapter reads each seed through an in-memory DuckDB and COPYs the
rows in. Reading a 1,000-row seed costs DuckDB 35-45 ms of CPU, and opening an in-memory
database another 10-20 ms (DuckDB 2.0.1, 2 vCPUs), so a run's seeds were a quarter of a
200-model Postgres run at concurrency 1 (issue 14). Here, per run (one `SeedReader` shared
by an adapter and its workers):

- one in-memory database, opened once; each read gets a cursor of its own (a connection
  to that database: one per thread);
- `prefetch` reads the seeds a run is about to load, in order, on a thread: DuckDB reads
  without the GIL, so the next seed is read while the worker COPYs this one into Postgres.
  A worker that asks for a seed the thread has not started reads it itself.

A seed read ahead is used only when its file has the same size, mtime and ctime as when it
was read; otherwise it is read again. A read that failed ahead is made again by the task,
which reports it as before. Files above `AHEAD_BYTES` together are not read ahead (their
rows would wait in memory).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

AHEAD_BYTES = 16 * 1024 * 1024  # the seeds read ahead, at most, in bytes of CSV (their rows
# take several times that in memory until their tasks run)

Key = tuple[str, tuple[tuple[str, str], ...]]


def _key(csv_path: Path, column_types: dict[str, str]) -> Key:
    return os.path.abspath(csv_path), tuple(sorted(column_types.items()))


def _stat(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


class _Slot:
    """One seed to read ahead: queued, then read (`done` set), unless its task comes
    first and reads it itself."""

    def __init__(self):
        self.state = "queued"  # queued | reading | done
        self.done = threading.Event()
        self.result = None  # (columns, rows, stat before the read), or None: read again


class SeedReader:
    """Reads seed CSVs through one in-memory DuckDB database (see the module docstring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._db = None
        self._slots: dict[Key, _Slot] = {}
        self._order: list[Key] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def _cursor(self):
        from .duckdb import duckdb  # only seeds need it: not on every start

        with self._lock:
            if self._db is None:
                self._db = duckdb.connect()
            return self._db.cursor()

    def _read_now(self, key: Key):
        """(columns as (name, DuckDB type), rows): `duckdb.Error` when DuckDB cannot."""
        from .duckdb import read_csv

        path, types = key
        con = self._cursor()
        try:
            rel = con.execute(f"SELECT * FROM {read_csv(Path(path), dict(types))}")
            cols = [(d[0], str(d[1])) for d in rel.description]
            return cols, rel.fetchall()
        finally:
            con.close()

    def read(self, csv_path: Path, column_types: dict[str, str]):
        """The seed's (columns, rows): read ahead when it was, else now."""
        key = _key(csv_path, column_types)
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None and slot.state == "queued":
                del self._slots[key]  # the thread skips it: read here, beside it
                slot = None
        if slot is not None:
            slot.done.wait()
            with self._lock:
                self._slots.pop(key, None)
            found = slot.result
            if found is not None and found[2] == _stat(key[0]):
                return found[0], found[1]
        return self._read_now(key)

    def prefetch(self, seeds) -> None:
        """Read these (csv path, column types) ahead, in order, on a thread."""
        total = 0
        with self._lock:
            for csv_path, column_types in seeds:
                key = _key(csv_path, column_types)
                size = (_stat(key[0]) or (0,))[0]
                if key in self._slots or total + size > AHEAD_BYTES:
                    continue
                total += size
                self._slots[key] = _Slot()
                self._order.append(key)
            if not self._order or self._thread is not None:
                return
            # not a daemon: DuckDB must not be reading when the interpreter ends
            self._thread = threading.Thread(target=self._ahead, name="pipe-seeds")
            self._thread.start()

    def _ahead(self) -> None:
        while True:
            with self._lock:
                slot = None
                while self._order and not self._closed:
                    key = self._order.pop(0)
                    slot = self._slots.get(key)
                    if slot is not None and slot.state == "queued":
                        break
                    slot = None
                if slot is None:
                    self._order.clear()
                    self._thread = None
                    return
                slot.state = "reading"
            try:
                before = _stat(key[0])
                cols, rows = self._read_now(key)
                slot.result = (cols, rows, before)
            except Exception:  # noqa: BLE001 - the task reads it again and says why
                slot.result = None
            finally:
                slot.state = "done"
                slot.done.set()

    def close(self) -> None:
        """Stop reading ahead (after the seed being read) and close the database."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            db, self._db = self._db, None
            self._slots.clear()
        if db is not None:
            db.close()
