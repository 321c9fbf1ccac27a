"""The fork pool: run one function over many jobs in worker processes, one per core.

Work reaches the workers as arguments: `fan_out(fn, shared, jobs)` hands `shared` (the
big read-only input, e.g. every model's text) to each worker once, at its start, through
the fork itself (never pickled), and each job (a small value, e.g. a range of indexes)
by pickling; the parent keeps no module state between calls. Forking is safe only where
the platform forks a process that has imported anything, Linux: elsewhere `workers()`
is 1 and callers do the work in process. Knows no project type.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
from collections.abc import Callable, Iterable, Iterator

# In a worker process only: what its pool's initializer was given (fn, shared). Set once
# per forked process, never in the parent.
_WORKER: list = []


@functools.cache
def workers() -> int:
    """How many worker processes a pool may have: the cores this process may use, on
    Linux (where forking a process that has imported anything is safe); 1 elsewhere."""
    if not sys.platform.startswith("linux"):
        return 1
    return len(os.sched_getaffinity(0))


def chunks(n: int, low: int, high: int) -> list[tuple[int, int]]:
    """[start, end) ranges over n jobs: about four per worker, each of low..high jobs."""
    size = max(low, min(high, -(-n // (workers() * 4))))
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _worker_signals() -> None:
    """Ctrl-C is the parent's to handle (it stops the pool), and the pool's SIGTERM ends a
    worker whatever handler the parent had installed."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start_worker(fn, shared) -> None:
    _worker_signals()
    _WORKER[:] = [fn, shared]


def _call(job):
    fn, shared = _WORKER
    return fn(shared, job)


@contextlib.contextmanager
def fork_pool(tasks: int, initializer=_worker_signals, initargs: tuple = ()):
    """An executor of worker processes forked from this one, at most one per core and
    `tasks`. Use `run_all`. Raises OSError when no process can be forked; the caller then
    does the work itself."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    for stream in (sys.stdout, sys.stderr):  # no buffered output is copied into a fork
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or odd stream: nothing to copy
            pass
    executor = ProcessPoolExecutor(
        max(1, min(workers(), tasks)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=initializer,
        initargs=initargs,
    )
    try:
        yield executor
    except BaseException:  # Ctrl-C: drop the queued jobs, the running ones end soon
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def run_all(executor, fn, jobs) -> Iterator:
    """fn(job) for every job in the pool, each result as it comes. A worker that died
    (killed, out of memory) ends the iteration early: the caller does what is left."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    futures = [executor.submit(fn, job) for job in jobs]
    try:
        for future in as_completed(futures):
            yield future.result()
    except BrokenProcessPool:
        return


def fan_out(fn: Callable, shared, jobs: Iterable) -> Iterator:
    """fn(shared, job) for every job in forked workers, each result as it comes (not in
    order). `fn` must be a module-level function; `shared` reaches each worker through
    the fork. A worker that died ends the iteration early; OSError when nothing could be
    forked: in both cases the caller does what is left in process."""
    jobs = list(jobs)
    with fork_pool(len(jobs), _start_worker, (fn, shared)) as pool:
        yield from run_all(pool, _call, jobs)


def collected_each(items: Iterable) -> Iterator:
    """`items` one at a time, in a worker process, each followed by one collection of the
    youngest generation, with automatic collections off meanwhile: the cyclic garbage one
    item leaves (a parse tree, its scopes) is freed before the next starts, at one pass
    over what that item made. With automatic collections, parts of each tree outlive a
    young collection while it is being built and are promoted to the oldest generation,
    where only a full collection, walking every page inherited from the parent, would
    free them: the worker's memory grows, and so does the time its allocations take."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        for item in items:
            yield item
            gc.collect(0)
    finally:
        if enabled:
            gc.enable()


# A threshold for the oldest generation that the count of younger collections never
# reaches: no full collection runs (see young_gc_only).
_NO_FULL = 1 << 30


@contextlib.contextmanager
def young_gc_only():
    """Collect only the young generations while a large piece of work runs: a full
    collection walks every object the process holds (the loaded project, the caches),
    again and again as the work adds objects, and in a forked worker, which inherits
    this setting, it would copy the parent's memory pages by walking them. Young garbage
    (a parse tree, which holds cycles) is collected as usual. The thresholds are put back
    at the end of the outermost block; nothing is frozen."""
    old = gc.get_threshold()
    if old[2] >= _NO_FULL:  # an enclosing block did it
        yield
        return
    gc.set_threshold(old[0], old[1], _NO_FULL)
    try:
        yield
    finally:
        gc.set_threshold(*old)
