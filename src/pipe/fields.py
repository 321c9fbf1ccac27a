"""Reading typed fields out of YAML mappings, each mistake a located ConfigError.

`Fields(path, errors)` wraps one file: `keys` reports unknown keys (with a did-you-mean)
and missing ones, `typed`, `choice`, `positive_int`, `duration`, `str_list` and `str_map`
read one key and return its value or a default after recording what is wrong with it.
Errors are collected, never raised, so a compile reports every mistake of every file at
once. Used by config.py (pipe.yml, sidecars, sources) and checks.py (check arguments);
this module knows neither.
"""

from __future__ import annotations

import difflib

from .errors import ConfigError, SourceLocation, UserError
from .intervals import parse_duration
from .yamlio import YMap


class Fields:
    """Collects errors for one file so that a compile reports them all."""

    def __init__(self, path: str, errors: list[UserError]):
        self.path = path
        self.errors = errors

    def err(self, message: str, line: int | None, hint: str | None = None) -> None:
        self.errors.append(ConfigError(message, at=SourceLocation(self.path, line), hint=hint))

    def mapping(self, value, what: str, line: int | None) -> YMap | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.err(f"{what} must be a mapping, got {typename(value)}", line)
            return None
        return value

    def keys(self, m: YMap, allowed, required=(), what: str = "") -> None:
        suggested = set()
        for key in m:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                suggested.update(close)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else ("allowed keys: " + ", ".join(sorted(allowed)))
                )
                self.err(
                    f"unknown key '{key}'{' in ' + what if what else ''}", m.line_of(key), hint
                )
        for key in required:
            if key not in m and key not in suggested:  # a typo of it is reported already
                self.err(f"missing required key '{key}'{' in ' + what if what else ''}", m.line)

    def typed(self, m: YMap, key: str, types, default=None, what: str | None = None):
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if isinstance(value, bool) and bool not in as_tuple(types):
            ok = False
        else:
            ok = isinstance(value, types)
        if not ok:
            self.err(
                f"'{key}' must be {what or typename_of(types)}, got {typename(value)}",
                m.line_of(key),
            )
            return default
        return value

    def choice(self, m: YMap, key: str, choices, default=None):
        value = self.typed(m, key, str, default)
        if value is not default and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            self.err(
                f"'{key}' must be one of {', '.join(choices)}, got '{value}'",
                m.line_of(key),
                f"did you mean '{close[0]}'?" if close else None,
            )
            return default
        return value

    def positive_int(self, m: YMap, key: str, default=None, minimum: int = 1):
        value = self.typed(m, key, int, default, "a whole number")
        if value is not default and value < minimum:
            self.err(f"'{key}' must be at least {minimum}, got {value}", m.line_of(key))
            return default
        return value

    def duration(self, m: YMap, key: str, default=None):
        if key not in m or m[key] is None:
            return default
        try:
            return parse_duration(m[key], key)
        except UserError as exc:
            self.err(exc.message, m.line_of(key))
            return default

    def str_list(self, m: YMap, key: str) -> tuple[str, ...]:
        value = m.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.err(f"'{key}' must be a list of names", m.line_of(key))
            return ()
        return tuple(value)

    def str_map(self, m: YMap, key: str) -> tuple[tuple[str, str], ...]:
        value = self.mapping(m.get(key), f"'{key}'", m.line_of(key))
        if not value:
            return ()
        out = []
        for k, v in value.items():
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                self.err(f"'{key}.{k}' must be text", value.line_of(k))
                continue
            out.append((str(k), str(v)))
        return tuple(sorted(out))


def as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


def typename_of(types) -> str:
    names = {
        str: "text",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }
    return " or ".join(names.get(t, t.__name__) for t in as_tuple(types))


def typename(value) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: f"'{value}'",
        list: "a list",
    }.get(type(value), "a mapping" if isinstance(value, dict) else type(value).__name__)
