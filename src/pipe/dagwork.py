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
    from .parallel import workers

    walk = _Walk(list(order), upstream, prepare, finish)
    cores = workers()
    with contextlib.ExitStack() as stack:
        pool = None
        broken = cores < 2
        inflight: dict = {}  # future -> [(name, job)]
        while walk.ready or walk.todo or inflight:
            walk.prepare_ready()
            if pool is None and not broken and len(walk.todo) >= (parallel_min or PARALLEL_MIN):
                pool = _start(stack, len(walk.todo))
                broken = pool is None
            if pool is not None and not _step(pool, work, walk, inflight, cores):
                pool, broken = None, True  # no worker could start, or one died
            elif pool is None and walk.todo:
                name, job = walk.todo.popleft()
                walk.done(name, work(job))


class _Walk:
    """The names of one `run`: how many upstream names each still waits for, those ready
    to prepare, and the prepared jobs waiting for a process."""

    def __init__(self, order: list[str], upstream, prepare, finish):
        self.prepare, self.finish = prepare, finish
        names = set(order)
        self.waiting: dict[str, int] = {}
        self.down: dict[str, list[str]] = {}
        for n in order:
            ups = {u for u in upstream.get(n, ()) if u in names}
            self.waiting[n] = len(ups)
            for u in ups:
                self.down.setdefault(u, []).append(n)
        self.ready = deque(n for n in order if not self.waiting[n])
        self.todo: deque[tuple[str, object]] = deque()

    def prepare_ready(self) -> None:
        while self.ready:
            name = self.ready.popleft()
            hit, value = self.prepare(name)
            if hit:
                self.done(name, value)
            else:
                self.todo.append((name, value))

    def done(self, name: str, result: object) -> None:
        self.finish(name, result)
        for d in self.down.get(name, ()):
            self.waiting[d] -= 1
            if not self.waiting[d]:
                self.ready.append(d)


def _step(pool, work, walk: _Walk, inflight: dict, cores: int) -> bool:
    """Keep the pool's workers busy with batches of jobs, wait for at least one batch and
    finish its names. False when the pool broke: its jobs are back in `walk.todo`."""
    from concurrent.futures import BrokenExecutor

    todo = walk.todo
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
    if finished is None:  # the rest is done in this process
        for batch in inflight.values():
            todo.extendleft(reversed(batch))
        inflight.clear()
        return False
    for future, results in finished:
        for (name, _), result in zip(inflight.pop(future), results, strict=True):
            walk.done(name, result)
    return True


def _batch(work: Callable[[object], object], jobs: list) -> list:
    """In a worker: `work` of every job, in order."""
    return [work(job) for job in jobs]


def _start(stack: contextlib.ExitStack, tasks: int):
    """A fork pool entered on `stack` (no full garbage collection meanwhile, so a worker
    does not copy the objects it inherits by walking them), or None when no process
    could be forked."""
    from .parallel import fork_pool, young_gc_only

    stack.enter_context(young_gc_only())
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
