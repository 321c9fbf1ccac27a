"""The ledger as one text column: `_pipe.ledger (entry VARCHAR)`, one row per publish,
sent with its transaction's COMMIT; and a task's statements in as few calls as that allows.

Every task appends its ledger row inside its publishing transaction (SPEC §6/§7), so the
row's cost is paid by every task. On DuckDB a one-row INSERT costs per column, at the
INSERT and again at the COMMIT: the nine-column row of the first format cost 1.8 ms and
added 1.4 ms to the commit, the one-column row 1.0 and 0.0 ms more than a commit without
it (DuckDB 2.0.1, medians of 400, load 6). The row is `ledger.encode_row`: a JSON array,
key first; the latest row of a key wins (its `published_at` is its version), a tombstone
(an empty fingerprint) says the key is no longer published. There is no index and no
UPDATE: appends only; `compact_ledger` folds the history away now and then.

A warehouse whose ledger has the first format's columns (model, interval_start, ...) is
converted at the next run's start, in one transaction: its current entries are written
in this format and the old table is replaced, so an interrupted conversion leaves the old
ledger as it was. A `_pipe.ledger` with neither format is not pipe's: reading it fails,
and the run says so.

Engines mix this in before `Adapter` (DuckDB, Postgres); Spark keeps the columnar ledger of
ledgertable.py (its Parquet table has no transactions to send a row with).
"""

from __future__ import annotations

from .. import sql as sqlmod
from ..ledger import Entry, Key, decode_row, encode_row, fold, row_prefix
from ..names import TableName
from .errors import AdapterError
from .ledgertable import LEDGER, columnar_entry

_OLD_KEY = ("model", "interval_start", "interval_end", "fingerprint", "published_at", "rows")
_OLD_EXTRA = ("reads", "partial", "replaced")  # columns a still older ledger lacks
_BATCH = 500  # rows per INSERT when rows are written back (conversion, compaction)


class TextLedger:
    """Adapter methods for the one-column ledger (use with an `Adapter` subclass)."""

    def ensure_ledger(self) -> None:
        """Create the ledger, or convert one of the first format; a no-op when it is
        in this format already."""
        have = {c.lower() for c, _ in self.columns(LEDGER)}
        if "entry" in have:
            return
        if have:
            self._convert(have)
            return
        self.ensure_schema("_pipe")
        self.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} (entry VARCHAR)")

    def open_ledger(self, exists: bool) -> dict[Key, Entry]:
        """`read_ledger`, creating or converting the ledger first when needed: when it
        `exists` in this format, one query at a run's start."""
        if exists:
            try:
                return self.read_ledger()
            except AdapterError as exc:
                have = {c.lower() for c, _ in self.columns(LEDGER)}
                if not set(_OLD_KEY) <= have:
                    raise exc from None  # not a ledger pipe wrote: say what the engine said
        self.ensure_ledger()
        return self.read_ledger()

    def read_ledger(self) -> dict[Key, Entry]:
        """(model, start, end) -> the latest publish of each key still published. Sets
        `ledger_rows`, the rows the ledger holds (superseded ones included)."""
        _, rows = self.query(f"SELECT entry FROM {LEDGER}")
        self.ledger_rows = len(rows)
        return fold(decode_row(text) for (text,) in rows)

    def record_published(self, key: Key, entry: Entry) -> None:
        """Append the ledger row of `key`; call inside the publishing transaction. The
        row goes to the engine with the transaction's COMMIT (`_ahead`), in one call."""
        self._later(f"INSERT INTO {LEDGER} VALUES ({self._lit(encode_row(key, entry))})")

    # -- fewer calls: a transaction's BEGIN is sent with its first statement, and its
    # ledger row with its COMMIT, as one multi-statement call (one round trip on a
    # server). The same statements in the same transaction: a failing one stops the call
    # there, the transaction's ROLLBACK follows, and nothing of it is published.
    _ahead: tuple[str, ...] = ()  # statements to send in front of the next one

    def execute(self, sql: str) -> int | None:
        if sql == "BEGIN":
            self._ahead = (*self._ahead, sql)
            return None
        if sql == "ROLLBACK":
            ahead, self._ahead = self._ahead, ()  # what was not sent was not done
            if ahead[:1] == ("BEGIN",):
                return None  # the transaction never began
        elif sql == "COMMIT" and self._ahead == ("BEGIN",):
            self._ahead = ()  # an empty transaction
            return None
        return self._statement(sql)

    def send_ahead(self) -> None:
        if self._ahead and self._ahead != ("BEGIN",):
            self._statement("")

    def _later(self, sql: str) -> None:
        """Run `sql` with the next statement, in this transaction (now, outside one)."""
        if self._in_tx:
            self._ahead = (*self._ahead, sql)
        else:
            self.execute(sql)

    def _statement(self, sql: str) -> int | None:
        """Run one statement (with what is `_ahead` of it): the engine's `execute`."""
        raise NotImplementedError

    def _with_ahead(self, sql: str) -> str:
        """`sql` with the statements waiting in front of it; clears them."""
        if not self._ahead:
            return sql
        ahead, self._ahead = self._ahead, ()
        return ";\n".join((*ahead, sql) if sql else ahead)

    def publish_full(self, temp: str, table: str) -> None:
        """`temp` becomes `table`: the drop and the rename go with the transaction's next
        statement (its COMMIT, with the ledger row), one call where there were three."""
        kind = self.relation_kind(table)
        if kind:
            self._later(f"DROP {'VIEW' if kind == 'view' else 'TABLE'} {self.q(table)}")
        name = self.col(TableName.parse(table).table)
        self._later(f"ALTER TABLE {self.q(temp)} RENAME TO {name}")
        self._changed(temp, None)
        self._changed(table, "table")

    def record_removed(self, keys, at: float) -> None:
        """Tombstones: these keys are no longer published (their table is gone)."""
        self._append((key, Entry("", at + i * 1e-6)) for i, key in enumerate(sorted(keys)))

    def forget_ledger(self, model: str) -> None:
        """Delete every ledger row of `model` (a --full-refresh shadow's, once swapped in or
        abandoned)."""
        prefix = row_prefix(model)
        self.execute(f"DELETE FROM {LEDGER} WHERE left(entry, {len(prefix)}) = {self._lit(prefix)}")

    def compact_ledger(self) -> int:
        """Keep only the latest row of each key still published; return how many rows
        went. One transaction: a reader sees the whole history or the folded one."""
        with self.transaction():
            current = self.read_ledger()
            before = self.ledger_rows
            self.execute(f"DELETE FROM {LEDGER}")
            self._append(current.items())
        self.ledger_rows = len(current)
        return before - len(current)

    # -- helpers
    def _lit(self, text: str) -> str:
        return sqlmod.literal(text, self.dialect)

    def _append(self, items) -> None:
        rows = [f"({self._lit(encode_row(k, e))})" for k, e in items]
        for i in range(0, len(rows), _BATCH):
            self.execute(f"INSERT INTO {LEDGER} VALUES {', '.join(rows[i : i + _BATCH])}")

    def _convert(self, have: set[str]) -> None:
        """The first format's ledger (one column per field) -> this one, its current
        entries only, in one transaction."""
        cols = [*_OLD_KEY, *(c if c in have else f"NULL AS {c}" for c in _OLD_EXTRA)]
        _, rows = self.query(f"SELECT {', '.join(cols)} FROM {LEDGER}")
        current = fold(
            ((m, s, e), columnar_entry(fp, at, n, reads, partial, replaced))
            for m, s, e, fp, at, n, reads, partial, replaced in rows
        )
        with self.transaction():
            self.execute(f"DROP TABLE {LEDGER}")
            self.execute(f"CREATE TABLE {LEDGER} (entry VARCHAR)")
            self._append(current.items())
