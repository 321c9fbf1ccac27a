"""`pipe compile`, `pipe list` and `pipe init`: the commands that read or create a project
and write plans, without a warehouse."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

import click

from .. import console, intervals, planfile, workspace
from ..errors import SourceLocation, UserError
from .base import common, handle_errors, intervals_of, load, unsafe_label


@click.command()
@click.option(
    "--interval", "interval", help="Run label: 2026-06-15, 2026-06-15T10, 2026-06, or START/END."
)
@click.option("--start", help="First day (or hour) of a range of intervals.")
@click.option("--end", help="End of the range (exclusive).")
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if a plan on disk is missing or stale."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common
@handle_errors
def compile(project, target, interval, start, end, check, as_json):
    """Validate the project and write plans/<target>/<interval>.json."""
    from .. import runview

    # before the loader reads a file: what `pipe run` checks to skip loading it again
    # (recorded with the plans written; a plain compile writes none)
    planned = bool(interval or start or end)
    snap = (
        runview.snapshot(Path(project))
        if planned and not check and Path(project, "pipe.yml").is_file()
        else None
    )
    cp = load(project, target, write_cache=not check)  # --check writes nothing at all
    root = cp.raw.root
    ivs = intervals_of(cp, interval, start, end)
    if check and not ivs:  # CI: every plan already on disk must still be what compile makes
        folder = root / "plans" / cp.target.name
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            label = unsafe_label(path.stem.replace("--", "/"))
            try:
                ivs.append(intervals.parse_label(label))
            except UserError as exc:
                raise UserError(
                    f"not a plan file name: {exc.message}",
                    at=SourceLocation(planfile.relpath(root, path)),
                    hint="plans/<target>/ holds only files pipe compile writes",
                ) from None
    if not ivs and not check:
        workspace.validate(cp)
    results = [workspace.compile_plan(cp, iv, check) for iv in ivs]
    cp.save_cache()
    if snap is not None and ivs:
        runview.record(snap, cp, target, ivs)
    bad = [r for r in results if r.status in ("missing", "stale")]
    if as_json:
        plans = [dataclasses.asdict(r) for r in results]
        click.echo(json.dumps({"models": len(cp.models()), "plans": plans}, indent=2))
    else:
        kinds = _kind_counts(cp)
        click.echo(f"compiled {cp.name}: {kinds}")
        for r in results:
            click.echo(f"  {r.status:<9} {r.path} ({r.tasks} tasks)")
        if check and not results:
            click.echo("  no plans on disk to check")
        if bad:
            click.echo(
                f"{len(bad)} plan file(s) missing or stale: run 'pipe compile' for "
                "those intervals and commit plans/",
                err=True,
            )
    if bad:
        sys.exit(1)


def _kind_counts(cp) -> str:
    counts: dict[str, int] = {}
    for n in cp.nodes.values():
        counts[n.kind] = counts.get(n.kind, 0) + 1
    order = ["full", "incremental", "view", "seed", "source"]
    return ", ".join(f"{counts[k]} {k}" for k in order if k in counts)


@click.command(name="list")
@click.option("--select", "select", help="Selection: name, +name, name+, tag:x (space-separated).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@common
@handle_errors
def list_(project, target, select, as_json):
    """Models, seeds and sources with kind, grain and inferred dependencies."""
    from ..graph import select as graph_select

    cp = load(project, target)
    names = graph_select(cp.graph, select, {n: v.config.tags for n, v in cp.nodes.items()})
    cp.save_cache()
    rows = [_Listed.of(cp.nodes[name]) for name in sorted(names)]
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    click.echo(
        console.table(
            [[r.name, r.kind, r.grain or "-", ", ".join(r.depends_on) or "-"] for r in rows],
            ["name", "kind", "grain", "depends_on"],
        )
    )


@dataclasses.dataclass(frozen=True)
class _Listed:
    """A node as `pipe list` shows it (its JSON: these fields, in this order)."""

    name: str
    kind: str
    grain: str | None
    depends_on: tuple[str, ...]
    path: str | None
    tags: tuple[str, ...]
    fingerprint: str

    @classmethod
    def of(cls, node) -> _Listed:
        return cls(
            node.name,
            node.kind,
            node.grain,
            tuple(node.upstream),
            node.path,
            tuple(node.config.tags),
            node.fingerprint,
        )


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--debug", is_flag=True, hidden=True)
@handle_errors
def init(directory):
    """Create a working project in DIRECTORY from the scaffold."""
    dest = Path(directory)
    if (dest / "pipe.yml").exists():
        raise UserError(f"{dest / 'pipe.yml'} already exists; pipe init never overwrites a project")
    scaffold = resources.files("pipe.templates") / "project"
    with resources.as_file(scaffold) as src:
        files = [
            p.relative_to(src)
            for p in sorted(src.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        ]
        clash = [f.as_posix() for f in files if (dest / f).exists()]
        if clash:
            raise UserError(
                f"{dest} already has {', '.join(clash[:5])}; pipe init never overwrites a file",
                hint="use a new or empty directory",
            )
        for f in files:
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / f, dest / f)
    name = re.sub(r"\W+", "_", dest.resolve().name).strip("_").lower() or "project"
    if not name[0].isalpha():
        name = f"p_{name}"
    yml = dest / "pipe.yml"
    yml.write_text(yml.read_text().replace("name: my_project", f"name: {name}", 1))
    click.echo(
        f"created a pipe project in {dest}\n"
        f"next: cd {dest} && pipe compile --interval 2026-06-01 && "
        "pipe run --interval 2026-06-01"
    )
