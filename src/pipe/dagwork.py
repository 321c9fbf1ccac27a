"""Work on the names of a DAG in upstream-first order, each name's work in one of a pool of
forked worker processes once all its upstream names are done; for work whose input comes
from its upstream results (column lineage: a model is qualified with the columns its
upstream models turned out to have), so a plain parallel map over all names cannot do it.

    run(order, upstream, prepare, work, finish)

`prepare(name)` runs in this process when the name's upstream names are finished, and
returns `(True, result)` when it needs no work (a cache hit) or `(False, job)`;
`work(job)` computes the result, in a worker or here; `finish(name, result)` takes it,
here, before any downstream name is prepared. The pool is forked only when `parallel_min`
jobs are waiting at once (a cold computation; an edit's few misses stay in process), on
Linux with two cores or more; a pool that cannot be forked, or whose worker dies, leaves
the rest to this process. Jobs and results cross to the workers pickled: keep them small.
Which process does a job, and the order names finish in, never change a result.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping

PARALLEL_MIN = 32  # jobs waiting at once before a pool is worth forking
BATCH_MAX = 8  # jobs sent to a worker together (each a few milliseconds)


def run(
    order: Iterable[str],
    upstream: Mapping[str, Iterable[str]],
    prepare: Callable[[str], tuple[bool, object]],
    work: Callable[[object], object],
    finish: Callable[[str, object], None],
    parallel_min: int | None = None,
) -> None:
    """Prepare, work and finish every name of `order` (a topological order of the names
    to do; upstream names not in it count as done). `work` must be a module-level
    function (a worker finds it by name). Raises what `prepare`, `work` or `finish` raise."""
    from concurrent.futures import BrokenExecutor

    from .parallel import workers

    order = list(order)
    names = set(order)
    waiting: dict[str, int] = {}
    down: dict[str, list[str]] = {}
    for n in order:
        ups = {u for u in upstream.get(n, ()) if u in names}
        waiting[n] = len(ups)
        for u in ups:
            down.setdefault(u, []).append(n)
    ready = deque(n for n in order if not waiting[n])
    todo: deque[tuple[str, object]] = deque()

    def done(name: str, result: object) -> None:
        finish(name, result)
        for d in down.get(name, ()):
            waiting[d] -= 1
            if not waiting[d]:
                ready.append(d)

    cores = workers()
    with contextlib.ExitStack() as stack:
        pool = None
        broken = cores < 2
        inflight: dict = {}  # future -> [(name, job)]
        while ready or todo or inflight:
            while ready:
                name = ready.popleft()
                hit, value = prepare(name)
                if hit:
                    done(name, value)
                else:
                    todo.append((name, value))
            if pool is None and not broken and len(todo) >= (parallel_min or PARALLEL_MIN):
                pool = _start(stack, len(todo))
                broken = pool is None
            if pool is None:
                if todo:
                    name, job = todo.popleft()
                    done(name, work(job))
                continue
            try:  # a worker process is forked when a job is first submitted
                while todo and len(inflight) < 2 * cores:
                    size = max(1, min(BATCH_MAX, len(todo) // (2 * cores)))
                    batch = [todo.popleft() for _ in range(min(size, len(todo)))]
                    try:
                        inflight[pool.submit(_batch, work, [job for _, job in batch])] = batch
                    except BaseException:
                        todo.extendleft(reversed(batch))
                        raise
                finished = _wait(inflight)
            except (OSError, BrokenExecutor):
                finished = None
            if finished is None:  # no worker could start, or one died: the rest is done here
                for batch in inflight.values():
                    todo.extendleft(reversed(batch))
                inflight.clear()
                pool, broken = None, True
                continue
            for future, results in finished:
                for (name, _), result in zip(inflight.pop(future), results, strict=True):
                    done(name, result)


def _batch(work: Callable[[object], object], jobs: list) -> list:
    """In a worker: `work` of every job, in order."""
    return [work(job) for job in jobs]


def _start(stack: contextlib.ExitStack, tasks: int):
    """A fork pool entered on `stack` (the garbage collector kept off the objects that
    exist now, so a worker does not copy them by walking them), or None when no process
    could be forked."""
    from .parallel import fork_pool, frozen_gc

    stack.enter_context(frozen_gc())
    try:
        return stack.enter_context(fork_pool(tasks))
    except OSError:
        return None


def _wait(inflight: dict):
    """[(future, its results)] of the futures that are done (at least one), or None when
    the pool broke. A job's own exception is raised."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
    try:
        return [(f, f.result()) for f in finished]
    except BrokenProcessPool:
        return None
