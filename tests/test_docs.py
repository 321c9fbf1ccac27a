"""The docs are part of the product: every command and option is in docs/cli.md, and
README's Quickstart is what CI runs (sqlite-utils' tests/test_docs.py is the model)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from pipe.cli import main

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = (ROOT / "docs" / "cli.md").read_text()
README = (ROOT / "README.md").read_text()


def _commands():
    ctx = click.Context(main)
    return [(name, main.get_command(ctx, name)) for name in main.list_commands(ctx)]


@pytest.mark.parametrize("name, command", _commands(), ids=[n for n, _ in _commands()])
def test_every_command_and_option_is_in_the_cli_reference(name, command):
    assert f"## pipe {name}" in CLI_MD, f"docs/cli.md has no section '## pipe {name}'"
    section = CLI_MD.split(f"## pipe {name}", 1)[1].split("\n## pipe ", 1)[0]
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        if param.name in ("project", "target", "help"):
            continue  # common to every command: documented once, at the top of cli.md
        flags = [o for o in param.opts if o.startswith("--")]
        assert any(f in section for f in flags), (
            f"docs/cli.md '## pipe {name}' does not mention {flags[0]}"
        )


def quickstart() -> list[str]:
    block = README.split("## Quickstart", 1)[1].split("```", 2)[1]
    return [ln for ln in block.splitlines()[1:] if ln.strip()]


def test_readme_quickstart_is_two_lines_and_ci_runs_the_second():
    lines = quickstart()
    assert len(lines) == 2, lines
    assert lines[0].startswith("pip install ") and "pipe run" in lines[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert lines[1] in ci, f".ci/run does not run README's second Quickstart line: {lines[1]}"
    assert re.search(r"python -m pytest", lines[1])


def test_ci_runs_the_house_style_checks():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nruff check ." in ci and "\nruff format --check ." in ci
