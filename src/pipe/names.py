"""Table names: `TableName`, the one currency for a table, and the names a project defines.

A model, seed or source is named `schema.table` (models/<schema>/<table>.sql; a source's
`name:`), each part letters, digits and _ for models and seeds, so the project's spelling
has exactly one dot. `TableName.parse` reads that spelling once; `str()` gives it back
unchanged, and that string is the key of a node in the graph, the plan files and the
state store (their bytes do not change with this type).

`define` checks every name a project defines (valid on the target, none twice) and
indexes them by bare table name, which is what name resolution (modelsql.SqlBuilder)
looks a bare `table` up in.

Importing this module loads nothing of pipe but errors.py (not the loader, not sqlglot,
not the engines): plan.py and the run side can use TableName.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError, SourceLocation, UserError

if TYPE_CHECKING:
    from .config import Target
    from .loader import RawProject

PIPE_SCHEMA = "_pipe"  # pipe's own relations (the ledger); adapters.base.LEDGER


@dataclass(frozen=True, slots=True, order=True)
class TableName:
    """A table as pipe names it: its schema and its table, unquoted. Sorted by schema,
    then table (as the `schema.table` strings sort, up to the dot)."""

    schema: str
    table: str

    @classmethod
    def parse(cls, name: str) -> TableName:
        """`schema.table` as the project spells it (a node name, a resolved name). Any
        other spelling is a bug in the caller: names are validated where they are read."""
        schema, dot, table = name.partition(".")
        if not dot or "." in table:
            raise ValueError(f"not a schema.table name: {name!r}")
        return cls(schema, table)

    @classmethod
    def listed(cls, name: str) -> TableName:
        """A relation as a warehouse listing spells it ('schema.name', the key of an
        adapter's `relations()`): the schema up to the first dot, the rest its table. A
        warehouse may hold a table whose quoted name has a dot (never pipe's own); only
        such a listing is read with this."""
        schema, _, table = name.partition(".")
        return cls(schema, table)

    @staticmethod
    def listed_schema(name: str) -> str:
        """`listed(name).schema` without making the TableName (a run's start reads it for
        each of the warehouse's relations)."""
        return name.partition(".")[0]

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"


def written(parts) -> str:
    """A table reference as a query writes it (its catalog, schema and table parts, empty
    ones left out), for resolution and messages: the parts joined by dots, and a part that
    holds a dot itself (only a quoted name can) in double quotes, so that `"a.b"` is
    never read as the table `a.b`."""
    kept = [p for p in parts if p]
    name = ".".join(kept)
    if name.count(".") != len(kept) - 1:
        name = ".".join(f'"{p}"' if "." in p else p for p in kept)
    return name


def node_name(schema: str, table: str) -> str:
    """The name of the node at models/<schema>/<table>.sql (or seeds/), lowercased: SQL
    names are case-insensitive, so models/a/Daily.sql is the table `a.daily`."""
    return str(TableName(schema.lower(), table.lower()))


def by_table(names) -> dict[str, list[str]]:
    """Bare table name -> the full names that have it, each list sorted."""
    index: dict[str, list[str]] = {}
    for n in sorted(names):
        index.setdefault(TableName.parse(n).table, []).append(n)
    return index


def project_names(raw: RawProject) -> tuple[set[str], dict[str, list[str]]]:
    """Every node name of a project already checked, and its `by_table` index."""
    names = (
        {m.name for m in raw.models} | {s.name for s in raw.seeds} | {s.name for s in raw.sources}
    )
    return names, by_table(names)


def define(
    raw: RawProject, target: Target, errors: list[UserError]
) -> tuple[set[str], dict[str, list[str]]]:
    """Every node name (each a valid table name on the target, none twice), and bare
    table name -> the full names that have it."""
    defined: dict[str, str] = {}  # name -> path that defines it
    found = [(m.name, m.path, 1, "a model") for m in raw.models]
    found += [(s.name, s.path, 1, "a seed") for s in raw.seeds]
    found += [(src.name, "sources.yml", src.line, "a source") for src in raw.sources]
    for name, path, line, what in found:
        bad = bad_name(TableName.parse(name), target, raw.config.dialect)
        if bad:
            errors.append(ConfigError(bad[0], at=SourceLocation(path, line), hint=bad[1]))
        elif name in defined:
            errors.append(
                ConfigError(
                    f"duplicate name '{name}': {what} here and in {defined[name]}",
                    at=SourceLocation(path, line),
                )
            )
        else:
            defined[name] = path
    return set(defined), by_table(defined)


def bad_name(name: TableName, target: Target, dialect: str) -> tuple[str, str] | None:
    """(message, hint) when a table name cannot work on `target`: pipe's own schema, a
    word an engine reserves (engines.py; `dialect` is the models'), a part longer than the
    target's engine keeps."""
    from . import engines  # not at import: plan-side modules can use TableName alone

    schema, table = name.schema, name.table
    if schema == PIPE_SCHEMA:
        return (
            f"'{name}': schema '{PIPE_SCHEMA}' is pipe's own (its ledger lives there)",
            "use another schema",
        )
    if engines.reserved(schema):
        return (
            f"'{name}': '{schema}' is a reserved word in SQL and cannot name a schema",
            f"rename the folder, e.g. '{schema}s' or '{schema}_'; pipe writes names unquoted",
        )
    if engines.reserved_for_tables(table) or (
        engines.reserved(table) and not _readable_after_schema(table, dialect)
    ):
        return (
            f"'{name}': '{table}' is a reserved word in SQL and cannot name a table",
            f"rename it, e.g. '{table}s' or '{table}_'; pipe writes names unquoted",
        )
    rules = engines.ENGINES[target.adapter]
    return rules.name_problem(schema, target.name) or rules.name_problem(table, target.name)


def _readable_after_schema(table: str, dialect: str) -> bool:
    from .sql import readable_after_schema  # sqlglot: only for a reserved word

    return readable_after_schema(table, dialect)
