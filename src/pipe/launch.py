"""The `pipe` console script: `pipe run` starts opening its warehouse (runearly.py)
before click and the commands are imported, then the CLI (pipe.cli) runs with that
opening as its root context's `obj`; an opening the command did not take is closed when
the command ends, whichever way it ends.

Then the objects the command made and imported are frozen out of the interpreter's last
garbage collections (`gc.freeze`): at exit they walked every one of them, 30-45 ms after a
Postgres run (psycopg's modules) and 80-150 ms after one that imported sqlglot, for
nothing: the command has closed what it opened (connections, the state store, files),
objects that are not in a cycle are still freed as their modules are, and `atexit`
handlers still run (issue 14)."""

from __future__ import annotations

import gc
import sys

from . import runearly


def main() -> None:
    early = runearly.start(sys.argv[1:])
    try:
        from .cli import main as cli

        cli(obj=early)
    finally:
        if early is not None:
            early.close_unused()
        gc.freeze()
