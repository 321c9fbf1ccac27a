"""PostgreSQL through psycopg 3: one connection per worker, server-side cancel.

Postgres has transactional DDL, so publishing a full model is drop-and-rename inside one
transaction, as on DuckDB; where views depend on the table (Postgres binds views to the
table itself, not its name) it truncates and inserts instead, in one transaction, and
readers wait for the commit rather than see a partial table. Seeds are typed by DuckDB's
CSV inference (the same types as on the embedded target) and loaded with COPY.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import psycopg
from psycopg import errors as pgerrors

from .. import sql as sqlmod
from ..engines import DuckDBRules, PostgresRules
from ..errors import UserError
from .base import Adapter, expand_env
from .errors import AdapterError, Interrupted
from .ledgertext import TextLedger
from .seedread import SeedReader

_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]*@|(password\s*=\s*)\S+", re.IGNORECASE)


_URL_PASSWORD = re.compile(r"://[^:/@\s]*:(?P<pw>.*)@")
_KEY_PASSWORD = re.compile(
    r"password\s*=\s*(?P<pw>'(?:[^'\\]|\\.)*'|.*?)(?=\s+\w+\s*=|\s*$)", re.IGNORECASE
)


def secrets_of(dsn: str) -> list[str]:
    """The password in a DSN as written, decoded, and each piece of it: a driver's error
    may quote any of them (a stray '%' in a URL, an unquoted space in a keyword DSN)."""
    from urllib.parse import unquote

    found = []
    for rx in (_URL_PASSWORD, _KEY_PASSWORD):
        for m in rx.finditer(dsn):
            pw = m["pw"].strip()
            if pw.startswith("'") and pw.endswith("'") and len(pw) > 1:
                pw = pw[1:-1]
            found += [pw, unquote(pw), *pw.split()]
    return sorted({x for x in found if len(x) >= 2}, key=len, reverse=True)


# DuckDB's names of the types its CSV inference gives, spelled for Postgres as sqlglot spells
# them (tests/test_s6pg_seeds.py checks each against sqlglot): a seed's DDL without
# importing sqlglot, about 90 ms on the first seed task's path. Other types go to sqlglot.
SEED_TYPES = {
    "BIGINT": "BIGINT",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "DOUBLE": "DOUBLE PRECISION",
    "FLOAT": "REAL",
    "INTEGER": "INT",
    "SMALLINT": "SMALLINT",
    "TIME": "TIME",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
    "VARCHAR": "TEXT",
}


def seed_type(duckdb_type: str) -> str:
    """A column type as DuckDB names it, in Postgres's DDL."""
    known = SEED_TYPES.get(duckdb_type)
    if known is not None:
        return known
    return sqlmod.transpile_type(duckdb_type, DuckDBRules.dialect, PostgresRules.dialect)


def mask(text: str, secrets=()) -> str:
    """Hide passwords in a DSN or an error message: by shape, and by value when known."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _PASSWORD.sub(lambda m: (m[1] or m[2]) + "***" + ("@" if m[1] else ""), text)


class PostgresAdapter(PostgresRules, TextLedger, Adapter):
    opens_in_background = True  # psycopg connects without the GIL

    def __init__(self, target, root: Path, dsn: str | None = None):
        super().__init__(target, root)
        self.seeds = SeedReader()  # shared with this adapter's workers: see worker()
        self._owns_seeds = True
        self.dsn = dsn or expand_env(str(target.option("dsn")), f"target '{target.name}' dsn")
        self._secrets = secrets_of(self.dsn)
        self._spare: _Spare | None = None  # the first worker's connection, opening
        self._spare_lock = threading.Lock()
        try:
            self.con = psycopg.connect(self.dsn, autocommit=True)
            self._session()
        except psycopg.Error as exc:
            raise UserError(
                f"cannot connect to target '{target.name}' (postgres): "
                f"{mask(str(exc), self._secrets).strip()}"
            ) from None

    def _session(self) -> None:
        """SPEC §2: sessions run in UTC. A statement, not a startup option: libpq applies
        PGTZ from the environment after the startup options, and it would win. And a
        client killed mid-statement (kill -9, a lost machine) leaves its statement running
        in the server until the statement ends, in a transaction that holds the task's
        temp table name and its locks: the next run would wait behind it, for hours with
        a slow model. PostgreSQL 14+ can notice a gone client while a query runs. Both in
        one call; where the platform refuses the check, the time zone alone."""
        if self.con.info.server_version >= 140000:
            try:
                self.con.execute(
                    b"SET TIME ZONE 'UTC'; SET client_connection_check_interval = '1s'"
                )
                return
            except psycopg.Error:
                pass  # a platform without the check: as before (both SETs rolled back)
        self.con.execute("SET TIME ZONE 'UTC'")

    @classmethod
    def lineage_namespace(cls, target, root: Path) -> tuple[str, str]:
        """postgres://host:port, names database.schema.table (OpenLineage's naming)."""
        dsn = expand_env(str(target.option("dsn")), f"target '{target.name}' dsn")
        try:
            info = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            info = {}
        host = str(info.get("host") or "localhost").split(",")[0]
        port = str(info.get("port") or "5432").split(",")[0]
        database = info.get("dbname") or info.get("user") or "postgres"
        return f"postgres://{host}:{port}", f"{database}."

    def open_worker_ahead(self) -> None:
        """Start connecting the first worker's connection on a thread (a run's start,
        while it loads its plan): its first task does not wait for a connect."""
        with self._spare_lock:
            if self._spare is None:
                self._spare = _Spare(self.target, self.root, self.dsn)

    def worker(self) -> PostgresAdapter:
        with self._spare_lock:
            spare, self._spare = self._spare, None
        worker = spare.take() if spare is not None else None
        if worker is None:  # none opened ahead, or it failed: connect (and say why) here
            worker = PostgresAdapter(self.target, self.root, self.dsn)
        worker.catalog = self.catalog
        worker.seeds, worker._owns_seeds = self.seeds, False
        return worker

    def close(self) -> None:
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.close()
        if self._owns_seeds:
            self.seeds.close()
        self.con.close()

    def healthy(self) -> bool:
        return not (self.con.closed or self.con.broken)

    def interrupt(self) -> None:
        try:
            self.con.cancel_safe()
        except (psycopg.Error, AttributeError):
            self.con.cancel()

    def _statement(self, sql: str) -> int | None:
        return self._run(sql, False)

    def _flush(self) -> None:
        if self._ahead:
            self._run("", False)

    def _run(self, sql: str, fetch: bool, params: tuple | None = None):
        """Every statement goes through here, catalog queries too: a psycopg error always
        becomes an AdapterError (a task failure), a cancel an Interrupted."""
        if self._ahead:
            if params is None:
                sql = self._with_ahead(sql)
            else:
                self._flush()
        try:
            with self.con.cursor() as cur:
                if params is None:
                    cur.execute(sql.encode())
                    while cur.nextset():  # statements sent ahead: the last one's result
                        pass
                else:
                    cur.execute(sql, params)
                if fetch:
                    names = [d.name for d in cur.description or []]
                    return names, cur.fetchall()
                return cur.rowcount if cur.rowcount >= 0 else None
        except pgerrors.QueryCanceled as exc:
            raise Interrupted(str(exc)) from None
        except psycopg.Error as exc:
            error = AdapterError(mask(str(exc), self._secrets).strip() or type(exc).__name__)
            error.sqlstate = getattr(exc, "sqlstate", None)
            raise error from None

    def query(self, sql: str):
        return self._run(sql, True)

    def is_conflict(self, exc: AdapterError) -> bool:
        return exc.conflict or getattr(exc, "sqlstate", None) in ("40001", "40P01", "23505")

    def altered_first(self, exc: AdapterError) -> bool:
        # the column exists already (ADD), or no longer (DROP); a deadlock
        return getattr(exc, "sqlstate", None) in ("42701", "42703", "40P01")

    def is_missing_relation(self, exc: AdapterError) -> bool:
        return getattr(exc, "sqlstate", None) in ("42P01", "3F000")  # no table, no schema

    def columns(self, table: str) -> list[tuple[str, str]]:
        """Types as Postgres spells them in DDL (`numeric(12,2)`, not `numeric`)."""
        _, rows = self._run(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM "
            "pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0"
            " AND NOT a.attisdropped ORDER BY a.attnum",
            True,
            (self.q(table),),
        )
        return [tuple(r) for r in rows]

    def _has_dependents(self, table: str) -> bool:
        _, rows = self._run(
            "SELECT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r "
            "ON r.oid = d.objid WHERE d.refobjid = %s::regclass "
            "AND r.ev_class <> d.refobjid)",
            True,
            (self.q(table),),
        )
        return bool(rows[0][0])

    def publish_full(self, temp: str, table: str) -> None:
        """Drop-and-rename, unless views depend on `table`: Postgres binds a view to the
        table itself, so then the rows are replaced in place (same columns required)."""
        if self.relation_kind(table) == "table" and self._has_dependents(table):
            if self.columns(temp) != self.columns(table):
                raise AdapterError(
                    f"the columns of {table} changed and views depend on it; "
                    "drop those views (pipe recreates its own) and run again"
                )
            self.execute(f"TRUNCATE {self.q(table)}")
            self.execute(self.insert_sql(temp, table))
            self.drop(temp, "table")
            return
        kept = self._grants_on(table) if self.relation_kind(table) else []  # a new table: none
        super().publish_full(temp, table)
        self._grant(table, kept)

    # -- grants: a republish replaces the table, so its grants are carried to the new one
    # in the same transaction; an analyst who could read it still can after every run

    def _grants_on(self, table: str) -> list[tuple[str, str]]:
        """(privilege, role or PUBLIC) granted on `table` to others than its owner."""
        _, rows = self._run(
            "SELECT a.privilege_type, coalesce(r.rolname, 'PUBLIC') FROM pg_class c "
            "CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = "
            "a.grantee WHERE c.oid = to_regclass(%s) AND a.grantee <> c.relowner "
            "ORDER BY 1, 2",
            True,
            (self.q(table),),
        )
        return [(p, r) for p, r in rows]

    def _grant(self, table: str, grants) -> None:
        for privilege, role in grants:
            who = "PUBLIC" if role == "PUBLIC" else self.col(role)
            self.execute(f"GRANT {privilege} ON {self.q(table)} TO {who}")

    def apply_grants(self, table: str, grants) -> None:
        self._grant(table, [(p.upper(), r) for p, roles in grants for r in roles])

    def insert_sql(self, temp: str, table: str) -> str:
        cols = ", ".join(self.col(c) for c, _ in self.columns(temp))
        return f"INSERT INTO {self.q(table)} ({cols}) SELECT {cols} FROM {self.q(temp)}"

    def publish_view(self, temp: str, table: str, select_sql: str) -> None:
        """CREATE OR REPLACE keeps views that read this one; when the columns changed in a
        way Postgres cannot replace, the view is dropped and created again."""
        self.drop(temp, "view")
        kind = self.relation_kind(table)
        if kind == "table":
            self.drop(table, "table")
        self.execute("SAVEPOINT pipe_view")
        try:
            self.execute(f"CREATE OR REPLACE VIEW {self.q(table)} AS\n{select_sql}")
        except AdapterError:
            self.execute("ROLLBACK TO SAVEPOINT pipe_view")
            kept = self._grants_on(table)
            self.drop(table, "view")
            self.execute(f"CREATE VIEW {self.q(table)} AS\n{select_sql}")
            self._grant(table, kept)
        self._changed(table, "view")

    def prefetch_seeds(self, tasks) -> None:
        """Read the CSVs of these tasks' seeds ahead, in order (seedread.py): a run's
        start calls it with the tasks it is about to run."""
        self.seeds.prefetch(
            (self.root / t.seed_path, dict(t.column_types))
            for t in tasks
            if t.kind == "seed" and t.seed_path
        )

    def load_seed(self, temp: str, csv_path: Path, column_types: dict[str, str]) -> int:
        """DuckDB reads the CSV (the contract of seeds: its dialect sniffing, its types, its
        NULLs), and its rows are COPYed in: the same values on every target, whatever the
        delimiter or quoting (Postgres's own CSV reader would read "" as '' and assume ',')."""
        from .duckdb import duckdb  # only seeds need it: not on every start

        try:
            described, rows = self.seeds.read(csv_path, column_types)
        except duckdb.Error as exc:
            raise AdapterError(f"reading {csv_path.name}: {str(exc).splitlines()[0]}") from None
        cols = [(name, seed_type(dtype)) for name, dtype in described]
        ddl = ", ".join(f"{self.col(n)} {t}" for n, t in cols)
        self.execute(f"CREATE TABLE {self.q(temp)} ({ddl})")
        self._changed(temp, "table")
        names = ", ".join(self.col(n) for n, _ in cols)
        self._flush()
        try:
            with self.con.cursor() as cur:
                with cur.copy(f"COPY {self.q(temp)} ({names}) FROM STDIN".encode()) as copy:
                    for row in rows:
                        copy.write_row(row)
        except psycopg.Error as exc:
            raise AdapterError(
                f"loading {csv_path.name}: {mask(str(exc), self._secrets).strip()}"
            ) from None
        return len(rows)


class _Spare:
    """A worker's connection, connecting on a thread."""

    def __init__(self, target, root: Path, dsn: str):
        self._adapter: PostgresAdapter | None = None
        self._thread = threading.Thread(
            target=self._open, args=(target, root, dsn), name="pipe-connect", daemon=True
        )
        self._thread.start()

    def _open(self, target, root: Path, dsn: str) -> None:
        try:
            self._adapter = PostgresAdapter(target, root, dsn)
        except Exception:  # noqa: BLE001 - worker() connects again, and says why
            pass

    def take(self) -> PostgresAdapter | None:
        self._thread.join()
        adapter, self._adapter = self._adapter, None
        if adapter is not None and not adapter.healthy():
            adapter.close()
            return None
        return adapter

    def close(self) -> None:
        adapter = self.take()
        if adapter is not None:
            adapter.close()
