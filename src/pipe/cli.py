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

import importlib

import click

from . import __version__

# name -> module:function of each subcommand, imported only when it is the one invoked
# (or listed by --help): `pipe run` on an unchanged project must not pay for importing
# the compiler, Jinja and sqlglot it does not use (issue 14)
COMMANDS = {
    "compile": "project:compile",
    "list": "project:list_",
    "init": "project:init",
    "run": "running:run",
    "backfill": "running:backfill",
    "status": "reports:status",
    "lineage": "reports:lineage",
    "docs": "reports:docs",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented
    lazy-loading pattern: `list_commands` and `get_command` overridden)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        module, attr = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(f"pipe.commands.{module}"), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipe")
def main() -> None:
    """pipe: plain SQL models, dependencies inferred by parsing, plans per interval,
    write-audit-publish runs."""
