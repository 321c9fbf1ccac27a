"""The ledger on Spark: one table property of `_pipe.ledger` per row, not a Parquet row.

Appending a row to a Parquet table is a Spark job (a file written and committed: 125-235
ms on the local server, the costliest statement of a task after its own write). Setting a
table property is one metastore operation (80-130 ms, and it runs inside the task's
publish script): so each ledger row is a property

    'pipe.ledger.<hash of the row>' = '["model", "start", "end", "fingerprint", rows,
                                        published_at, "reads", partial, replaced]'

of the (empty) Parquet table `_pipe.ledger`, read back all at once with one
`SHOW TBLPROPERTIES`. A value is a JSON array (at most a few hundred bytes; the embedded
Derby metastore holds 32 KB a value). Tombstones, compaction and forgetting a model are
`SET` / `UNSET TBLPROPERTIES`, metastore operations too (the Parquet layout had to copy the
table aside and back, and a crash in between lost rows).

What a reader or a crash can see is unchanged: the row is set after the view's repoint, in
the same script, so a crash between the two republishes the interval, never doubles it.
`ALTER TABLE ... SET TBLPROPERTIES` reads the table's properties and writes them back: the
rows are set under `Shared.ledger_lock` (one pipe process at a time holds the project).

A warehouse whose ledger is still the Parquet rows of an older pipe (no `pipe.ledger_format`
property) is converted when the ledger is first read: its rows become properties (keyed by
their content, so a conversion cut short and run again sets the same keys), then the table is
truncated and marked.
"""

from __future__ import annotations

import hashlib
import json

from .. import sql as sqlmod
from ..ledger import Entry, Key, encode_reads
from .ledgertable import LEDGER, columnar_entry
from .spark_names import PHYSICAL

PREFIX = "pipe.ledger."
FORMAT = "pipe.ledger_format"
_CHUNK = 500  # rows a statement, when many are set or unset at once


class SparkLedger:
    """The ledger half of SparkAdapter: needs its `execute`, `query`, `_script`, `shared`,
    `ensure_schema` and `dialect`."""

    # the Parquet columns of an older pipe's ledger (the table stays, empty, for its properties)
    _COLUMNS = (
        "model STRING, interval_start STRING, interval_end STRING, fingerprint STRING, "
        "rows BIGINT, published_at DOUBLE, reads STRING, partial BOOLEAN, "
        "replaced BIGINT"
    )
    _NAMES = (
        "model, interval_start, interval_end, fingerprint, rows, published_at, reads, "
        "partial, replaced"
    )

    def ensure_ledger(self) -> None:
        self.ensure_schema(PHYSICAL)
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {LEDGER} ({self._COLUMNS}) USING parquet "
            f"TBLPROPERTIES ('{FORMAT}' = 'properties')"
        )

    def open_ledger(self, exists: bool) -> dict[Key, Entry]:
        if not exists:
            self.ensure_ledger()
        return self.read_ledger()

    def _ledger_props(self) -> dict[str, list]:
        """Every ledger row by its property key, converting an older ledger first."""
        _, rows = self.query(f"SHOW TBLPROPERTIES {LEDGER}")
        props = dict(rows)
        if props.get(FORMAT) != "properties":
            self._convert_ledger()
            _, rows = self.query(f"SHOW TBLPROPERTIES {LEDGER}")
            props = dict(rows)
        return {k: json.loads(v) for k, v in props.items() if k.startswith(PREFIX)}

    def read_ledger(self) -> dict[Key, Entry]:
        """(model, start, end) -> the latest publish of each key still published."""
        rows = sorted(self._ledger_props().values(), key=lambda r: r[5])
        self.ledger_rows = len(rows)
        out: dict[Key, Entry] = {}
        for m, s, e, fp, n, at, reads, partial, replaced in rows:
            if not fp:  # a tombstone: no longer published
                out.pop((m, s, e), None)
                continue
            out[(m, s, e)] = columnar_entry(fp, at, n, reads, partial, replaced)
        return out

    def _convert_ledger(self) -> None:
        """An older pipe's Parquet rows become properties; the table is emptied and marked."""
        _, rows = self.query(f"SELECT {self._NAMES} FROM {LEDGER}")
        props = [self._ledger_prop(list(r)) for r in rows]
        with self.shared.ledger_lock:
            for i in range(0, len(props), _CHUNK):
                self.execute(self._ledger_append(props[i : i + _CHUNK]))
            self._script(
                [
                    f"TRUNCATE TABLE {LEDGER}",
                    f"ALTER TABLE {LEDGER} SET TBLPROPERTIES ('{FORMAT}' = 'properties')",
                ]
            )

    def _ledger_prop(self, row: list) -> str:
        """`'key' = 'value'` of one row, keyed by its content."""
        value = json.dumps(row, separators=(",", ":"))
        key = PREFIX + hashlib.sha1(value.encode()).hexdigest()[:24]
        return f"'{key}' = {sqlmod.literal(value, self.dialect)}"

    def _ledger_append(self, props: list[str]) -> str:
        return f"ALTER TABLE {LEDGER} SET TBLPROPERTIES (\n" + ",\n".join(props) + ")"

    def _ledger_unset(self, keys: list[str]) -> None:
        for i in range(0, len(keys), _CHUNK):
            listed = ", ".join(f"'{k}'" for k in keys[i : i + _CHUNK])
            self.execute(f"ALTER TABLE {LEDGER} UNSET TBLPROPERTIES IF EXISTS ({listed})")

    def record_published(self, key, entry) -> None:
        """The row is queued with the task's publish (spark_publish: set in its script)."""
        reads = encode_reads(entry.reads) if entry.reads else None
        n = None if entry.rows is None else int(entry.rows)
        replaced = None if entry.replaced is None else int(entry.replaced)
        row = [*key, entry.fingerprint, n, entry.published_at, reads, bool(entry.partial)]
        prop = self._ledger_prop([*row, replaced])
        if self._task is not None:
            self._task.rows.append(prop)
        else:
            with self.shared.ledger_lock:
                self.execute(self._ledger_append([prop]))

    def record_removed(self, keys, at: float) -> None:
        """Tombstones, one statement (after what the task queued)."""
        if not keys:
            return
        props = [
            self._ledger_prop([*key, "", None, at + i * 1e-6, None, None, None])
            for i, key in enumerate(sorted(keys))
        ]
        self._flush()
        with self.shared.ledger_lock:
            self.execute(self._ledger_append(props))

    def compact_ledger(self) -> int:
        """Keep the latest row per key, and no tombstone."""
        props = self._ledger_props()
        with self.shared.ledger_lock:
            latest: dict[tuple, tuple[float, str]] = {}
            for k, r in props.items():
                if (r[0], r[1], r[2]) not in latest or r[5] > latest[(r[0], r[1], r[2])][0]:
                    latest[(r[0], r[1], r[2])] = (r[5], k)
            keep = {k for _, k in latest.values() if props[k][3]}
            gone = sorted(set(props) - keep)
            self._ledger_unset(gone)
        self.ledger_rows = len(keep)
        return len(gone)

    def forget_ledger(self, model: str) -> None:
        props = self._ledger_props()
        with self.shared.ledger_lock:
            self._ledger_unset(sorted(k for k, r in props.items() if r[0] == model))
