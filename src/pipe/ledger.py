"""The ledger's values: what one publish promised, and what follows from all of them.

The warehouse keeps the ledger (`_pipe.ledger`, one row appended per publish inside the
publish's own transaction; adapters/base.py writes and reads it). This module owns what a
row means, with no database and no clock:

    Entry       one key's latest publish: fingerprint, when, rows, what it read, partial
    Read        one upstream publish a task read: (model, start, end) and its version
    stale()     keys whose upstream was published again after they read it (transitively)
    late_rows() the row-count change of each republished incremental interval

A publish's *version* is its `published_at` (seconds since the epoch, as the engine stores
a DOUBLE): two publishes of one key never share it, since a key is published by one task
at a time under the project lock. A downstream row records the version of every upstream
key it read; when that key's current version differs, the downstream row is stale.
A tombstone (a row with an empty fingerprint) says a key is no longer published: its table
was found missing, or a full refresh left it out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Key = tuple[str, str, str]  # (model, interval start ISO, interval end ISO); seeds: ("m","","")


@dataclass(frozen=True, slots=True)
class Read:
    key: Key
    version: float


@dataclass(frozen=True, slots=True)
class Entry:
    fingerprint: str
    published_at: float
    rows: int | None = None
    reads: tuple[Read, ...] = ()
    partial: bool = False
    replaced: int | None = None  # rows the interval held before this publish (republish)


@dataclass(frozen=True, slots=True)
class Stale:
    """Why a key is stale: the upstream key that changed, and since when."""

    upstream: Key
    since: float | None  # when the upstream was published again (None: it is stale itself)


def encode_reads(reads: Iterable[Read]) -> str:
    """The ledger's text for `reads`: sorted JSON, so equal reads are equal bytes."""
    return json.dumps(sorted([*r.key, r.version] for r in reads), separators=(",", ":"))


def decode_reads(text: str | None) -> tuple[Read, ...]:
    if not text:
        return ()
    return tuple(Read((m, s, e), float(v)) for m, s, e, v in json.loads(text))


def stale(entries: Mapping[Key, Entry]) -> dict[Key, Stale]:
    """Every key built from an upstream publish that is no longer current, directly (the
    upstream key was published again since) or through a stale upstream.

    One pass in publish order suffices: a read whose version is still current was published
    before the reader, so it has been decided already."""
    out: dict[Key, Stale] = {}
    for key, entry in sorted(entries.items(), key=lambda kv: kv[1].published_at):
        for r in entry.reads:
            now = entries.get(r.key)
            if now is None:
                continue  # the upstream is gone (a dropped table): its rebuild will say so
            if now.published_at != r.version:
                out[key] = Stale(r.key, now.published_at)
                break
            if r.key in out:
                out[key] = Stale(r.key, None)
                break
    return out


def late_rows(entries: Mapping[Key, Entry], incremental: set[str]) -> dict[str, tuple[int, int]]:
    """model -> (republished intervals whose row count changed, net rows added) for the
    incremental models: rows that arrived after an interval was first published."""
    out: dict[str, tuple[int, int]] = {}
    for (model, _, _), e in entries.items():
        if (
            model in incremental
            and e.replaced is not None
            and e.rows is not None
            and e.rows != e.replaced
        ):
            n, rows = out.get(model, (0, 0))
            out[model] = (n + 1, rows + e.rows - e.replaced)
    return out


def encode_row(key: Key, entry: Entry) -> str:
    """The one-column ledger row of a publish (adapters/ledgertable.py): a JSON array,
    key first, so that a model's rows share a prefix (`row_prefix`)."""
    return json.dumps(
        [
            *key,
            entry.fingerprint,
            entry.published_at,
            entry.rows,
            sorted([*r.key, r.version] for r in entry.reads),
            entry.partial,
            entry.replaced,
        ],
        separators=(",", ":"),
    )


def decode_row(text: str) -> tuple[Key, Entry]:
    m, s, e, fp, at, rows, reads, partial, replaced = json.loads(text)
    return (m, s, e), Entry(
        fp,
        float(at),
        rows,
        tuple(Read((rm, rs, re), float(rv)) for rm, rs, re, rv in reads),
        bool(partial),
        replaced,
    )


def row_prefix(model: str) -> str:
    """What every `encode_row` of `model` starts with (ASCII: json escapes the rest)."""
    return json.dumps([model], separators=(",", ":"))[:-1] + ","


def fold(rows: Iterable[tuple[Key, Entry]]) -> dict[Key, Entry]:
    """The latest publish of each key, in publish order; a tombstone (an empty
    fingerprint) removes its key."""
    out: dict[Key, Entry] = {}
    for key, entry in sorted(rows, key=lambda kv: kv[1].published_at):
        if entry.fingerprint:
            out[key] = entry
        else:
            out.pop(key, None)
    return out
