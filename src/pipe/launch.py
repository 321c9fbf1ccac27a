"""The `pipe` console script: `pipe run` starts opening its warehouse (runearly.py)
before click and the commands are imported, then the CLI (pipe.cli) runs with that
opening as its root context's `obj`; an opening the command did not take is closed when
the command ends, whichever way it ends."""

from __future__ import annotations

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
