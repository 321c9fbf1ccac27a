"""Spark through Spark Connect: write-audit-publish on an engine without transactions.

Spark's metastore has no multi-statement transactions, so a task cannot hide its work
until a COMMIT. What readers see stays whole anyway, the way SQLMesh's virtual layer does
it: every table model is published as a *view* over a physical table in schema `_pipe`,

    staging.orders  =  VIEW AS SELECT * FROM _pipe.staging__orders__v<token>

and a publish builds a new physical table, then repoints the view in one metastore
operation (ALTER VIEW ... AS: one alter of the view's definition; Spark's CREATE OR REPLACE
VIEW would drop the view and create it again, and a reader in between would miss it).
A reader resolves the view once per query, so it sees the old physical table or the new
one, never a missing or half-written one. The physical table the view pointed to before
stays until the next publish of that model (a reader that resolved the old view may still
be scanning it); older ones are dropped then.

- A task builds a table `_pipe.schema__x__pipe_tmp_id`; its checks read a view
  `schema.x__pipe_tmp_id` (the name in the plan) over it. A failure drops both
  (`transaction()`), and a crash leaves names that the next run's `clean_temp` sweeps
  (`temp_relations`).
- A full model: the build table is renamed into the model's next version (a rename inside
  `_pipe`), then the view is repointed.
- An incremental interval: the next version is the current one without the interval's
  rows plus the temp's rows of the interval (a copy of the table per publish: correct
  without Delta/Iceberg's atomic REPLACE WHERE, which this catalog does not offer), then the
  view is repointed. Publishes of one model are serialised in this process. The ledger row
  (a table property of `_pipe.ledger`, spark_ledger.py) is set after the repoint: a crash
  in between republishes the interval, which replaces it again, never doubling it.

How few round trips that takes is spark_publish.py's business. Interrupts cancel the
running operation on the server by its tag (`SparkSession.interruptTag`), not only the
client call. A target is either `remote: "sc://HOST:PORT/;token=..."` (Spark Connect) or
`master: "local[N]"` with `warehouse: DIR` (pyspark starts a local Connect server in this
process, with a Hive catalog on an embedded Derby metastore under DIR).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import threading
from pathlib import Path

import duckdb

from .. import sql as sqlmod
from ..engines import SparkRules
from ..errors import UserError
from ..names import TableName
from .base import TEMP_MARK, Adapter, expand_env
from .duckdb import read_csv
from .errors import AdapterError, Interrupted
from .ledgertable import LEDGER
from .spark_ledger import SparkLedger
from .spark_names import PHYSICAL, flat, physical, unflat
from .spark_publish import Shared, SparkPublishing

__all__ = ["PHYSICAL", "SparkAdapter", "mask"]

_SECRET = re.compile(r"((?:token|password|secret)\s*=\s*)[^;/\s]*", re.IGNORECASE)
_TAGS = itertools.count(1)
_VIEW_OF = re.compile(r"\bFROM\s+`?_pipe`?\.`?([a-z0-9_]+)`?\s*$", re.IGNORECASE)


def mask(text: str) -> str:
    """Hide a token (`;token=...`) or a password in a Connect URL or an error message."""
    return _SECRET.sub(lambda m: m[1] + "***", text)


def _message(exc: BaseException) -> str:
    """The error without the JVM stack trace and the SQL excerpt Spark appends."""
    text = str(exc)
    for cut in ("\nJVM stacktrace", "\n== SQL", "\n\nJVM"):
        text = text.split(cut, 1)[0]
    text = " ".join(text.replace("`", "").split())
    if text.startswith("[") and ". " in text:  # "[CONDITION] What happened. How to fix..."
        text = text.split(". ", 1)[0] + "."
    return mask(text)[:800] or type(exc).__name__


def _reachable(url: str, target: str) -> None:
    """Fail fast when nothing listens at the URL: the Connect client retries an
    unreachable server for up to 10 minutes before it gives up."""
    hostport = url[len("sc://") :].split("/", 1)[0].split(";", 1)[0]
    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "15002")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot connect to target '{target}' (spark): {host}:{port} does not answer ({exc})",
            hint="is the Spark Connect server running?",
        ) from None


def _pyspark():
    """The Spark Connect session class, or a user error saying what to install."""
    try:
        from pyspark.errors import PySparkException
        from pyspark.logger import PySparkLogger
        from pyspark.sql.connect.session import SparkSession
    except ImportError as exc:
        raise UserError(
            f"the spark adapter needs pyspark with Spark Connect ({exc.name} is not installed)",
            hint="pip install 'pipe[spark]'",
        ) from None
    # pyspark logs every analysis error to stderr itself; pipe reports them as task failures
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)
    return SparkSession, PySparkException


class SparkAdapter(SparkLedger, SparkPublishing, SparkRules, Adapter):
    transactional_ddl = False

    def __init__(
        self, target, root: Path, session=None, shared: Shared | None = None, owner: bool = True
    ):
        super().__init__(target, root)
        self._session_cls, self._error = _pyspark()
        self.shared = shared or Shared()
        self._owner = owner
        self._closed = False
        self.tag = f"pipe-{os.getpid()}-{next(_TAGS)}"
        self._tagged = threading.local()
        self._task = None  # the running task's state (spark_publish._Task)
        self.spark = session if session is not None else self._connect()

    # -- connections
    def _connect(self):
        t = self.target
        try:
            if t.option("remote"):
                url = expand_env(str(t.option("remote")), f"target '{t.name}' remote")
                if not url.startswith("sc://"):
                    raise UserError(
                        f"target '{t.name}' remote must be a Spark Connect URL "
                        f"(sc://HOST:PORT), got '{mask(url)}'"
                    )
                self._url = url
                _reachable(url, t.name)
                spark = self._session_cls.builder.remote(url).create()
            else:
                spark = self._local_session(t)
            spark.conf.set("spark.sql.session.timeZone", "UTC")  # SPEC §2; also a first RPC
        except self._error as exc:
            raise UserError(
                f"cannot connect to target '{t.name}' (spark): {_message(exc)}"
            ) from None
        return spark

    def _local_session(self, t):
        from pyspark.sql import SparkSession as Builder

        master = expand_env(str(t.option("master")), f"target '{t.name}' master")
        self._url = None
        warehouse = Path(
            expand_env(
                str(t.option("warehouse", "spark-warehouse")), f"target '{t.name}' warehouse"
            )
        )
        warehouse = warehouse if warehouse.is_absolute() else self.root / warehouse
        warehouse.mkdir(parents=True, exist_ok=True)
        metastore = warehouse / "metastore_db"
        return (
            Builder.builder.remote(master)
            .config("spark.sql.catalogImplementation", "hive")
            .config("spark.sql.warehouse.dir", str(warehouse / "tables"))
            .config(
                "spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore};create=true",
            )
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )

    def worker(self) -> SparkAdapter:
        """A session of its own on a Connect server (operations of several sessions run in
        parallel there); the embedded local server shares the one session."""
        if self._url:
            session = self._session_cls.builder.remote(self._url).create()
            session.conf.set("spark.sql.session.timeZone", "UTC")
            worker = SparkAdapter(self.target, self.root, session, self.shared, owner=True)
        else:
            worker = SparkAdapter(self.target, self.root, self.spark, self.shared, owner=False)
        worker.catalog = self.catalog
        return worker

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owner:
            try:
                self.spark.stop()
            except Exception:  # noqa: BLE001 - a session already gone is closed too
                pass

    def interrupt(self) -> None:
        try:
            self.spark.interruptTag(self.tag)
        except Exception:  # noqa: BLE001 - nothing running, or the session is gone
            pass

    # -- statements
    def _call(self, fn):
        """Every operation goes through here: after what the task queued (statements run
        in the order they were asked for), tagged (so `interrupt` can cancel it on the
        server), and every pyspark or gRPC error becomes an AdapterError."""
        if self._closed:
            raise AdapterError("the Spark session of this adapter is closed")
        if self._task is not None and (self._task.queue or self._task.rows):
            self._flush()
        try:
            if not getattr(self._tagged, "on", False):
                self.spark.addTag(self.tag)  # tags are per client thread
                self._tagged.on = True
            return fn()
        except Exception as exc:  # noqa: BLE001 - translated into the error tree here
            text = _message(exc)
            if "OPERATION_CANCELED" in text or "OPERATION_CANCELLED" in text:
                raise Interrupted(text) from None
            error = AdapterError(text)
            error.sqlstate = getattr(exc, "getSqlState", lambda: None)()
            raise error from None

    def _run(self, sql: str, fetch: bool):
        def run():
            df = self.spark.sql(sql)  # a command (DDL, INSERT, a script) runs here, eagerly
            if not fetch:
                return None
            rows = df.collect()
            names = list(rows[0].__fields__) if rows else list(df.columns)
            return names, [tuple(r) for r in rows]

        return self._call(run)

    def _script(self, statements: list[str]) -> None:
        """Run `statements` in order, as one SQL script (one round trip) where the server
        has SQL scripting; a script stops at the first error, as one by one would."""
        if len(statements) > 1 and self.shared.scripting:
            try:
                # each `;` on a line of its own: a statement may end in a -- comment
                return self._run(
                    "BEGIN\n" + "".join(f"{x}\n;\n" for x in statements) + "END", False
                )
            except AdapterError as exc:
                if "UNSUPPORTED_FEATURE.SQL_SCRIPTING]" not in str(exc):
                    raise
                self.shared.scripting = False  # parsed, refused: nothing of it ran
        for sql in statements:
            self._run(sql, False)

    def execute(self, sql: str) -> int | None:
        return self._run(sql, False)

    def is_missing_relation(self, exc: AdapterError) -> bool:
        return any(c in str(exc) for c in ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND"))

    def query(self, sql: str):
        self._materialise(sql)
        return self._run(sql, True)

    # -- catalog: SHOW, no information_schema
    def _show(self, what: str, schema: str, like: str | None = None) -> list[str]:
        pattern = f" LIKE {sqlmod.literal(like, self.dialect)}" if like else ""
        try:
            _, rows = self.query(f"SHOW {what} IN {self.col(schema)}{pattern}")
        except AdapterError as exc:
            if "SCHEMA_NOT_FOUND" in str(exc) or "NO_SUCH_NAMESPACE" in str(exc):
                return []
            raise
        return [r[1] for r in rows if not r[2]]  # (namespace, name, isTemporary)

    def _spark_kind(self, table: str) -> str | None:
        """What Spark's catalog holds under `table`: 'TABLE', 'VIEW' or None."""
        name = TableName.parse(table)
        if not self._show("TABLES", name.schema, name.table.lower()):
            return None
        return "VIEW" if self._show("VIEWS", name.schema, name.table.lower()) else "TABLE"

    def _view_target(self, table: str) -> str | None:
        """The `_pipe` physical table a pipe view selects from, or None."""
        with self.shared.lock:
            if table in self.shared.published:
                return self.shared.published[table]
        _, rows = self.query(f"SHOW CREATE TABLE {self.q(table)}")
        m = _VIEW_OF.search(rows[0][0].strip()) if rows else None
        found = physical(m[1].lower()) if m else None
        if found:
            with self.shared.lock:
                self.shared.published.setdefault(table, found)
        return found

    def _relation_kind(self, table: str) -> str | None:
        """Pipe's kind: a view over a `_pipe` physical table is a published table."""
        kind = self._spark_kind(table)
        if kind == "VIEW":
            return "table" if self._view_target(table) else "view"
        return "table" if kind == "TABLE" else None

    def _physical(self) -> list[str]:
        """Every table of `_pipe`, listed once: then tracked (spark_publish.Shared)."""
        names = self._show("TABLES", PHYSICAL)
        self.shared.listed(names)
        return names

    def _kinds(self, schema: str, modelled: set[str]) -> dict[str, str]:
        views = set(self._show("VIEWS", schema))
        out = {}
        for table in self._show("TABLES", schema):
            name = TableName(schema, table)
            out[str(name)] = "table" if table not in views or flat(name) in modelled else "view"
        return out

    def prefetch_catalog(self, schemas) -> None:
        schemas = sorted(set(schemas))
        if not schemas:
            return
        modelled = {n.rsplit("__v", 1)[0] for n in self._physical() if TEMP_MARK not in n}
        kinds = {}
        for schema in schemas:
            kinds.update(self._kinds(schema, modelled))
        self.catalog.load(schemas, kinds)

    def relations(self) -> dict[str, str]:
        """Every relation in pipe's terms (a view over a `_pipe` physical table is a
        published table), and the ledger; SHOW, as Spark has no information_schema."""
        _, rows = self.query("SHOW DATABASES")
        schemas = [schema for (schema,) in rows]
        physical = self._physical() if PHYSICAL in (s.lower() for s in schemas) else []
        if PHYSICAL not in (s.lower() for s in schemas):
            self.shared.listed([])
        modelled = {n.rsplit("__v", 1)[0] for n in physical if TEMP_MARK not in n}
        out = {LEDGER: "table"} if "ledger" in physical else {}
        for schema in schemas:
            if schema.lower() != PHYSICAL:
                out.update(self._kinds(schema, modelled))
        return out

    def temp_relations(self, relations=None) -> list[tuple[str, str]]:
        """Temp views in every schema, and the temps whose build table alone is left."""
        _, rows = self.query("SHOW DATABASES")
        found = set()
        for (schema,) in rows:
            for name in self._show("TABLES", schema, f"*{TEMP_MARK}*"):
                if schema.lower() == PHYSICAL:  # a build table, or a version of a shadow
                    found.add(str(unflat(re.sub("__v[0-9a-f]{24}$", "", name))))
                else:
                    found.add(str(TableName(schema, name)))
        return [(name, "view") for name in sorted(found)]

    def drop(self, table: str, kind: str | None = None) -> None:
        """Drop `table`: a temp view with its build table, a pipe view (its physical
        tables go at the next publish or here), a plain view or a table."""
        if TEMP_MARK in table:  # a --full-refresh shadow also has published versions
            build, versions = self._build_table(table), self._versions(table)
            self._script(
                [f"DROP VIEW IF EXISTS {self.q(table)}", f"DROP TABLE IF EXISTS {self.q(build)}"]
                + [f"DROP TABLE IF EXISTS {self.q(v)}" for v in versions]
            )
            self.shared.track(removed=[build, *versions])
        else:
            kind = kind or self.relation_kind(table)
            spark_kind = self._spark_kind(table) if kind else None
            if spark_kind == "VIEW":
                self.execute(f"DROP VIEW IF EXISTS {self.q(table)}")
                with self.shared.lock:
                    self.shared.published.pop(table, None)
            elif spark_kind == "TABLE":
                self.execute(f"DROP TABLE IF EXISTS {self.q(table)}")
        self._changed(table, None)

    def load_seed(self, temp: str, csv_path: Path, column_types: dict[str, str]) -> int:
        """Typed by DuckDB's CSV inference (the seed contract), sent as rows through the
        Connect session (the file is on this machine, not the cluster's)."""
        con = duckdb.connect()
        try:
            relation = f"SELECT * FROM {read_csv(csv_path, column_types)}"
            described = con.execute(f"DESCRIBE {relation}").fetchall()
            rows = con.execute(relation).fetchall()
        finally:
            con.close()
        schema = ", ".join(
            f"{self.col(name)} {sqlmod.transpile_type(dtype, 'duckdb', 'spark')}"
            for name, dtype, *_ in described
        )
        build = self._build_table(temp)
        self._built(temp, build)

        def write():
            frame = self.spark.createDataFrame(rows, schema=schema)
            frame.write.format("parquet").mode("overwrite").saveAsTable(self.q(build))

        try:
            self._call(write)
        except AdapterError as exc:
            raise AdapterError(f"loading {csv_path.name}: {exc}") from None
        self.shared.track(added=[build])
        self._view_later(temp, f"SELECT * FROM {self.q(build)}")
        return len(rows)
