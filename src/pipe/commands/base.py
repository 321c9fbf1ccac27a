"""What every command shares: the error-to-exit-code mapping, the common options, loading
the project, reading intervals and times from options, and printing a run's result.

Exit codes: 0 ok, 1 a run or check failed, 2 a user error (one message naming the file
and line), 3 a bug in pipe (with the traceback), 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path

import click

from .. import __version__, console, intervals
from ..errors import IntervalError, PipeError, RunFailed, SourceLocation, UserError


def fail(message: str, code: int) -> None:
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
            fail(console.format_user_error(exc), 2)
        except RunFailed as exc:
            if debug:
                raise
            fail(
                exc.result.failure_summary()
                if hasattr(exc.result, "failure_summary")
                else "run failed",
                1,
            )
        except PipeError as exc:  # a warehouse error (AdapterError) no command said better
            if debug:
                raise
            said = " ".join(str(exc).strip().splitlines()[:1]) or type(exc).__name__
            fail(f"error: the warehouse refused a statement: {said}", 2)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception:
            if debug:
                raise
            click.echo(traceback.format_exc(), err=True)
            fail(
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


def load(project: str, target: str | None, write_cache: bool = True):
    from ..workspace import load as load_project

    return load_project(Path(project), target, write_cache, warn)


def warn(message: str) -> None:
    """A warning about pipe.yml (every command shows them; they stop nothing)."""
    click.echo(f"warning: {message}", err=True)


def intervals_of(cp, interval: str | None, start: str | None, end: str | None):
    """The run intervals named by --interval or by --start/--end (project schedule)."""
    if interval and (start or end):
        raise UserError("give either --interval or --start/--end, not both")
    if interval:
        return [after_start(cp.raw.config, intervals.parse_label(interval))]
    if start or end:
        if not (start and end):
            raise UserError("--start and --end go together")
        span = after_start(cp.raw.config, intervals.parse_range(start, end))
        found = list(intervals.expand(span, cp.raw.config.schedule))
        if not found:
            raise UserError(
                f"no {cp.raw.config.schedule} interval lies wholly inside [{start}, {end})"
            )
        return found
    return []


def after_start(config, iv):
    """An interval before the project's `start` (pipe.yml, `config`) does not exist
    (SPEC §1)."""
    first = config.start
    if first is not None and iv.start < first:
        raise IntervalError(
            f"{iv.label} starts before the project's start {intervals.iso(first)[:10]}",
            at=SourceLocation("pipe.yml"),
            hint="intervals before 'start' do not exist; move 'start' earlier to build them",
        )
    return iv


def parse_execution_time(value: str | None):
    """--execution-time (UTC; default now): what pipe takes as the present. An interval
    whose end lies after it is not complete (SPEC §7)."""
    if value is None:  # now, zone-less like every interval bound (runner.utcnow)
        from datetime import UTC, datetime

        return datetime.now(UTC).replace(tzinfo=None)
    try:
        return intervals.parse_point(value.replace(" ", "T"), "--execution-time")
    except UserError as exc:
        raise UserError(
            f"--execution-time: {exc.message}",
            hint="a UTC time such as 2026-06-02T06:00 or 2026-06-02",
        ) from None


def complete_only(iv, execution_time, allow_partial: bool) -> None:
    if iv.end > execution_time and not allow_partial:
        raise IntervalError(
            f"interval {iv.label} is not complete: it ends at {intervals.iso(iv.end)}Z, after "
            f"the execution time {intervals.iso(execution_time)}Z; its data may still arrive",
            hint="run it after it ends, or pass --allow-partial to build it now as partial; "
            "the first run that covers it once it is complete rebuilds it",
        )


def unsafe_label(stem: str) -> str:
    """Invert Interval.file_stem: '2026-06-15T0000/2026-06-17T0000' -> with colons."""
    parts = []
    for p in stem.split("/"):
        if len(p) == 15 and p[10] == "T":  # YYYY-MM-DDTHHMM
            p = f"{p[:13]}:{p[13:]}"
        parts.append(p)
    return "/".join(parts)


def caps_for(cfg, concurrency: int | None, backfill: bool = False):
    """The concurrency caps of a run: --concurrency, else pipe.yml's (`cfg`)."""
    from ..scheduler import Caps

    default = (cfg.backfill_concurrency or cfg.concurrency) if backfill else cfg.concurrency
    n = default if concurrency is None else concurrency
    if n < 1:
        raise UserError("--concurrency must be at least 1")
    return Caps(n, dict(cfg.pools))


def select_models(cp, select: str | None):
    from ..graph import select as graph_select

    if not select:
        return None
    return graph_select(cp.graph, select, {n: v.config.tags for n, v in cp.nodes.items()})


def observed(reporter, cp, tasks):
    """The run's reporter, emitting OpenLineage events when the project asks for them."""
    from ..openlineage import observe

    return observe(
        reporter, cp, lambda message: click.echo(message, err=True), {t.model for t in tasks}
    )


def finish(result, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, default=str))
    else:
        click.echo(console.run_summary(result))
    if result.status == "interrupted":
        sys.exit(130)
    if result.status == "failed":
        sys.exit(1)
