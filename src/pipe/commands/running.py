"""`pipe run` and `pipe backfill`: options to a plan and `RunOptions`, then the runner;
the result printed by `finish`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import console, intervals
from ..errors import UserError
from .base import (
    after_start,
    caps_for,
    common,
    complete_only,
    finish,
    handle_errors,
    load,
    observed,
    parse_execution_time,
    select_models,
    warn,
)

if TYPE_CHECKING:  # imported when a command runs: `pipe run` of a recorded plan loads no compiler
    from ..compiler import CompiledProject
    from ..runview import Found, RunProject, Snapshot


@click.command()
@click.option("--interval", "interval", required=True, help="Run label, e.g. 2026-06-15.")
@click.option("--select", "select", help="Run only these models (plan stays whole).")
@click.option("--concurrency", type=int, help="Max tasks in flight (default: pipe.yml).")
@click.option("--force", is_flag=True, help="Rerun tasks already published.")
@click.option(
    "--execution-time",
    "execution_time",
    help="What pipe takes as now (UTC; default: now). An interval ending after it is not complete.",
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Build an incomplete interval anyway, recorded as partial.",
)
@click.option("--no-wait", is_flag=True, help="Exit 2 at once if another run holds the lock.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common
@handle_errors
def run(
    project,
    target,
    interval,
    select,
    concurrency,
    force,
    execution_time,
    allow_partial,
    no_wait,
    as_json,
):
    """Execute one interval with write-audit-publish; resumes where a previous run stopped."""
    from ..runstart import check_env

    iv = intervals.parse_label(interval)
    now = parse_execution_time(execution_time)
    source = _RunSource.of(project, target, iv)
    rp = source.project
    after_start(rp.config, iv)
    complete_only(iv, now, allow_partial)
    models = rp.select(select)
    caps = caps_for(rp.config, concurrency)
    check_env(rp.target)  # a missing ${VAR} is said before anything is written
    reporter = console.ConsoleReporter(click.echo, quiet=as_json)
    early = _early()
    if source.found is None:
        plan = source.compiled_plan(target, iv, quiet=as_json)
        reporter = observed(reporter, source.compiled, plan.select(models).tasks)
        # the lock (and the warehouse) taken now, or already by the console script
        opening = _opening(rp, iv, not no_wait, reporter.waiting_for_lock, early)
    else:  # lock, and open the warehouse while the plan and the runner load
        plan, opening = source.recorded_plan(iv, not no_wait, reporter.waiting_for_lock, early)
    args = {
        "select": select,
        "force": force,
        "concurrency": concurrency,
        "allow_partial": allow_partial,
    }
    from ..runner import run_tasks  # while the warehouse opens

    options = _options("run", iv, caps, force, no_wait, {t.id: t for t in plan.tasks}, now, args)
    tasks = plan.select(models).tasks
    finish(run_tasks(rp.root, rp.target, tasks, options, reporter, opening), as_json)


@dataclass(frozen=True)
class _RunSource:
    """Where `pipe run` gets its project and plan: the run record (`found`) when nothing
    changed since it was recorded, else the project compiled (`compiled`, and the
    project's `snapshot` to record the run with)."""

    project: RunProject
    found: Found | None = None
    compiled: CompiledProject | None = None
    snapshot: Snapshot | None = None

    @classmethod
    def of(cls, project: str, target: str | None, iv) -> _RunSource:
        from .. import runview

        found = runview.recorded(Path(project), target, iv)  # unchanged since recorded
        if found is not None:
            for message in found.project.config.warnings:
                warn(message)
            return cls(found.project, found)
        # load the project; the plan is checked by `compiled_plan`, and recorded
        snap = runview.snapshot(Path(project)) if Path(project, "pipe.yml").is_file() else None
        cp = load(project, target)
        return cls(runview.RunProject.of(cp), None, cp, snap)

    def compiled_plan(self, target: str | None, iv, quiet: bool):
        """The interval's plan file, compiled when missing, recorded for the next run."""
        from .. import runview

        plan = _current_plan(self.compiled, iv, quiet)
        self.compiled.save_cache()
        if self.snapshot is not None:
            runview.record(self.snapshot, self.compiled, target, [iv], plan)
        return plan

    def recorded_plan(self, iv, wait: bool, on_wait, early):
        """The recorded plan, and the warehouse opening (locked) while it loads."""
        opening = _opening(self.project, iv, wait, on_wait, early)
        try:
            return self.found.plan(), opening
        except BaseException:
            opening.close()
            raise


def _early():
    """The warehouse the console script started opening (pipe.launch hands it to click as
    the root context's obj), or None: it holds the project lock already, so whichever
    way `pipe run` goes it must be this opening that the run takes (or closes)."""
    context = click.get_current_context(silent=True)
    return context.find_root().obj if context is not None else None


def _opening(rp, iv, wait: bool, on_wait, early):
    from ..runstart import Opening

    return Opening.of(rp.root, rp.target, f"pipe run {iv.label}", wait, on_wait, early)


def _options(kind: str, span, caps, force: bool, no_wait: bool, context, now, args, **more):
    """The RunOptions of a run or backfill over `span`."""
    from ..runner import RunOptions

    return RunOptions(
        kind=kind,
        label=span.label,
        start=intervals.iso(span.start),
        end=intervals.iso(span.end),
        caps=caps,
        force=force,
        wait=not no_wait,
        context=context,
        execution_time=now,
        args=tuple(args.items()),
        **more,
    )


def _current_plan(cp, iv, quiet: bool):
    """The plan file of `iv`, compiled first when missing; a stale one is refused."""
    hint = (
        f"review the change with 'pipe compile --interval {iv.label}' and "
        "'git diff plans/', then run again"
    )
    from .. import planfile, workspace

    [made] = workspace.ensure_plans(cp, [iv], hint)
    if made.status == "written" and not quiet:
        click.echo(f"compiled {made.path} ({made.tasks} tasks)")
    return planfile.load(cp.raw.root / made.path)


@click.command()
@click.option("--start", required=True, help="First day (or hour) to backfill, UTC.")
@click.option("--end", required=True, help="End of the range (exclusive).")
@click.option("--select", "select", help="Backfill only these models.")
@click.option(
    "--concurrency",
    type=int,
    help="Max tasks in flight (default: backfill.concurrency, else concurrency, in pipe.yml).",
)
@click.option("--dry-run", is_flag=True, help="Show the expansion; write nothing.")
@click.option("--newest-first", is_flag=True, help="Start with the most recent intervals.")
@click.option("--force", is_flag=True, help="Rebuild intervals already published.")
@click.option(
    "--execution-time",
    "execution_time",
    help="What pipe takes as now (UTC; default: now). Intervals ending after it are left out.",
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Also build the incomplete intervals at the end, recorded as partial.",
)
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Rebuild the selected incremental models "
    "from the project's start into a new table, swapped in when all passed.",
)
@click.option("--yes", is_flag=True, help=f"Allow a model to expand past {10_000:,} intervals.")
@click.option("--no-wait", is_flag=True, help="Exit 2 at once if another run holds the lock.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common
@handle_errors
def backfill(
    project,
    target,
    start,
    end,
    select,
    concurrency,
    dry_run,
    newest_first,
    force,
    execution_time,
    allow_partial,
    full_refresh,
    yes,
    no_wait,
    as_json,
):
    """Run every interval in [start, end) under the concurrency caps; resumable."""
    from .. import backfill as bf
    from ..runner import check_env, run_tasks

    cp = load(project, target, write_cache=not dry_run)  # a dry run writes nothing at all
    now = parse_execution_time(execution_time)
    echo = (lambda *a, **k: None) if as_json else click.echo
    span = _span(cp, start, end, now, full_refresh, allow_partial, echo)
    models = select_models(cp, select)
    _refuse_explosion(cp, span, models, yes)
    stubs, selected = _expansion(cp, span, models, full_refresh)
    context = {t.id: t for t in (*stubs.tasks, *selected.tasks)}
    caps = caps_for(cp.raw.config, concurrency, True)
    if dry_run:
        _dry_run(cp, selected, context, force, now, caps, as_json)
        return
    check_env(cp.target)
    bf.persist(cp, span, stubs, console.Counter(echo, "compiling plans"))
    cp.save_cache()
    args = {
        "select": select,
        "force": force,
        "newest_first": newest_first,
        "concurrency": concurrency,
        "allow_partial": allow_partial,
        "full_refresh": full_refresh,
    }
    order = bf.newest_first(selected) if newest_first else bf.oldest_first(selected)
    more = {"priority": order, "hydrate": bf.PlanFiles(cp).hydrate}
    options = _options("backfill", span, caps, force, no_wait, context, now, args, **more)
    reporter = _backfill_reporter(cp, selected, as_json)
    finish(run_tasks(cp.raw.root, cp.target, selected.tasks, options, reporter), as_json)


def _dry_run(cp, selected, context, force: bool, now, caps, as_json: bool) -> None:
    """Print what the backfill would do (--dry-run); write nothing but the compile cache."""
    from .. import backfill as bf

    report = bf.dry_run(cp, selected, context, force, now).as_json()
    cp.save_cache()
    text = json.dumps(report, indent=2) if as_json else None
    click.echo(text or console.dry_run_text(report, caps.concurrency))


def _span(cp, start: str, end: str, now, full_refresh: bool, allow_partial: bool, echo):
    """The span to backfill: from the project's start with --full-refresh, less the
    incomplete intervals at its end unless --allow-partial (said in a note)."""
    from .. import backfill as bf

    span = after_start(cp.raw.config, intervals.parse_range(start, end))
    if full_refresh and cp.raw.config.start is not None:  # the whole table, from the start
        span = intervals.Interval(cp.raw.config.start, span.end)
    span, left_out = bf.complete_part(cp, span, now, allow_partial)
    if left_out is not None:
        echo(
            f"note: leaving out [{intervals.iso(left_out.start)}, {intervals.iso(left_out.end)})"
            f": not complete at the execution time {intervals.iso(now)}Z (--allow-partial "
            "builds it as partial)",
            err=True,
        )
    return span


def _refuse_explosion(cp, span, models, yes: bool) -> None:
    from .. import backfill as bf

    too_many = bf.explosion(cp, span, models)
    if too_many and not yes:
        names = ", ".join(
            f"{m} ({n:,}+ intervals)" if n > bf.EXPLOSION_LIMIT else m for m, n in too_many
        )
        raise UserError(
            f"this backfill expands to more than {bf.EXPLOSION_LIMIT:,} intervals for {names}",
            hint="narrow --start/--end or --select, or pass --yes if you mean it",
        )


def _expansion(cp, span, models, full_refresh: bool):
    """(every stub of the span and the selection's upstream, the selected tasks)."""
    from .. import backfill as bf
    from ..graph import with_upstream

    # the upstream of a selection too: what a selected task reads must be published
    stubs = bf.expand_stubs(cp, span, with_upstream(cp.graph, models) if models else None)
    selected = stubs.select(models)
    if full_refresh:
        selected = bf.full_refresh(selected, models or cp.graph.order)
    return stubs, selected


def _backfill_reporter(cp, selected, as_json: bool):
    """The console (with a bar per schedule interval), and OpenLineage when configured."""
    from .. import backfill as bf

    by_interval = {
        t.id: outer.label
        for t in selected.tasks
        if (outer := bf.inside_one(cp, t.interval)) is not None
    }
    return observed(
        console.ConsoleReporter(click.echo, quiet=as_json, intervals=by_interval),
        cp,
        selected.tasks,
    )
