"""`pipe status`, `pipe lineage` and `pipe docs`: the commands that read a project and what
its runs recorded, and print or serve it."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from .. import console, intervals
from ..errors import UserError
from .base import common, handle_errors, load, parse_execution_time


@click.command()
@click.option("--interval", "interval", help="Show this interval's tasks.")
@click.option("--limit", default=5, show_default=True, help="How many recent runs to show.")
@click.option(
    "--run",
    "run_id",
    type=int,
    help="One run's record: every attempt with its "
    "queue wait and execution time, the critical path, failed dependencies, late "
    "rows, backfill progress.",
)
@click.option(
    "--freshness",
    is_flag=True,
    help="Only the age of each model's and source's "
    "newest data; exit 1 when any is past its error_after.",
)
@click.option(
    "--execution-time", "execution_time", help="What pipe takes as now (UTC; default: now)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@common
@handle_errors
def status(project, target, interval, limit, run_id, freshness, execution_time, as_json):
    """What ran, what failed and why, what is missing, stale, partial or late."""
    from ..status import collect

    cp = load(project, target)
    if freshness:
        _freshness(cp, as_json, parse_execution_time(execution_time))
        return
    if run_id is not None:
        from .. import runrecord

        record = runrecord.collect(cp, run_id)
        cp.save_cache()
        found = record.as_json()
        click.echo(json.dumps(found, indent=2) if as_json else console.run_record_text(record))
        return
    report = collect(
        cp,
        intervals.parse_label(interval) if interval else None,
        limit,
        parse_execution_time(execution_time),
    )
    cp.save_cache()
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, default=str))
    else:
        click.echo(console.status_text(report))


def _catalog(cp):
    """The warehouse's columns of tables, when it can be reached (else none)."""
    from ..adapters import adapter_class

    @functools.cache
    def columns(tables: tuple[str, ...]):
        return adapter_class(cp.target).peek_columns(cp.target, cp.raw.root, tables)

    return lambda tables: columns(tuple(tables))


@click.command()
@click.argument("name", metavar="SCHEMA.MODEL[.COLUMN]")
@click.option(
    "--downstream",
    is_flag=True,
    help="What the column feeds (its impact) instead of where it comes from.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: one object for a column, an array for a model.",
)
@common
@handle_errors
def lineage(project, target, name, downstream, as_json):
    """Column-level lineage: a column's parents and seed/source columns, or its impact."""
    from .. import lineage as lin

    cp = load(project, target)
    model, column = lin.parse_target(cp, name)
    root = cp.raw.root
    kept = lin.load_cache(root)
    cache, before = kept.data, len(kept.data)
    catalog = _catalog(cp)
    found = lin.compute(cp, [model], catalog=catalog, cache=cache)
    table = found.table(model)
    for c in [column] if column else table.columns[:1] or [""]:
        lin.check_column(table, c)  # unknown column, or a model whose columns are unknown
    if downstream:
        found = lin.compute(
            cp, lin.with_downstream(cp.graph.upstream, model), catalog=catalog, cache=cache
        )
    cp.save_cache()
    lin.save_cache(kept, before)
    rows = lin.report(found, model, [column] if column else table.columns, downstream)
    if as_json:
        click.echo(
            json.dumps(rows[0].as_json() if column else [r.as_json() for r in rows], indent=2)
        )
        return
    note = (
        None
        if table.complete
        else (
            f"note: some inputs of {model} are not known (a star or column over a source "
            "without 'columns:' in sources.yml)"
        )
    )
    click.echo(console.lineage_text(rows, downstream, note))


def _freshness(cp, as_json: bool, now) -> None:
    from .. import freshness

    report = freshness.collect(cp, now)
    cp.save_cache()
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo(console.freshness_text(report))
    if report.failed:
        sys.exit(1)


@click.command()
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    help="Folder to write the site into (default: .pipe/site in the project).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the site on localhost and rebuild it when "
    "the project, its plans or its runs change.",
)
@click.option(
    "--port",
    type=int,
    default=8000,
    show_default=True,
    help="Port for --serve (0 takes a free one).",
)
@click.option(
    "--no-lineage",
    is_flag=True,
    help="Leave column lineage out (a faster first build of a large project).",
)
@common
@handle_errors
def docs(project, target, out, serve, port, no_lineage):
    """Write a static site of the project and its runs (opens from file://, no network)."""
    from .. import site

    cp = load(project, target)
    cp.save_cache()
    dest = Path(out) if out else cp.raw.root / site.DEFAULT_OUT
    result = site.build(cp, dest, lineage=not no_lineage)
    click.echo(
        f"wrote {dest / 'index.html'} ({result.models} nodes, {result.runs} runs, "
        f"{result.plans} plans) in {result.seconds:.2f}s"
    )
    if not serve:
        return

    def rebuild() -> None:
        again = load(project, target)
        again.save_cache()
        done = site.build(again, dest, lineage=not no_lineage)
        click.echo(f"rebuilt ({done.models} nodes, {done.runs} runs) in {done.seconds:.2f}s")

    def failed(exc: Exception) -> None:
        text = console.format_user_error(exc) if isinstance(exc, UserError) else repr(exc)
        click.echo(f"rebuild failed, still serving the last site: {text}", err=True)

    from ..siteserve import serve

    try:
        serve(
            dest,
            port,
            rebuild,
            cp.raw.root,
            on_ready=lambda url: click.echo(f"serving {url} (Ctrl-C stops)"),
            on_error=failed,
        )
    except KeyboardInterrupt:
        click.echo("stopped")
