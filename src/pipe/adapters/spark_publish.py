"""Write-audit-publish on Spark, in as few Spark Connect round trips as it can be done.

Every statement is a round trip through the server's analyzer and the Hive metastore
(50-150 ms even when it does nothing), so a task sends what it must and no more:

- **build**: one write with an observation (`DataFrame.observe`): the build table's row
  count arrives with the write's own response, no `count(*)` job;
- **checks**: the temp view they read (`schema.x__pipe_tmp_id`) is created only when a
  query names it, so a model without checks never has one;
- **publish**: the statements that publish (rename the build table into the model's next
  version, repoint the view, drop the versions no reader can still be scanning, drop the
  temp) are queued and sent, with the task's ledger row last, as **one SQL script** when
  the task ends (`BEGIN ...; ...; END`: executed in order, stopping at the first error;
  statements one by one on a server without SQL scripting). Any other statement the task
  sends first sends the queue, so statements run in the order they were asked for;
- **ledger rows** are table properties (spark_ledger.py: a metastore operation, not a
  Spark job), set under one lock (setting properties reads and writes back the table's
  whole set); a worker that finds others waiting for it commits their queued publishes and
  rows with its own, in one script ending in one statement setting all their rows (a
  group commit), each task still returning only once its row is written;
- **catalog**: what `_pipe` holds is listed once at the run's start and then tracked here,
  not asked with `SHOW TABLES` per task.

A model's publishes hold its lock from the first read of its table until their script has
run, so an interval's new version is always built from the previous one.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..names import TableName
from .errors import AdapterError
from .spark_names import PHYSICAL, flat, physical

_TOKENS = itertools.count(1)
_OBSERVATIONS = itertools.count(1)
_NEW = "__pipe_new"  # marks the temp's rows in an interval's rebuild; never written


@dataclass
class _Unit:
    """One task's commit: its queued statements and ledger rows (`'key' = 'value'` properties)."""

    statements: list[str]
    rows: list[str]
    done: bool = False
    error: AdapterError | None = None


class Shared:
    """What an adapter and its workers share: the physical table each model's view points
    to, the names `_pipe` holds (None until listed), one lock per model, the commits
    waiting for the ledger lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ledger_lock = threading.Lock()
        self.published: dict[str, str] = {}
        self.physical: set[str] | None = None
        self.model_locks: dict[str, threading.Lock] = {}
        self.waiting: list[_Unit] = []
        self.scripting = True  # until the server says it has no SQL scripting

    def model_lock(self, table: str) -> threading.Lock:
        with self.lock:
            return self.model_locks.setdefault(table, threading.Lock())

    def listed(self, names) -> None:
        with self.lock:
            self.physical = {n.lower() for n in names}

    def track(self, added=(), removed=()) -> None:
        with self.lock:
            if self.physical is not None:
                self.physical.difference_update(TableName.parse(n).table for n in removed)
                self.physical.update(TableName.parse(n).table for n in added)


@dataclass
class _Task:
    """One transaction's own state: its builds, its lazy temp views, its queue."""

    builds: dict[str, str] = field(default_factory=dict)  # temp -> build table
    lazy: dict[str, str] = field(default_factory=dict)  # temp -> view SQL, not yet created
    views: list[str] = field(default_factory=list)  # temp views created
    columns: dict[str, list] = field(default_factory=dict)  # temp -> (name, type)
    queue: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    locks: list[threading.Lock] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)


class SparkPublishing:
    """The write-audit-publish half of SparkAdapter (spark.py has the session, the
    statements, the ledger's upkeep and the catalog)."""

    # -- the task: a transaction of queued statements
    @contextmanager
    def transaction(self):
        """No transactions on Spark: what the task publishes is queued and sent as one
        script at its end (see the module docstring); what a failed task built is dropped
        here instead of rolled back."""
        self._task = task = _Task()
        try:
            yield
            self._flush()
        except BaseException:
            self._task = None
            self._undo(task)
            raise
        finally:
            self._task = None
            for lock in reversed(task.locks):
                lock.release()

    def _undo(self, task: _Task) -> None:
        if task.touched:  # it failed publishing: its script may have stopped half-way
            with self.shared.lock:
                for table in task.touched:
                    self.shared.published.pop(table, None)
                self.shared.physical = None  # list `_pipe` again when next needed
            self.catalog.forget(task.touched)
        self.catalog.apply(dict.fromkeys({*task.builds, *task.lazy, *task.views}))
        statements = [f"DROP VIEW IF EXISTS {self.q(v)}" for v in task.views]
        statements += [f"DROP TABLE IF EXISTS {self.q(b)}" for b in task.builds.values()]
        try:
            self._script(statements)
        except AdapterError:
            pass  # the next run's clean_temp sweeps them

    def _queue(self, *statements: str) -> None:
        if self._task is None:
            self._script(list(statements))
        else:
            self._task.queue.extend(statements)

    def _hold(self, table: str) -> None:
        """Hold `table`'s publish lock until the task's script has run."""
        lock = self.shared.model_lock(table)
        if self._task is None:
            return
        if lock not in self._task.locks:
            lock.acquire()
            self._task.locks.append(lock)

    def _flush(self) -> None:
        """Send the queued statements (and ledger rows: a group commit) now."""
        task = self._task
        if task is None or not (task.queue or task.rows):
            return
        unit = _Unit(task.queue, task.rows)
        task.queue, task.rows = [], []
        if not unit.rows:
            return self._script(unit.statements)
        shared = self.shared
        with shared.lock:
            shared.waiting.append(unit)
        with shared.ledger_lock:
            if not unit.done:
                with shared.lock:
                    batch, shared.waiting = shared.waiting, []
                self._commit(batch)
        if unit.error is not None:
            raise unit.error

    def _commit(self, batch: list[_Unit]) -> None:
        """The batch's statements then one statement setting their rows; unit by unit when the
        batch fails, so one task's error is not another's."""
        try:
            self._script(
                [s for u in batch for s in u.statements]
                + [self._ledger_append([r for u in batch for r in u.rows])]
            )
        except AdapterError as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for u in batch:
                    try:
                        self._script([*u.statements, self._ledger_append(u.rows)])
                    except AdapterError as one:
                        u.error = one
        for u in batch:
            u.done = True

    # -- names
    def _build_table(self, temp: str) -> str:
        return physical(flat(TableName.parse(temp)))

    def _version_prefix(self, table: str) -> str:
        return f"{flat(TableName.parse(table))}__v"

    def _new_version(self, table: str) -> str:
        token = f"{time.time_ns():016x}{os.getpid() % 0x10000:04x}{next(_TOKENS) % 0x10000:04x}"
        return physical(f"{self._version_prefix(table)}{token}")

    def _versions(self, table: str) -> list[str]:
        """The physical versions of `table` in `_pipe`: tracked since the run's listing,
        asked with SHOW TABLES without one."""
        prefix = self._version_prefix(table)
        with self.shared.lock:
            names = None if self.shared.physical is None else list(self.shared.physical)
        if names is None:
            names = self._show("TABLES", PHYSICAL, prefix + "*")
        version = re.compile(re.escape(prefix) + "[0-9a-f]{24}")
        return sorted(physical(n) for n in names if version.fullmatch(n))

    # -- build
    def _write(self, table: str, select_sql: str, metrics: dict[str, str], keep=None) -> dict:
        """Write the rows of `select_sql` (those `keep` selects) into a new Parquet table;
        return `metrics`, aggregates over every row of `select_sql`, from the write itself."""
        from pyspark.sql.connect import functions as F
        from pyspark.sql.connect.observation import Observation

        def write():
            frame = self._frame(select_sql)
            seen = Observation(f"pipe_{next(_OBSERVATIONS)}") if metrics else None
            if seen is not None:
                frame = frame.observe(seen, *[F.expr(e).alias(n) for n, e in metrics.items()])
            if keep is not None:
                frame = frame.filter(keep).drop(_NEW)
            frame.write.format("parquet").saveAsTable(self.q(table))
            return seen.get if seen is not None else {}

        got = self._call(write)
        self.shared.track(added=[table])
        return {n: int(got.get(n) or 0) for n in metrics}

    def _frame(self, select_sql: str):
        """A DataFrame of `select_sql` without a round trip (spark.sql() analyses it at
        once); spark.sql() where the client's plan classes differ."""
        try:
            from pyspark.sql.connect.dataframe import DataFrame
            from pyspark.sql.connect.plan import SQL

            return DataFrame(SQL(select_sql, None, None, None), self.spark)
        except (ImportError, TypeError):
            return self.spark.sql(select_sql)

    def create_temp(self, temp: str, select_sql: str) -> int:
        build = self._build_table(temp)
        self._built(temp, build)
        rows = self._write(build, select_sql, {"rows": "count(1)"})["rows"]
        self._view_later(temp, f"SELECT * FROM {self.q(build)}")
        return rows

    def create_temp_view(self, temp: str, select_sql: str) -> None:
        self._view_later(temp, select_sql)

    def _built(self, temp: str, build: str) -> None:
        if self._task is not None:
            self._task.builds[temp] = build

    def _view_later(self, temp: str, select_sql: str) -> None:
        """The temp view the checks read, created when a query names it (now, outside a
        task)."""
        if self._task is None:
            self.execute(f"CREATE OR REPLACE VIEW {self.q(temp)} AS\n{select_sql}")
        else:
            self._task.lazy[temp] = select_sql
        self._changed(temp, "view")

    def _materialise(self, sql: str) -> None:
        """Create the lazy temp views `sql` reads (their names carry TEMP_MARK: unique)."""
        task = self._task
        if task is None or not task.lazy:
            return
        low = sql.lower()
        for temp in [t for t in task.lazy if TableName.parse(t).table.lower() in low]:
            self._create_lazy(temp)

    def _create_lazy(self, temp: str) -> None:
        task = self._task
        if task is not None and temp in task.lazy:
            view = task.lazy.pop(temp)
            task.views.append(temp)
            self.execute(f"CREATE OR REPLACE VIEW {self.q(temp)} AS\n{view}")

    def _drop_temp(self, temp: str) -> list[str]:
        """The statements that drop a task's temp view and build table."""
        task = self._task
        out = []
        if task is not None:
            task.lazy.pop(temp, None)
            if temp in task.views:
                task.views.remove(temp)
                out.append(f"DROP VIEW IF EXISTS {self.q(temp)}")
            build = task.builds.pop(temp, None)
            if build:
                out.append(f"DROP TABLE IF EXISTS {self.q(build)}")
                self.shared.track(removed=[build])
        self._changed(temp, None)
        return out

    def delete_outside(self, temp: str, time_column: str, start: str, end: str) -> int:
        """The temp view narrows to the interval (no DELETE on Parquet; no copy either)."""
        within = self._within(time_column, start, end)
        build = self._build_table(temp)
        outside = int(
            self.scalar(f"SELECT count(*) FROM {self.q(build)} WHERE NOT coalesce({within}, false)")
        )
        self._view_later(temp, f"SELECT * FROM {self.q(build)} WHERE {within}")
        return outside

    # -- publish
    def _current(self, table: str) -> str | None:
        return self._view_target(table) if self.relation_kind(table) == "table" else None

    def _repoint(self, table: str, physical: str, previous: str | None, first=()) -> None:
        """Queue the one operation readers notice, the view now selecting from `physical`,
        after `first`; a table in the way (not pipe's) is dropped before, versions older
        than `previous` after (a reader may still scan `previous`)."""
        kind = self.relation_kind(table)
        statements = list(first)
        if previous is None and kind == "table":
            statements.append(f"DROP TABLE {self.q(table)}")
        verb = "ALTER VIEW" if previous is not None or kind == "view" else "CREATE VIEW"
        statements.append(f"{verb} {self.q(table)} AS\nSELECT * FROM {self.q(physical)}")
        old = [v for v in self._versions(table) if v not in {physical, previous}]
        statements += [f"DROP TABLE IF EXISTS {self.q(v)}" for v in old]
        self._queue(*statements)
        self.shared.track(added=[physical], removed=old)
        with self.shared.lock:
            self.shared.published[table] = physical
        if self._task is not None:
            self._task.touched.add(table)
        self._changed(table, "table")

    def publish_full(self, temp: str, table: str) -> None:
        version = self._new_version(table)
        build = self._task.builds.get(temp) if self._task else None
        if build is None:  # a --full-refresh shadow: a pipe view over its versions
            return self._swap_in(temp, table, version)
        self._hold(table)
        previous = self._current(table)
        first = self._drop_temp(temp)[:-1]  # the temp view; the build is renamed
        first.append(f"ALTER TABLE {self.q(build)} RENAME TO {self.q(version)}")
        self._repoint(table, version, previous, first)

    def _swap_in(self, shadow: str, table: str, version: str) -> None:
        """The shadow's current version becomes a version of `table` (a rename), the view
        `table` is repointed to it, then the shadow goes. A crash in between leaves the
        table as it was, or repointed with the shadow left for the next run to sweep."""
        self._hold(table)
        previous = self._current(table)
        built = self._view_target(shadow)
        self.shared.track(removed=[built])
        rename = f"ALTER TABLE {self.q(built)} RENAME TO {self.q(version)}"
        self._repoint(table, version, previous, [rename])
        with self.shared.lock:
            self.shared.published.pop(shadow, None)
        self.drop(shadow, "table")

    def publish_interval(
        self, temp: str, table: str, time_column: str, start: str, end: str
    ) -> tuple[int, int]:
        """The next version: the table's rows outside the interval and the temp's inside
        it, written by one job that also counts the rows replaced and inserted."""
        within = self._within(time_column, start, end)
        build = self._build_table(temp)
        version = self._new_version(table)
        self._hold(table)
        kind = self.relation_kind(table)
        previous = self._current(table)
        if kind == "view":
            self.drop(table, kind)
        if kind != "table":
            select, keep = f"SELECT * FROM {self.q(build)} WHERE {within}", None
            metrics = {"inserted": "count(1)"}
        else:
            have = list(self.table_columns(table))
            mine = self._task.columns.get(temp) if self._task else None
            names = [c for c, _ in (mine or self.columns(temp))]
            kept = ", ".join(self.col(c) for c, _ in have)
            select = (
                f"SELECT {kept}, false AS {_NEW} FROM {self.q(table)}\nUNION ALL\n"
                f"SELECT {self._select_into(names, have)}, true AS {_NEW} "
                f"FROM {self.q(build)} WHERE {within}"
            )
            old_inside = f"(NOT {_NEW} AND coalesce({within}, false))"
            keep = f"NOT {old_inside}"
            metrics = {
                "inserted": f"count_if({_NEW})",
                "replaced": f"count_if({old_inside})",
            }
        got = self._write(version, select, metrics, keep)
        self._repoint(table, version, previous, self._drop_temp(temp))
        if kind == "table":  # just written, under the model's publish lock: current
            self.catalog.remember_columns(table, tuple(have), time.monotonic())
        return got["inserted"], got.get("replaced", 0)

    def _select_into(self, names, table_columns) -> str:
        """The temp's columns in the table's order, NULL for a table column it lacks (an
        `on_schema_change: append_new_columns` table keeps a column the model dropped)."""
        have = {n.lower() for n in names}
        return ", ".join(
            self.col(c) if c.lower() in have else f"CAST(NULL AS {t}) AS {self.col(c)}"
            for c, t in table_columns
        )

    def columns(self, table: str) -> list[tuple[str, str]]:
        """DESCRIBE: a task's temp through its build table (its view may not exist)."""
        build = self._task.builds.get(table) if self._task else None
        if build is None and self.relation_kind(table) is None:
            return []
        _, rows = self.query(f"DESCRIBE TABLE {self.q(build or table)}")
        out = []
        for name, dtype, *_ in rows:
            if not name or name.startswith("#"):
                break  # partition and detail sections follow the columns
            out.append((name, dtype))
        if build is not None:
            self._task.columns[table] = out
        return out

    def add_column(self, table: str, column: str, dtype: str) -> None:
        """A new version of the table with the column (NULL in the rows it has), swapped in
        as every publish is: readers see the old columns or the new ones."""
        added = f"CAST(NULL AS {dtype}) AS {self.col(column)}"
        self._rewrite_columns(table, lambda names: [*map(self.col, names), added])

    def drop_column(self, table: str, column: str) -> None:
        low = column.lower()  # Spark's names are case-insensitive
        self._rewrite_columns(table, lambda names: [self.col(n) for n in names if n.lower() != low])

    def _rewrite_columns(self, table: str, select) -> None:
        version = self._new_version(table)
        self._hold(table)
        previous = self._current(table)
        names = [name for name, _ in self.columns(table)]
        self._write(version, f"SELECT {', '.join(select(names))} FROM {self.q(table)}", {})
        self._repoint(table, version, previous)
        self._flush()  # what follows reads the table's new columns

    def publish_view(self, temp: str, table: str, select_sql: str) -> None:
        self._hold(table)
        kind = self.relation_kind(table)
        previous = self._current(table) if kind == "table" else None
        if kind == "table" and previous is None:
            self._create_lazy(temp)  # the SQL fails here, before the table in the way goes
        statements = self._drop_temp(temp)
        if kind == "table" and previous is None:
            statements.append(f"DROP TABLE {self.q(table)}")
        verb = "ALTER VIEW" if previous is not None or kind == "view" else "CREATE VIEW"
        statements.append(f"{verb} {self.q(table)} AS\n{select_sql}")
        old = self._versions(table) if previous else []
        statements += [f"DROP TABLE IF EXISTS {self.q(v)}" for v in old]
        self._queue(*statements)
        self.shared.track(removed=old)
        with self.shared.lock:
            self.shared.published.pop(table, None)
        if self._task is not None:
            self._task.touched.add(table)
        self._changed(table, "view")
