"""The click commands: thin. The only place that prints and picks exit codes.

Exit codes: 0 ok, 1 a run or check failed, 2 a user error (one message naming the file
and line), 3 a bug in pipe (with the traceback), 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import sys
import traceback
from importlib import resources
from pathlib import Path

import click

from . import __version__, console, intervals
from . import plan as planmod
from .errors import IntervalError, PipeError, RunFailed, SourceLocation, UserError


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def handle_errors(fn):
    """Map UserError -> exit 2, RunFailed -> exit 1, a warehouse error -> 2, anything else
    -> a bug report (3)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = kwargs.pop("debug", False)
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            if debug:
                raise
            _fail(console.format_user_error(exc), 2)
        except RunFailed as exc:
            if debug:
                raise
            _fail(
                exc.result.failure_summary()
                if hasattr(exc.result, "failure_summary")
                else "run failed",
                1,
            )
        except PipeError as exc:  # a warehouse error (AdapterError) no command said better
            if debug:
                raise
            said = " ".join(str(exc).strip().splitlines()[:1]) or type(exc).__name__
            _fail(f"error: the warehouse refused a statement: {said}", 2)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception:
            if debug:
                raise
            click.echo(traceback.format_exc(), err=True)
            _fail(
                f"internal error: this is a bug in pipe {__version__}; please report it "
                "with the traceback above (--debug re-raises it)",
                3,
            )

    return wrapper


def common(fn):
    """--project, --target and --debug on every subcommand, anywhere among its options."""
    fn = click.option("--debug", is_flag=True, hidden=True, help="Re-raise errors.")(fn)
    fn = click.option(
        "--target", "target", default=None, help="Target in pipe.yml (default: default_target)."
    )(fn)
    fn = click.option(
        "--project",
        "project",
        default=".",
        type=click.Path(file_okay=False),
        help="Project directory (default: the current directory).",
    )(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipe")
def main() -> None:
    """pipe: plain SQL models, dependencies inferred by parsing, plans per interval,
    write-audit-publish runs."""


def _load(project: str, target: str | None, write_cache: bool = True):
    from .compiler import compile_project
    from .loader import load_project

    raw = load_project(Path(project), use_cache=True, write_cache=write_cache)
    for warning in raw.config.warnings:
        click.echo(f"warning: {warning}", err=True)
    return compile_project(raw, target, write_cache=write_cache)


def _intervals_of(cp, interval: str | None, start: str | None, end: str | None):
    """The run intervals named by --interval or by --start/--end (project schedule)."""
    if interval and (start or end):
        raise UserError("give either --interval or --start/--end, not both")
    if interval:
        return [_after_start(cp, intervals.parse_label(interval))]
    if start or end:
        if not (start and end):
            raise UserError("--start and --end go together")
        span = _after_start(cp, intervals.parse_range(start, end))
        found = list(intervals.expand(span, cp.raw.config.schedule))
        if not found:
            raise UserError(
                f"no {cp.raw.config.schedule} interval lies wholly inside [{start}, {end})"
            )
        return found
    return []


@main.command()
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
    cp = _load(project, target, write_cache=not check)  # --check writes nothing at all
    root = cp.raw.root
    ivs = _intervals_of(cp, interval, start, end)
    if check and not ivs:  # CI: every plan already on disk must still be what compile makes
        folder = root / "plans" / cp.target.name
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            label = _unsafe_label(path.stem.replace("--", "/"))
            try:
                ivs.append(intervals.parse_label(label))
            except UserError as exc:
                raise UserError(
                    f"not a plan file name: {exc.message}",
                    at=SourceLocation(planmod.relpath(root, path)),
                    hint="plans/<target>/ holds only files pipe compile writes",
                ) from None
    if not ivs and not check:
        _validate(cp)
    results = []
    for iv in ivs:
        rel = planmod.relpath(root, planmod.plan_path(root, cp.target.name, iv))
        known = None if check else planmod.known_unchanged(cp, iv)
        if known is not None:  # built from these very inputs, and the file is untouched
            results.append({"path": rel, "status": "unchanged", "tasks": known})
            continue
        plan = planmod.build_plan(cp, iv)
        if check:  # CI: always built and compared for real
            reason = planmod.stale_reason(root, plan)
            results.append({"path": rel, "status": reason or "ok", "tasks": len(plan.tasks)})
        else:
            _, changed = planmod.write_recorded(cp, plan)
            results.append(
                {
                    "path": rel,
                    "status": "written" if changed else "unchanged",
                    "tasks": len(plan.tasks),
                }
            )
    cp.save_cache()
    bad = [r for r in results if r["status"] in ("missing", "stale")]
    if as_json:
        click.echo(json.dumps({"models": len(cp.models()), "plans": results}, indent=2))
    else:
        kinds = _kind_counts(cp)
        click.echo(f"compiled {cp.name}: {kinds}")
        for r in results:
            click.echo(f"  {r['status']:<9} {r['path']} ({r['tasks']} tasks)")
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


def _validate(cp) -> None:
    """Plain `pipe compile`: check what `--interval` checks (each model's SQL for the target,
    every check's and sensor's SQL) by building, not writing, the plan of the project's
    first interval: of the models and sources whose fingerprint (SPEC §7: their SQL,
    macros, checks, upstream) it has not built since. A warm compile builds nothing."""
    from .compiler import reference_interval

    iv = reference_interval(cp.raw, cp.raw.config.schedule)
    key = planmod.plan_key(cp, iv)
    if key is not None and planmod.known_unchanged(cp, iv) is not None:
        return
    done_key = f"validated:{cp.target.name}:{intervals.iso(iv.start)}"
    done = cp.state.records().get(done_key) or frozenset()
    fingerprints = {n: node.fingerprint for n, node in cp.nodes.items()}
    todo = [n for n, fp in fingerprints.items() if fp not in done]
    if todo:
        planmod.build_plan(cp, iv, models=todo)
    if key is not None and todo:
        cp.state.record(done_key, frozenset(fingerprints.values()))


def _after_start(cp, iv):
    """An interval before the project's `start` does not exist (SPEC §1)."""
    first = cp.raw.config.start
    if first is not None and iv.start < first:
        raise IntervalError(
            f"{iv.label} starts before the project's start {intervals.iso(first)[:10]}",
            at=SourceLocation("pipe.yml"),
            hint="intervals before 'start' do not exist; move 'start' earlier to build them",
        )
    return iv


def _execution_time(value: str | None):
    """--execution-time (UTC; default now): what pipe takes as the present. An interval
    whose end lies after it is not complete (SPEC §7)."""
    from .runner import utcnow

    if value is None:
        return utcnow()
    try:
        return intervals.parse_point(value.replace(" ", "T"), "--execution-time")
    except UserError as exc:
        raise UserError(
            f"--execution-time: {exc.message}",
            hint="a UTC time such as 2026-06-02T06:00 or 2026-06-02",
        ) from None


def _complete_only(iv, execution_time, allow_partial: bool) -> None:
    if iv.end > execution_time and not allow_partial:
        raise IntervalError(
            f"interval {iv.label} is not complete: it ends at {intervals.iso(iv.end)}Z, after "
            f"the execution time {intervals.iso(execution_time)}Z; its data may still arrive",
            hint="run it after it ends, or pass --allow-partial to build it now as partial; "
            "the first run that covers it once it is complete rebuilds it",
        )


def _unsafe_label(stem: str) -> str:
    """Invert Interval.file_stem: '2026-06-15T0000/2026-06-17T0000' -> with colons."""
    parts = []
    for p in stem.split("/"):
        if len(p) == 15 and p[10] == "T":  # YYYY-MM-DDTHHMM
            p = f"{p[:13]}:{p[13:]}"
        parts.append(p)
    return "/".join(parts)


def _kind_counts(cp) -> str:
    counts: dict[str, int] = {}
    for n in cp.nodes.values():
        counts[n.kind] = counts.get(n.kind, 0) + 1
    order = ["full", "incremental", "view", "seed", "source"]
    return ", ".join(f"{counts[k]} {k}" for k in order if k in counts)


@main.command(name="list")
@click.option("--select", "select", help="Selection: name, +name, name+, tag:x (space-separated).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@common
@handle_errors
def list_(project, target, select, as_json):
    """Models, seeds and sources with kind, grain and inferred dependencies."""
    from .graph import select as graph_select

    cp = _load(project, target)
    names = graph_select(cp.graph, select, {n: v.config.tags for n, v in cp.nodes.items()})
    cp.save_cache()
    rows = []
    for name in sorted(names):
        node = cp.nodes[name]
        rows.append(
            {
                "name": name,
                "kind": node.kind,
                "grain": node.grain,
                "depends_on": list(node.upstream),
                "path": node.path,
                "tags": list(node.config.tags),
                "fingerprint": node.fingerprint,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(
        console.table(
            [
                [r["name"], r["kind"], r["grain"] or "-", ", ".join(r["depends_on"]) or "-"]
                for r in rows
            ],
            ["name", "kind", "grain", "depends_on"],
        )
    )


@main.command()
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


def _caps(cp, concurrency: int | None, backfill: bool = False):
    from .scheduler import Caps

    cfg = cp.raw.config
    default = (cfg.backfill_concurrency or cfg.concurrency) if backfill else cfg.concurrency
    n = default if concurrency is None else concurrency
    if n < 1:
        raise UserError("--concurrency must be at least 1")
    return Caps(n, dict(cfg.pools))


def _selected(cp, select: str | None):
    from .graph import select as graph_select

    if not select:
        return None
    return graph_select(cp.graph, select, {n: v.config.tags for n, v in cp.nodes.items()})


def _observed(reporter, cp, tasks):
    """The run's reporter, emitting OpenLineage events when the project asks for them."""
    from .openlineage import observe

    return observe(
        reporter, cp, lambda message: click.echo(message, err=True), {t.model for t in tasks}
    )


def _finish(result, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_result_json(result), indent=2, default=str))
    else:
        click.echo(console.run_summary(result))
    if result.status == "interrupted":
        sys.exit(130)
    if result.status == "failed":
        sys.exit(1)


def _result_json(result) -> dict:
    return {
        "run_id": result.run_id,
        "status": result.status,
        "counts": result.counts,
        "seconds": round(result.seconds, 3),
        "tasks": [
            {
                "id": r.task_id,
                "model": r.model,
                "interval": r.label,
                "status": r.status,
                "reason": r.reason,
                "rows": r.rows,
                "attempts": r.attempts,
                "warnings": list(r.warnings),
                "checks": [
                    {"name": c.name, "status": c.status, "failures": c.failures} for c in r.checks
                ],
            }
            for r in result.reports
        ],
    }


@main.command()
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
    from .errors import StalePlanError
    from .runner import RunOptions, check_env, run_tasks

    cp = _load(project, target)
    root = cp.raw.root
    iv = _after_start(cp, intervals.parse_label(interval))
    now = _execution_time(execution_time)
    _complete_only(iv, now, allow_partial)
    models = _selected(cp, select)
    check_env(cp.target)  # a missing ${VAR} is said before anything is written
    path = planmod.plan_path(root, cp.target.name, iv)
    rel = planmod.relpath(root, path)
    # the compile's record says whether the file on disk is what compiling would write
    # now; only without one is the plan built in memory to compare it
    if planmod.known_unchanged(cp, iv) is None:
        fresh = planmod.build_plan(cp, iv)
        reason = planmod.stale_reason(root, fresh)
        if reason == "stale":
            raise StalePlanError(
                "this plan is stale: the project changed since it was compiled",
                at=SourceLocation(rel),
                hint=f"review the change with 'pipe compile --interval {iv.label}' and "
                "'git diff plans/', then run again",
            )
        planmod.write_recorded(cp, fresh)  # missing: written; up to date: recorded
        if reason == "missing" and not as_json:
            click.echo(f"compiled {rel} ({len(fresh.tasks)} tasks)")
    cp.save_cache()
    plan = planmod.load(path)
    reporter = _observed(
        console.ConsoleReporter(click.echo, quiet=as_json), cp, plan.select(models).tasks
    )
    options = RunOptions(
        kind="run",
        label=iv.label,
        start=intervals.iso(iv.start),
        end=intervals.iso(iv.end),
        caps=_caps(cp, concurrency),
        force=force,
        wait=not no_wait,
        context={t.id: t for t in plan.tasks},
        execution_time=now,
        args={
            "select": select,
            "force": force,
            "concurrency": concurrency,
            "allow_partial": allow_partial,
        },
    )
    result = run_tasks(root, cp.target, plan.select(models).tasks, options, reporter)
    _finish(result, as_json)


@main.command()
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
    from .status import collect

    cp = _load(project, target)
    if freshness:
        _freshness(cp, as_json, _execution_time(execution_time))
        return
    if run_id is not None:
        from . import runrecord

        record = runrecord.collect(cp, run_id)
        cp.save_cache()
        found = runrecord.as_json(record)
        click.echo(json.dumps(found, indent=2) if as_json else console.run_record_text(found))
        return
    report = collect(
        cp,
        intervals.parse_label(interval) if interval else None,
        limit,
        _execution_time(execution_time),
    )
    cp.save_cache()
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo(console.status_text(report))


def _catalog(cp):
    """The warehouse's columns of tables, when it can be reached (else none)."""
    from .adapters import adapter_class

    @functools.cache
    def columns(tables: tuple[str, ...]):
        return adapter_class(cp.target).peek_columns(cp.target, cp.raw.root, tables)

    return lambda tables: columns(tuple(tables))


@main.command()
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
    from . import lineage as lin

    cp = _load(project, target)
    model, column = lin.parse_target(cp, name)
    root = cp.raw.root
    cache = lin.load_cache(root)
    before = len(cache)
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
    lin.save_cache(root, cache, before)
    rows = lin.report(found, model, [column] if column else table.columns, downstream)
    if as_json:
        click.echo(json.dumps(rows[0] if column else rows, indent=2))
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
    from . import freshness

    report = freshness.collect(cp, now)
    cp.save_cache()
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo(console.freshness_text(report.as_json()))
    if report.failed:
        sys.exit(1)


@main.command()
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
    from . import backfill as bf
    from .graph import with_upstream
    from .runner import RunOptions, check_env, run_tasks

    cp = _load(project, target, write_cache=not dry_run)  # a dry run writes nothing at all
    now = _execution_time(execution_time)
    span = _after_start(cp, intervals.parse_range(start, end))
    if full_refresh and cp.raw.config.start is not None:  # the whole table, from the start
        span = intervals.Interval(cp.raw.config.start, span.end)
    span, left_out = bf.complete_part(cp, span, now, allow_partial)
    echo = (lambda *a, **k: None) if as_json else click.echo
    if left_out is not None:
        echo(
            f"note: leaving out [{intervals.iso(left_out.start)}, {intervals.iso(left_out.end)})"
            f": not complete at the execution time {intervals.iso(now)}Z (--allow-partial "
            "builds it as partial)",
            err=True,
        )
    models = _selected(cp, select)
    too_many = bf.explosion(cp, span, models)
    if too_many and not yes:
        names = ", ".join(
            f"{m} ({n:,}+ intervals)" if n > bf.EXPLOSION_LIMIT else m for m, n in too_many
        )
        raise UserError(
            f"this backfill expands to more than {bf.EXPLOSION_LIMIT:,} intervals for {names}",
            hint="narrow --start/--end or --select, or pass --yes if you mean it",
        )
    # the upstream of a selection too: what a selected task reads must be published
    stubs = bf.expand_stubs(cp, span, with_upstream(cp.graph, models) if models else None)
    selected = stubs.select(models)
    if full_refresh:
        selected = bf.full_refresh(selected, models or cp.graph.order)
    context = {t.id: t for t in (*stubs.tasks, *selected.tasks)}
    if dry_run:
        report = bf.dry_run(cp, selected, context, force, now)
        cp.save_cache()
        if as_json:
            click.echo(json.dumps(report, indent=2))
        else:
            click.echo(console.dry_run_text(report, _caps(cp, concurrency, True).concurrency))
        return
    check_env(cp.target)
    progress = console.Counter(echo, "compiling plans")
    bf.persist(cp, span, stubs, progress)
    cp.save_cache()
    files = bf.PlanFiles(cp)
    order = bf.newest_first(selected) if newest_first else bf.oldest_first(selected)
    by_interval = {
        t.id: outer.label
        for t in selected.tasks
        if (outer := bf.inside_one(cp, t.interval)) is not None
    }
    reporter = _observed(
        console.ConsoleReporter(click.echo, quiet=as_json, intervals=by_interval),
        cp,
        selected.tasks,
    )
    options = RunOptions(
        kind="backfill",
        label=span.label,
        start=intervals.iso(span.start),
        end=intervals.iso(span.end),
        caps=_caps(cp, concurrency, True),
        force=force,
        wait=not no_wait,
        priority=order,
        hydrate=files.hydrate,
        context=context,
        execution_time=now,
        args={
            "select": select,
            "force": force,
            "newest_first": newest_first,
            "concurrency": concurrency,
            "allow_partial": allow_partial,
            "full_refresh": full_refresh,
        },
    )
    result = run_tasks(cp.raw.root, cp.target, selected.tasks, options, reporter)
    _finish(result, as_json)


@main.command()
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
    from . import site

    cp = _load(project, target)
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
        again = _load(project, target)
        again.save_cache()
        done = site.build(again, dest, lineage=not no_lineage)
        click.echo(f"rebuilt ({done.models} nodes, {done.runs} runs) in {done.seconds:.2f}s")

    def failed(exc: Exception) -> None:
        text = console.format_user_error(exc) if isinstance(exc, UserError) else repr(exc)
        click.echo(f"rebuild failed, still serving the last site: {text}", err=True)

    try:
        site.serve(
            dest,
            port,
            rebuild,
            cp.raw.root,
            on_ready=lambda url: click.echo(f"serving {url} (Ctrl-C stops)"),
            on_error=failed,
        )
    except KeyboardInterrupt:
        click.echo("stopped")
