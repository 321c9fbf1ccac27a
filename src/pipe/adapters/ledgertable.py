"""The ledger's interface and what its layouts share: what is published, kept in the
warehouse, with each publish (`_pipe.ledger`).

Each engine mixes in its layout before `Adapter` (adapters.base): DuckDB and Postgres the
one-column ledger of ledgertext.py (a row appended inside the publish's transaction),
Spark the table properties of spark_ledger.py (one metastore operation a row). Both read a
warehouse whose ledger still has the columnar layout of an older pipe (one column per
field) and convert it: `columnar_entry` reads such a row. What a row means is ledger.py's
business; here it is only named.
"""

from __future__ import annotations

from abc import abstractmethod

from ..ledger import Entry, Key, decode_reads
from ..names import PIPE_SCHEMA, TableName

LEDGER = str(TableName(PIPE_SCHEMA, "ledger"))


class LedgerTable:
    """What an adapter does with the ledger (part of `Adapter`; each engine's layout
    implements it). The ledger is append-only: the latest row of a key wins."""

    @abstractmethod
    def ensure_ledger(self) -> None:
        """Create `_pipe.ledger` (or convert an older layout); a no-op when it is there."""

    @abstractmethod
    def open_ledger(self, exists: bool) -> dict[Key, Entry]:
        """`read_ledger`, creating or converting the ledger first when needed."""

    @abstractmethod
    def read_ledger(self) -> dict[Key, Entry]:
        """(model, start, end) -> the latest publish of each key still published; sets
        `ledger_rows`, the rows the ledger holds (superseded ones included)."""

    @abstractmethod
    def compact_ledger(self) -> int:
        """Remove superseded rows and tombstones; return how many."""

    @abstractmethod
    def record_published(self, key: Key, entry: Entry) -> None:
        """Append the ledger row of `key`; call inside the publishing transaction."""

    @abstractmethod
    def forget_ledger(self, model: str) -> None:
        """Remove every row of `model` (a --full-refresh shadow's, once swapped in or
        abandoned)."""

    @abstractmethod
    def record_removed(self, keys, at: float) -> None:
        """Tombstones: these keys are no longer published (their table is gone)."""


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
