"""How the Spark adapter names the physical tables behind the views it publishes.

Spark (Parquet tables, no transactions) publishes a model as a view over a physical table
in `_pipe`, where every schema's tables live side by side: `_pipe.schema__table__v<id>`
for a published version, `_pipe.schema__temp` for a task's build table.
"""

from __future__ import annotations

from ..names import PIPE_SCHEMA, TableName

PHYSICAL = PIPE_SCHEMA  # the physical tables behind the views pipe publishes


def flat(name: TableName) -> str:
    """A table's name in `_pipe`, where every schema's tables live side by side:
    `schema__table`, lowercased (its build table and versions start so)."""
    return f"{name.schema}__{name.table}".lower()


def unflat(name: str) -> TableName:
    """The table a `flat` name stands for: the first `__` ends the schema (wrong for a
    schema whose own name holds `__`; only the sweep of temps left behind reads it)."""
    schema, _, table = name.partition("__")
    return TableName(schema, table)


def physical(name: str) -> str:
    """The table `name` of `_pipe`, as `schema.table`."""
    return str(TableName(PHYSICAL, name))
