"""DuckDB, embedded: the default warehouse.

One database instance per process; each worker gets its own cursor (a connection of its
own to the same instance), so workers run statements in parallel and each has a
transaction of its own. DuckDB's DDL is transactional with snapshot isolation, so the
base class's drop-and-rename publish is atomic for readers.
"""

from __future__ import annotations

import re
from pathlib import Path

try:  # the engine's own module: the `duckdb` package around it also loads its relational
    # API and looks its version up through importlib.metadata, three times the import time,
    # paid by every run before its first task. Same connect(), same exceptions.
    import _duckdb as duckdb
except ImportError:  # a duckdb release without it
    import duckdb

from ..engines import DuckDBRules
from ..errors import UserError
from ..names import TableName
from ..runearly import RELATIONS
from .base import Adapter, expand_env
from .errors import AdapterError, Interrupted
from .ledgertext import TextLedger


def read_csv(csv_path: Path, column_types: dict[str, str]) -> str:
    """DuckDB's read_csv of a seed: its type inference, but for the columns given (the
    seed contract on every target: the Postgres adapter types seeds with it too)."""
    path = str(csv_path).replace("'", "''")
    types = ""
    if column_types:
        inner = ", ".join(f"'{k}': '{v}'" for k, v in sorted(column_types.items()))
        types = f", types = {{{inner}}}"
    return f"read_csv('{path}', header = true, auto_detect = true{types})"


def describe_csvs(seeds: list[tuple[Path, dict[str, str]]]) -> list[tuple[tuple[str, str], ...]]:
    """The (column, type) pairs of each seed CSV as `read_csv` types it; () for a file
    DuckDB cannot read (loading it reports why). For lineage and OpenLineage schemas."""
    con = duckdb.connect()
    try:
        out = []
        for path, column_types in seeds:
            try:
                rows = con.execute(f"DESCRIBE SELECT * FROM {read_csv(path, column_types)}")
                out.append(tuple((r[0], r[1]) for r in rows.fetchall()))
            except duckdb.Error:
                out.append(())
        return out
    finally:
        con.close()


_MISSING = re.compile(r"Catalog Error: (Table|View|Schema) with name .* does not exist")


def _path(target, root: Path) -> str:
    """The warehouse file of `target` (relative to the project), or ':memory:'."""
    path = expand_env(
        str(target.option("path", "warehouse.duckdb")), f"target '{target.name}' path"
    )
    if path == ":memory:" or Path(path).is_absolute():
        return path
    return str(root / path)


class DuckDBAdapter(DuckDBRules, TextLedger, Adapter):
    opens_in_background = True  # DuckDB reads the catalog of the file without the GIL

    def __init__(self, target, root: Path, con=None, read_only: bool = False, utc=True):
        """`con`: a connection opened already (runearly's, or a cursor for a worker);
        `utc=False`: its session's time zone is set already."""
        super().__init__(target, root)
        self._owner = con is None
        if con is None:
            path = _path(target, root)
            if path != ":memory:" and not read_only:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                con = duckdb.connect(path, read_only=read_only)
            except duckdb.IOException as exc:
                raise self.open_error(target, exc) from None
        self.con = con
        # SPEC §2: sessions run in UTC, whatever the machine's zone; DuckDB's default is the
        # local zone and a setting is per connection (each worker cursor is one)
        if utc:
            self.execute("SET TimeZone = 'UTC'")

    @staticmethod
    def open_error(target, exc: BaseException) -> BaseException:
        """What opening the file raised, as the user is told it."""
        if isinstance(exc, duckdb.IOException):
            return UserError(
                f"cannot open the DuckDB warehouse {target.option('path')}: {exc}",
                hint="is another program holding it open?",
            )
        return exc

    @staticmethod
    def file_of(target, root: Path) -> str:
        return _path(target, root)

    @classmethod
    def lineage_namespace(cls, target, root: Path) -> tuple[str, str]:
        path = _path(target, root)
        if path == ":memory:":
            return "duckdb://memory", ""
        return f"duckdb://{Path(path).resolve().as_posix()}", ""

    @classmethod
    def reader(cls, target, root: Path) -> DuckDBAdapter | None:
        path = _path(target, root)
        if path == ":memory:" or not Path(path).exists():
            return None
        return cls(target, root, read_only=True)

    def worker(self) -> DuckDBAdapter:
        # DuckDB's threads stay as they are: `threads` is one setting of the database,
        # so dividing it among workers (c2 on 2 cores: CPU 0.91) also starved a big model
        # running alone for the rest of the run, and outlived the run (docs/benchmarks.md)
        worker = DuckDBAdapter(self.target, self.root, self.con.cursor())
        worker.catalog = self.catalog
        return worker

    def close(self) -> None:
        self.con.close()

    def relations(self) -> dict[str, str]:
        """As Adapter.relations, from DuckDB's own catalog functions: the rows of
        information_schema.tables (which is a view over them), 27% faster on a file of
        1,000 tables, read at every run's start (37 vs 51 ms, best of 7, load 13)."""
        return self.relations_of(self.query(RELATIONS)[1])

    @staticmethod
    def relations_of(rows) -> dict[str, str]:
        """`relations()` from the rows of its query (runearly makes it on its thread)."""
        return {str(TableName(sch, n)): "view" if is_view else "table" for sch, n, is_view in rows}

    def interrupt(self) -> None:
        self.con.interrupt()

    def _run(self, sql: str, params: list | None = None):
        """Run a statement; every DuckDB error becomes an AdapterError (a task failure,
        retried like any), an interrupt an Interrupted: never a bare duckdb exception."""
        if self._ahead:
            if params:
                self._run("")
            else:
                sql = self._with_ahead(sql)
        try:
            self.con.execute(sql, params) if params else self.con.execute(sql)
            names = [d[0] for d in self.con.description or []]
            return names, self.con.fetchall()
        except duckdb.InterruptException as exc:
            raise Interrupted(str(exc)) from None
        except duckdb.Error as exc:
            raise AdapterError(str(exc)) from None

    def _statement(self, sql: str) -> int | None:
        _, rows = self._run(sql)
        if rows and len(rows) == 1 and len(rows[0]) == 1 and isinstance(rows[0][0], int):
            return rows[0][0]
        return None

    def query(self, sql: str):
        return self._run(sql)

    def columns(self, table: str) -> list[tuple[str, str]]:
        """From a LIMIT 0 query's description: 8x cheaper than information_schema here,
        and this is on the publish path of every incremental task."""
        if self.relation_kind(table) is None:
            return []
        try:
            self.con.execute(self._with_ahead(f"SELECT * FROM {self.q(table)} LIMIT 0"))
        except duckdb.Error as exc:
            raise AdapterError(str(exc)) from None
        return [(d[0], str(d[1])) for d in self.con.description]

    def is_conflict(self, exc: AdapterError) -> bool:
        return exc.conflict or "conflict" in str(exc).lower()

    def altered_first(self, exc: AdapterError) -> bool:
        text = str(exc)
        return "conflict" in text.lower() or (
            "Column with name" in text and ("already exists" in text or "does not exist" in text)
        )

    def is_missing_relation(self, exc: AdapterError) -> bool:
        return bool(_MISSING.match(str(exc)))

    def insert_sql(self, temp: str, table: str) -> str:
        return f"INSERT INTO {self.q(table)} BY NAME SELECT * FROM {self.q(temp)}"

    guards_columns = True

    def guarded_insert_sql(self, temp: str, table: str, columns) -> str:
        """BY NAME fails when `temp` has a column `table` lacks, and `* REPLACE (c AS c,
        ...)` when `temp` lacks one of `columns`: both are binder errors, before any row
        is written."""
        same = ", ".join(f"{self.col(c)} AS {self.col(c)}" for c, _ in columns)
        return f"INSERT INTO {self.q(table)} BY NAME SELECT * REPLACE ({same}) FROM {self.q(temp)}"

    def load_seed(self, temp: str, csv_path: Path, column_types: dict[str, str]) -> int:
        return self.create_temp(temp, f"SELECT * FROM {read_csv(csv_path, column_types)}")
