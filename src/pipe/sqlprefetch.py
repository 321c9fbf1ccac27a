"""The slow part of modelsql.SqlBuilder.build for many models at once, in forked workers.

A cold compile renders every Jinja model and parses every rendering: `prefetch` hands
those jobs to a pool of worker processes (parallel.fan_out) and keeps only the small
results (the parse cache's tuples, renderings, parse-cache keys, compiled templates) in
the builder, where `build` finds them. A model that fails in a worker is not reported
there: `build` does it again and raises exactly as without a pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import sql as sqlmod
from .intervals import Interval
from .intervalsql import normalise
from .parallel import chunks, collected_each, fan_out, workers, young_gc_only

if TYPE_CHECKING:
    from .modelsql import SqlBuilder

# Uncached models (to parse, or Jinja models to render) from which compile_project works
# in a pool of processes: below it, forking costs more than it saves.
PARALLEL_MIN = 200


def prefetch(builder: SqlBuilder, models: list[tuple[str, str, str, Interval]]) -> None:
    """Do ahead, in a pool of worker processes, the slow part of `builder.build` for many
    (model, path, text, interval): render the Jinja models and parse the renderings the
    parse cache lacks.

    Stays in process on one core or below PARALLEL_MIN uncached models: a warm compile or
    a small edit parses little."""
    jobs = _jobs(builder, models)
    if len(jobs) < PARALLEL_MIN or workers() < 2:
        return
    try:  # imported once here, not in every worker
        sqlmod.get_dialect(builder.dialect)
    except ValueError:  # an unknown dialect: `build` says so
        return
    if any(job[4] is None for job in jobs):
        builder.renderer.env  # noqa: B018 - compiled templates read before forking
    try:
        # no full collection: a worker would walk (so copy) every page it inherits
        with young_gc_only():
            for results, compiled in fan_out(_chunk, (jobs, builder), chunks(len(jobs), 25, 100)):
                _take(builder, jobs, results)
                builder.renderer.add_compiled(compiled)
    except OSError:  # no process could be forked: `build` does the rest in process
        pass


def _jobs(builder: SqlBuilder, models: list[tuple[str, str, str, Interval]]) -> list[tuple]:
    """(model, path, text, interval, key) worth doing in a worker: key None for a Jinja
    model rendered there, "" for plain SQL the worker normalises, else the key of the
    normalised SQL in `text`. What is known here goes to the builder's pending now."""
    data = builder.cache.data
    jobs: list[tuple] = []
    for model, path, text, interval in models:
        if "{" in text:
            if builder.cold or not builder.renderer.cheap(path, text):
                # cold (its rendering will need parsing), or slow to compile
                jobs.append((model, path, text, interval, None))
                continue
            try:  # cheap to render here, and then its parse-cache key is known
                normalised = normalise(
                    builder.renderer.render(path, text, interval, model), interval
                )
            except Exception:  # noqa: BLE001 - `build` renders it again and reports it
                continue
        elif builder.cold:  # nothing cached (a cold compile): all of it in the workers
            jobs.append((model, path, text, interval, ""))
            continue
        else:
            normalised = normalise(text, interval)
        key = builder.key(normalised)
        builder.pending[(path, interval)] = (normalised, key)
        if key not in data:
            jobs.append((model, path, normalised, interval, key))
    return jobs


def _take(builder: SqlBuilder, jobs: list[tuple], results) -> None:
    """Keep what a worker made of its jobs (see _chunk)."""
    data = builder.cache.data
    for i, normalised, key, hit in results:
        _, path, text, interval, known = jobs[i]
        if not known:  # rendered or normalised in the worker
            builder.pending[(path, interval)] = (text if normalised is None else normalised, key)
        if hit is not None and key not in data:
            data[key] = hit
            builder.cache.dirty = True


def _chunk(shared: tuple[list[tuple], SqlBuilder], bounds: tuple[int, int]):
    """In a worker: render and parse the jobs [start, end) of `shared` (jobs, builder).
    Returns, per job that worked, (index, its normalised SQL or None when that is the
    job's text, parse-cache key, parse-cache entry or None when the parent has it), and
    the templates compiled."""
    from .modelsql import parse_refs

    jobs, builder = shared
    data = builder.cache.data
    out = []
    for i in collected_each(range(*bounds)):
        model, path, text, interval, key = jobs[i]
        try:
            if key is None:  # Jinja
                normalised = normalise(
                    builder.renderer.render(path, text, interval, model), interval
                )
            elif key == "":
                normalised = normalise(text, interval)
            else:
                out.append((i, None, key, parse_refs(text, builder.dialect, path)))
                continue
            key = builder.key(normalised)
            hit = None if key in data else parse_refs(normalised, builder.dialect, path)
            out.append((i, None if normalised is text else normalised, key, hit))
        except Exception:  # noqa: BLE001 - `build` does it again and reports it
            continue
    return out, builder.renderer.take_compiled()
