"""The `pipe` command: the click group. Thin: the commands live in `pipe.commands`, one
module per kind of work, and only they print and pick exit codes.

    commands/base.py     errors -> exit codes, --project/--target, loading, run output
    commands/project.py  compile, list, init: a project and its plans, no warehouse
    commands/running.py  run, backfill: options -> RunOptions -> runner.run_tasks
    commands/reports.py  status, lineage, docs: what a project and its runs recorded

Exit codes: 0 ok, 1 a run or check failed, 2 a user error (one message naming the file
and line), 3 a bug in pipe (with the traceback), 130 interrupted.
"""

from __future__ import annotations

import click

from . import __version__
from .commands import project, reports, running


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipe")
def main() -> None:
    """pipe: plain SQL models, dependencies inferred by parsing, plans per interval,
    write-audit-publish runs."""


for command in (
    project.compile,
    project.list_,
    project.init,
    running.run,
    running.backfill,
    reports.status,
    reports.lineage,
    reports.docs,
):
    main.add_command(command)
