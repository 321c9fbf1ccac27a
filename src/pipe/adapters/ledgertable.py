"""The columnar ledger table: what is published, kept in the warehouse, with each publish.

Spark reads and writes this layout (one column per field, in a Parquet table); DuckDB and
Postgres override it with the one-column ledger of ledgertext.py, which converts a
warehouse's columnar ledger at the next run's start.

`LedgerTable` is the part of an Adapter (adapters.base) that writes and reads
`_pipe.ledger` through the adapter's own statements (`execute`, `query`, `transaction`),
in plain SQL that every engine with transactions runs; an engine without them (Spark)
overrides what it must. The ledger is append-only (an upsert costs 2-3x an insert, and
the publish path is hot): the latest row of a key wins; `compact_ledger` folds the history
away. What a row means is ledger.py's business; here it is only written and read.
"""

from __future__ import annotations

import functools

from .. import sql as sqlmod
from ..ledger import Entry, Key, decode_reads, encode_reads
from ..names import PIPE_SCHEMA, TableName
from .errors import AdapterError

LEDGER = str(TableName(PIPE_SCHEMA, "ledger"))


class LedgerTable:
    """The ledger's statements, mixed into Adapter: needs its `execute`, `query`,
    `transaction`, `columns`, `ensure_schema` and `dialect`."""

    _LEDGER_COLUMNS = (("reads", "VARCHAR"), ("partial", "BOOLEAN"), ("replaced", "BIGINT"))

    def ensure_ledger(self) -> None:
        self.ensure_schema(PIPE_SCHEMA)
        extra = "".join(f", {c} {t}" for c, t in self._LEDGER_COLUMNS)
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {LEDGER} (model VARCHAR NOT NULL, "
            "interval_start VARCHAR NOT NULL, interval_end VARCHAR NOT NULL, "
            "fingerprint VARCHAR NOT NULL, rows BIGINT, published_at "
            f"DOUBLE PRECISION NOT NULL{extra})"
        )
        have = {c.lower() for c, _ in self.columns(LEDGER)}
        for column, dtype in self._LEDGER_COLUMNS:  # a ledger written by an older pipe
            if column not in have:
                self.execute(f"ALTER TABLE {LEDGER} ADD COLUMN {column} {dtype}")

    def open_ledger(self, exists: bool) -> dict[Key, Entry]:
        """`read_ledger`, creating the ledger or adding the columns an older pipe's lacks
        first when needed: when it `exists`, one query at a run's start, not three."""
        if exists:
            try:
                return self.read_ledger()
            except AdapterError:
                pass  # an older pipe's ledger: its columns are added below
        self.ensure_ledger()
        return self.read_ledger()

    def read_ledger(self) -> dict[Key, Entry]:
        """(model, start, end) -> the latest publish of each key still published. Sets
        `ledger_rows`, the rows the ledger holds (superseded ones included)."""
        _, rows = self.query(
            f"SELECT model, interval_start, interval_end, fingerprint, "
            f"published_at, rows, reads, partial, replaced FROM {LEDGER} "
            "ORDER BY published_at"
        )
        self.ledger_rows = len(rows)
        out: dict[Key, Entry] = {}
        for m, s, e, fp, at, n, reads, partial, replaced in rows:
            if not fp:  # a tombstone: no longer published
                out.pop((m, s, e), None)
                continue
            out[(m, s, e)] = columnar_entry(fp, at, n, reads, partial, replaced)
        return out

    def compact_ledger(self) -> int:
        """Delete superseded ledger rows and tombstones; return how many."""
        with self.transaction():
            n = self.execute(
                f"DELETE FROM {LEDGER} WHERE published_at < (SELECT max(l.published_at) FROM "
                f"{LEDGER} AS l WHERE l.model = {LEDGER}.model AND l.interval_start = "
                f"{LEDGER}.interval_start AND l.interval_end = {LEDGER}.interval_end)"
            )
            n = int(n or 0) + int(self.execute(f"DELETE FROM {LEDGER} WHERE fingerprint = ''") or 0)
        return n

    def record_published(self, key: Key, entry: Entry) -> None:
        """Append the ledger row of `key`; call inside the publishing transaction."""
        lit = functools.partial(sqlmod.literal, dialect=self.dialect)
        num = lambda v: "NULL" if v is None else str(int(v))
        self.execute(
            f"INSERT INTO {LEDGER} (model, interval_start, interval_end, fingerprint, "
            "rows, published_at, reads, partial, replaced) VALUES ("
            f"{', '.join(lit(v) for v in (*key, entry.fingerprint))}, "
            f"{num(entry.rows)}, {entry.published_at!r}, "
            f"{lit(encode_reads(entry.reads)) if entry.reads else 'NULL'}, "
            f"{'TRUE' if entry.partial else 'FALSE'}, {num(entry.replaced)})"
        )

    def forget_ledger(self, model: str) -> None:
        """Delete every ledger row of `model` (a --full-refresh shadow's, once swapped in or
        abandoned)."""
        self.execute(f"DELETE FROM {LEDGER} WHERE model = {sqlmod.literal(model, self.dialect)}")

    def record_removed(self, keys, at: float) -> None:
        """Tombstones: these keys are no longer published (their table is gone)."""
        lit = functools.partial(sqlmod.literal, dialect=self.dialect)
        for i, key in enumerate(sorted(keys)):
            self.execute(
                f"INSERT INTO {LEDGER} (model, interval_start, interval_end, "
                f"fingerprint, published_at) VALUES ({', '.join(map(lit, key))}, '', "
                f"{at + i * 1e-6!r})"
            )


def columnar_entry(fp, at, n, reads, partial, replaced) -> Entry:
    """One row of the columnar ledger (after its key) as an Entry."""
    return Entry(
        fp,
        float(at),
        None if n is None else int(n),
        decode_reads(reads),
        bool(partial),
        None if replaced is None else int(replaced),
    )
