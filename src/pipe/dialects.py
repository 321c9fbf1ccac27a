"""sqlglot's dialects by name: each built once, and a hint for a name sqlglot does not know.

sqlglot is imported on the first call, not with this module: importing it takes a tenth
of a second, and a compile whose models are all in the parse cache never needs it.
"""

from __future__ import annotations

import difflib

_DIALECTS: dict = {}  # a cache of immutable Dialect objects, not work in progress


def get_dialect(name: str):
    """The sqlglot Dialect named `name`, built once: sqlglot.parse(text, read="duckdb")
    builds a new one on every call."""
    found = _DIALECTS.get(name)
    if found is None:
        from sqlglot.dialects.dialect import Dialect

        found = _DIALECTS[name] = Dialect.get_or_raise(name)
    return found


def dialect_or_name(name: str):
    """The Dialect named `name`, or the name itself when sqlglot does not know it (sqlglot
    then says so where it is used, as it did before)."""
    try:
        return get_dialect(name)
    except ValueError:
        return name


def dialect_hint(name: str) -> str | None:
    """None when sqlglot knows the dialect `name`; else a hint: the closest name."""
    try:
        get_dialect(name)
    except ValueError:
        from sqlglot.dialects.dialect import Dialects

        names = sorted(d.value for d in Dialects if d.value)
        close = difflib.get_close_matches(name.lower(), names, n=1)
        return f"did you mean '{close[0]}'?" if close else "sqlglot knows " + ", ".join(names)
    return None
