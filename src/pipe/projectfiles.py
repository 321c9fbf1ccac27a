"""The one walk over a project's folders, shared by the loader (which reads what it finds)
and the run record (which only stats it): hidden entries skipped, real directories only
(never a symlinked one), depth first. Imports nothing of pipe, so a run's fast path can
use it."""

from __future__ import annotations

import os
from collections.abc import Iterator


def folders(base: str, top: str) -> Iterator[tuple[str, list[tuple[str, os.DirEntry]] | None]]:
    """Each folder under base/top, from top, as (its path relative to base, its visible
    entries as (relative path, entry) sorted by name), or None for the entries of a folder
    that cannot be listed (absent, unreadable)."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(os.path.join(base, folder)) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=_name)
        except OSError:
            yield folder, None
            continue
        named = [(f"{folder}/{e.name}", e) for e in entries]
        yield folder, named
        stack.extend(rel for rel, e in named if is_dir(e))


def _name(entry: os.DirEntry) -> str:
    return entry.name


def is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
