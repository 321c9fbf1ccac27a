"""The columns a check names against the columns its table has: a check on a column the
model's output does not have is a compile error, where the compile can tell the output
(`OutputColumns`).

The compiler calls `unknown_columns` once per compile with every model's checks; each
check type's entry in the registry (checks.py) says which columns it names.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping

from .checks import REGISTRY, Check
from .errors import ConfigError, SourceLocation, UnknownTable, UserError
from .names import written


class OutputColumns:
    """The columns of a model's output where the compile can tell them: its outermost
    SELECT names them (`sql.select_shape`), or selects * from one table whose columns are
    known (a model, recursively, or a source that declares `columns:`). Else None: a
    star over a seed, a join or a source without `columns:` (what `pipe lineage` works out
    through sqlglot's qualify, too slow for every compile)."""

    def __init__(
        self,
        shapes: Mapping[str, tuple | None],
        declared: Mapping[str, tuple[str, ...]],
        resolve: Callable[[str], str | None],
    ):
        self.shapes = shapes  # model -> sql.select_shape of its reference rendering
        self.declared = declared  # source -> its declared columns
        self.resolve = resolve
        self._known: dict[str, tuple[str, ...] | None] = {}
        self._lower: dict[str, frozenset[str] | None] = {}

    def of(self, name: str) -> tuple[str, ...] | None:
        if name in self.declared:
            return self.declared[name]
        if name not in self._known:
            self._known[name] = None  # a star over itself (a cycle, reported elsewhere)
            self._known[name] = self._expand(self.shapes.get(name))
        return self._known[name]

    def has(self, name: str, column: str) -> bool | None:
        """Whether table `name` has `column` (case aside); None when its columns are not
        known."""
        if name not in self._lower:
            known = self.of(name)
            self._lower[name] = None if known is None else frozenset(c.lower() for c in known)
        found = self._lower[name]
        return None if found is None else column.lower() in found

    def _expand(self, shape) -> tuple[str, ...] | None:
        if shape is None:
            return None
        names, star_from = shape
        if star_from is None:
            return names
        table = self.resolve(written(star_from))
        inner = self.of(table) if table else None
        if inner is None:
            return None
        return tuple(c for n in names for c in (inner if n == "*" else (n,)))


def unknown_columns(
    models: Iterable[tuple[str, tuple[Check, ...], str | None]],
    shapes: Mapping[str, tuple | None],
    declared: Mapping[str, tuple[str, ...]],
    resolve: Callable[[str, SourceLocation | None], str],
    dialect: str,
) -> list[UserError]:
    """A ConfigError for each column a check names that its table does not have, where
    that table's columns are known (see OutputColumns); names compare as SQL compares plain
    names, case aside. `models` are (model, its compiled checks, the file they are in)."""

    def table_of(name: str) -> str | None:
        try:
            return resolve(name, None)
        except UnknownTable:
            return None

    columns = OutputColumns(shapes, declared, table_of)
    errors: list[UserError] = []
    for model, checks, path in models:
        for check in checks:
            for table, column in REGISTRY[check.type].columns(check.args, dialect):
                if columns.has(table or model, column) is not False:
                    continue
                known = columns.of(table or model)
                close = difflib.get_close_matches(column, known, n=1, cutoff=0.6)
                errors.append(
                    ConfigError(
                        f"check {check.name}: {table or model} has no column '{column}'",
                        at=SourceLocation(path, check.line),
                        hint=f"did you mean '{close[0]}'?"
                        if close
                        else "its columns: " + ", ".join(known),
                    )
                )
    return errors
