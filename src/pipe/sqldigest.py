"""Digests of SQL text that two spellings of one query share: `canonical_digest` of a
token stream (comments, whitespace and the case of keywords do not count), and
`fragment_key` of the literal text between two Jinja tags. The parse cache and the
fingerprints (SPEC §7) are keyed by them.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from .dialects import get_dialect


def canonical_digest(tokens) -> str:
    """A hash of a token stream that two spellings of one query share: comments (sqlglot
    attaches them to tokens, they are no tokens) and whitespace are not in it, keywords,
    operators and function names count by their upper-cased text. Identifiers, quoted
    or not, strings, numbers and parameters keep their text and their token type
    (`x`, `"x"` and `'x'` differ)."""
    keep, var, l_paren = _token_kinds()
    parts: list[str] = []
    append = parts.append
    prefix_of = keep.get
    previous = None
    for token in tokens:
        kind = token.token_type
        prefix = prefix_of(kind)
        if prefix is None:  # the language's: a keyword, an operator
            if kind is l_paren and previous is var:  # a function name: sum(x) is SUM(x)
                parts[-1] = parts[-1][4:].upper()  # without "VAR:"
            append(token.text.upper())
        else:
            append(prefix + token.text)
        previous = kind
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def fragment_key(text: str, dialect: str) -> str:
    """What counts of a piece of SQL between two Jinja tags (a template's literal text):
    `canonical_digest` of its tokens, and whether it starts and ends with whitespace
    (`a{{ x }}` is not `a {{ x }}`). The text itself when it cannot be read alone: a quote
    or a comment left open (what follows the tag is then inside it)."""
    try:
        tokenizer = get_dialect(dialect).tokenizer_class
        last = text.rsplit("\n", 1)[-1]
        for mark in tokenizer.COMMENTS:
            if (
                isinstance(mark, str)
                and mark in last
                or not isinstance(mark, str)
                and (text.count(mark[0]) != text.count(mark[1]))
            ):
                return "text:" + text
        tokens = get_dialect(dialect).tokenize(text)
    except Exception:  # noqa: BLE001 - an open quote, an unknown dialect: the text counts
        return "text:" + text
    return f"{text[:1].isspace():d}{text[-1:].isspace():d}{canonical_digest(tokens)}"


@lru_cache(maxsize=1)
def _token_kinds() -> tuple:
    """({token type whose text is the user's, not the language's: "NAME:"}, VAR,
    L_PAREN)."""
    from sqlglot.tokens import TokenType

    names = (
        "VAR",
        "IDENTIFIER",
        "STRING",
        "NUMBER",
        "PARAMETER",
        "PLACEHOLDER",
        "BIT_STRING",
        "HEX_STRING",
        "BYTE_STRING",
        "NATIONAL_STRING",
        "NATIONAL_RAW_STRING",
        "RAW_STRING",
        "HEREDOC_STRING",
        "UNICODE_STRING",
    )
    keep = {getattr(TokenType, n): f"{n}:" for n in names if hasattr(TokenType, n)}
    return keep, TokenType.VAR, TokenType.L_PAREN
