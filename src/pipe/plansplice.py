"""A plan file made again from the last one: after an edit, only the tasks of the models
that changed are built and encoded; every other model's tasks are copied, as bytes, from
the file this module wrote last time. The file is byte for byte what a full build writes
(tests/test_plansplice.py compares them after each kind of edit).

What one model's tasks in a plan are made of: the model's own files (its SQL and
sidecar), its node (fingerprint, kind, grain, config), the tasks of its upstream models
(their ids and intervals: its upstream ids, where its lookback starts) and what every
model shares (pipe.yml, macros, seeds, sources, the set of model names, the target, pipe
itself: recompile.shared_key) and the plan's interval. The record kept beside each plan
file (.pipe/cache/splice/plans/<target>/<interval>.json.pickle) holds the key of the
shared inputs, the sha256 of the file written, the order of the models in it, and per
model the marks of what its tasks were made from and the length of their bytes (lengths,
not offsets: an edit changes few of them, and the store appends only what changed). A
model is built again when its marks differ, or when the tasks of a model upstream of it
may have other ids or intervals (its kind, grain, lookback, depends_on_past or upstream
changed: the third mark, its shape). When the shared key differs, the file on disk is
not the one recorded, or anything does not add up, the plan is built whole.

The changed models' tasks need their upstream's task ids and lookback: the models they
are built with are the changed ones and everything upstream of them (planner.build_plan
with a `render` that makes the upstream ones stubs, without SQL or checks).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import planfile
from .cache import Store, store
from .graph import with_upstream
from .intervals import Interval, iso
from .parallel import young_gc_only

if TYPE_CHECKING:
    from .compiler import CompiledProject
    from .plan import Plan

VERSION = "1"


@dataclass(frozen=True)
class Written:
    """A plan file written (or found holding these bytes already)."""

    path: Path
    changed: bool
    data: bytes
    sha: str
    tasks: int
    rebuilt: frozenset[str] | None  # the models whose tasks were built (None: all)


def write(cp: CompiledProject, interval: Interval) -> Written:
    """Build `interval`'s plan (from the last file where it can) and write its file."""
    with young_gc_only():  # it makes a few objects per model: no full collections
        return _write(cp, interval)


def _write(cp: CompiledProject, interval: Interval) -> Written:
    from .planner import build_plan

    root = cp.raw.root
    path = planfile.plan_path(root, cp.target.name, interval)
    record = _record(cp, path)
    key = _key(cp, interval) if record is not None else None
    marks = _marks(cp) if key is not None else {}
    spliced = _splice(cp, interval, path, record, key, marks) if key is not None else None
    rebuilt = None
    if spliced is not None:
        data, layout, count, rebuilt, old = spliced
        changed = data != old
    else:
        plan = build_plan(cp, interval)
        data, layout = _full(plan)
        count = len(plan.tasks)
        changed = not _holds(path, data)
    sha = hashlib.sha256(data).hexdigest()
    if changed:
        planfile.write_bytes(path, data)
    if record is not None and key is not None:
        _remember(record, key, sha, marks, layout)
    return Written(path, changed, data, sha, count, rebuilt)


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


# ---------------------------------------------------------------- the record


def _record(cp: CompiledProject, path: Path) -> Store | None:
    """The splice record of a plan file, when this compile keeps caches."""
    state = cp.state
    if not (state.use_cache and state.write_cache and cp.key):
        return None
    rel = planfile.relpath(cp.raw.root, path)
    return store(cp.raw.root, f"splice/{rel}.pickle", VERSION)


def _key(cp: CompiledProject, interval: Interval) -> str | None:
    """What every task of the plan shares (see the module docstring)."""
    from .recompile import shared_key

    shared = shared_key(cp.raw, cp.target)
    if shared is None:
        return None
    text = f"{VERSION}\0{planfile.PLAN_FORMAT}\0{shared}\0{cp.target.dialect}\0{cp.name}"
    text += f"\0{iso(interval.start)}\0{iso(interval.end)}"
    return hashlib.sha256(text.encode()).hexdigest()


def _marks(cp: CompiledProject) -> dict[str, tuple]:
    """Per node: (fingerprint, its files' content hashes, the shape of its tasks), where
    the shape is what decides its tasks' ids and intervals and those of what reads it."""
    hashes = cp.raw.hashes
    files = {
        m.name: (hashes.get(m.path), m.sidecar, hashes.get(m.sidecar) if m.sidecar else None)
        for m in cp.raw.models
    }
    out = {}
    for name, node in cp.nodes.items():
        c = node.config
        shape = (node.kind, node.grain, c.lookback, c.depends_on_past, node.upstream)
        out[name] = (node.fingerprint, files.get(name), shape)
    return out


def _remember(record: Store, key: str, sha: str, marks: dict, layout) -> None:
    """Keep what the file just written was made from: per node its marks, its number of
    tasks and the length of their bytes; the order of the models in the file."""
    if layout is None:  # a plan the json module wrote: nothing to splice from
        record.replace({})
    else:
        order, sizes = layout
        none = (0, 0)  # a node without tasks (a source without wait_for)
        models = {name: (*mark, *sizes.get(name, none)) for name, mark in marks.items()}
        record.replace({"key": key, "sha": sha, "order": order, "models": models})
    record.save()  # mostly unchanged after an edit: the store appends what changed


# ---------------------------------------------------------------- building


def _full(plan: Plan) -> tuple[bytes, tuple | None]:
    """The file of a plan built whole, and its layout (see `_assembled`)."""
    opening = planfile.frame(plan)
    chunks = [planfile.encode_task(t) for t in plan.tasks] if opening is not None else None
    if chunks is None or None in chunks:
        return planfile.dumps(plan), None
    names, blocks = [], []
    for model, first, end in _runs(plan):
        names.append((model, end - first))
        blocks.append(planfile.TASK_SEPARATOR.join(chunks[first:end]))
    return _assembled(opening, names, blocks)


def _assembled(opening: bytes, names: list, blocks: list) -> tuple[bytes, tuple]:
    """The file, and its layout: the models in order, and per model (tasks, bytes)."""
    sizes = {
        model: (count, len(block)) for (model, count), block in zip(names, blocks, strict=True)
    }
    return planfile.assemble(opening, blocks), (tuple(model for model, _ in names), sizes)


def _runs(plan: Plan):
    """(model, first task, end) of each model's tasks, which follow each other."""
    tasks = plan.tasks
    first = 0
    for i in range(1, len(tasks) + 1):
        if i == len(tasks) or tasks[i].model != tasks[first].model:
            yield tasks[first].model, first, i
            first = i


def _splice(
    cp: CompiledProject, interval: Interval, path: Path, record: Store, key: str, marks: dict
) -> tuple[bytes, tuple, int, frozenset[str], bytes] | None:
    """The file built from the last one, its layout, its number of tasks, the models
    built again and the last file's bytes (None: build it whole)."""
    from .planner import build_plan

    last = record.data
    if last.get("key") != key:
        return None
    old = _last_bytes(path, last["sha"])
    if old is None:
        return None
    before = last["models"]
    again = _changed(cp, marks, before)
    expanded = with_upstream(cp.graph, again)  # what their upstream ids and lookback need
    plan = build_plan(cp, interval, expanded, render=lambda node, _iv: node.name in again)
    opening = planfile.frame(plan)
    if opening is None:
        return None
    if not old.startswith(opening):
        return None
    kept = _old_blocks(old, len(opening), last)
    runs = {model: (first, end) for model, first, end in _runs(plan)}
    names, blocks = [], []
    for model in cp.graph.order:
        if model in again:
            first, end = runs.get(model, (0, 0))
            chunks = [planfile.encode_task(t) for t in plan.tasks[first:end]]
            if None in chunks:
                return None
            count, block = end - first, planfile.TASK_SEPARATOR.join(chunks)
        else:  # _changed found its record
            count, block = before[model][3], kept.get(model)
        if count:
            names.append((model, count))
            blocks.append(block)
    data, layout = _assembled(opening, names, blocks)
    return data, layout, sum(n for _, n in names), frozenset(again), old


def _old_blocks(old: bytes, at: int, last: dict) -> dict[str, memoryview]:
    """Each model's tasks in the last file (from `at`, past its opening), as recorded."""
    view = memoryview(old)
    models = last["models"]
    out = {}
    step = len(planfile.TASK_SEPARATOR)
    for model in last["order"]:
        size = models[model][4]
        out[model] = view[at : at + size]
        at += size + step
    return out


def _last_bytes(path: Path, sha: str) -> bytes | None:
    """The plan file on disk when it is the one recorded."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha else None


def _changed(cp: CompiledProject, marks: dict, before: dict) -> set[str]:
    """The models whose tasks are built again: their marks differ from the last plan's,
    or the shape of a model upstream of them does."""
    again: set[str] = set()
    reshaped: set[str] = set()
    for name in cp.graph.order:
        mark = marks[name]
        was = before.get(name)
        if (
            was is None
            or was[2] != mark[2]
            or any(up in reshaped for up in cp.nodes[name].upstream)
        ):
            reshaped.add(name)
            again.add(name)
        elif was[0] != mark[0] or was[1] != mark[1]:
            again.add(name)
    return again
