"""What sqlglot's parse errors mean to a person: its messages without its class names, and
the error for SQL nested deeper than pipe parses (the same limit on every machine).

Plain text and regular expressions only: importing this module imports no sqlglot.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import SourceLocation, SqlError

_MISSING = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")


# sqlglot writes a token as its repr: <Token token_type: TokenType.ON, text: on, ...>
_TOKEN = re.compile(
    r"<Token token_type: TokenType\.(\w+), text: (.*?), line: \d+, col: \d+,"
    r" start: \d+, end: \d+, comments: \[.*?\]>"
)


def plain_message(description: str) -> str:
    """sqlglot's message without its class names: "incomplete ADD", and a token as the
    text it is ("expected table name but got 'on'", "... but the SQL ends")."""
    m = _MISSING.search(description)
    if m:
        return f"incomplete {m[2].upper()}"
    description = re.sub(
        r"but got (?=<Token token_type: TokenType\.SENTINEL)", "but the SQL ends", description
    )
    return _TOKEN.sub(lambda t: "" if t[1] == "SENTINEL" else f"'{t[2]}'", description)


# Deeper SQL is refused whatever the installed sqlglot build's recursion would allow: the
# compiled build parses 600 levels where the pure-Python one stops near 60, and a project
# must compile the same on every machine. (Deeper than the pure-Python limit but under this
# one, the RecursionError it raises gives the same message.)
MAX_NESTING = 256


def nesting(tokens) -> int:
    """The deepest parenthesis nesting of a token stream (strings and comments are not
    tokens that count)."""
    left, right = _paren_types()
    depth = deepest = 0
    for token in tokens:
        kind = token.token_type
        if kind is left:
            depth += 1
            if depth > deepest:
                deepest = depth
        elif kind is right:
            depth -= 1
    return deepest


@lru_cache(maxsize=1)
def _paren_types() -> tuple:
    from sqlglot.tokens import TokenType

    return TokenType.L_PAREN, TokenType.R_PAREN


def too_deep(text: str, path: str) -> SqlError:
    """The error for SQL nested deeper than the parser's recursion allows, located at the
    first parenthesis of the deepest nesting."""
    depth = deepest = 0
    line, col, at = 1, 0, (None, None)
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        elif ch == "(":
            depth += 1
            if depth > deepest:
                deepest = depth
                if depth == 1:
                    at = (line, col)
        elif ch == ")":
            depth -= 1
    nested = f" ({deepest} parentheses deep)" if deepest > 50 else ""
    return SqlError(
        f"the SQL is nested too deeply to parse{nested}",
        at=SourceLocation(path, *at) if at[0] else SourceLocation(path, 1),
        hint="flatten it: a CTE (WITH ...) or another model for each level",
    )
