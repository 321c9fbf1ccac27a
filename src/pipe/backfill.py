"""Backfills: every interval of [start, end) for the selected models, under the caps.

    CompiledProject + span -> stubs (tasks without SQL) -> dry-run report, or
    persisted plans -> runner.run_tasks(stubs, hydrate=PlanFiles.hydrate)

Expansion is the same as a run's over the whole span (SPEC §3): an incremental model
gets one task per interval of its grain; full and view models build once, after every
interval of their upstream; `depends_on_past` chains a model's intervals in order. Tasks
are held as stubs: a year of 1,000 models is 365,000 tasks, so the SQL stays in the plan
files (one per schedule interval, exactly what `pipe compile --start --end` writes, plus
plans/<target>/backfill/<span>.json for the tasks built once) and a worker loads it when
it starts the task.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from . import planfile, workspace
from .adapters.base import TEMP_MARK
from .compiler import CompiledProject, Node
from .decide import decide
from .errors import IntervalError, PlanFileError, SourceLocation
from .intervals import Interval, expand, floor, iso
from .ledger import stale
from .names import TableName
from .plan import Plan, Task, task_id
from .planner import build_plan
from .state import StateStore

EXPLOSION_LIMIT = 10_000


def inside_one(cp: CompiledProject, iv: Interval | None) -> Interval | None:
    """The schedule interval that contains `iv`, if there is one."""
    if iv is None:
        return None
    from .intervals import floor, next_start

    start = floor(iv.start, cp.raw.config.schedule)
    outer = Interval(start, next_start(start, cp.raw.config.schedule))
    return outer if outer.contains(iv) else None


def expand_stubs(cp: CompiledProject, span: Interval, models: Iterable[str] | None) -> Plan:
    """Every task of the backfill; incremental tasks that sit inside one schedule
    interval come without SQL (their plan file has it)."""

    def render(node: Node, iv: Interval | None) -> bool:
        # a lookback interval before the span has no plan file of the span: SQL inline
        return node.kind != "incremental" or inside_one(cp, iv) is None or iv.start < span.start

    return build_plan(cp, span, models, full_interval=span, render=render)


def shadow_name(model: str) -> str:
    """The table a --full-refresh rebuilds `model` into; it carries the temp mark, so a
    refresh that never reached its swap leaves nothing behind after the next run."""
    name = TableName.parse(model)
    return str(TableName(name.schema, f"{name.table[:40]}{TEMP_MARK}refresh"))


def full_refresh(plan: Plan, models: Iterable[str]) -> Plan:
    """The backfill `plan` with the incremental models among `models` rebuilt into shadow
    tables: their tasks publish into the shadow, a `swap` task per model (after all of
    them) puts it in place in one transaction, and every task that reads the model waits
    for the swap. Until then readers see the old table; if any interval fails, they keep
    it (the swap never runs)."""
    wanted = set(models)
    by_model: dict[str, list[str]] = {}
    for t in plan.tasks:
        if t.model in wanted and t.kind == "incremental":
            by_model.setdefault(t.model, []).append(t.id)
    swaps = {m: task_id(f"{m}#full-refresh", plan.interval) for m in by_model}
    refreshed = {tid: m for m, ids in by_model.items() for tid in ids}
    tasks: list[Task] = []
    for t in plan.tasks:
        # a task that reads a refreshed model reads it by its name: after its swap (a
        # refreshed one too: else it would rebuild from the old table)
        waits = {swaps[refreshed[u]] for u in t.upstream if u in refreshed}
        waits.discard(swaps.get(t.model))  # its own earlier intervals: in the shadow
        if t.id in refreshed:
            t = replace(t, table=shadow_name(t.model), refresh=True)
        tasks.append(replace(t, upstream=tuple(sorted(set(t.upstream) | waits))) if waits else t)
    for model, ids in sorted(by_model.items()):
        last = max(i for i, t in enumerate(tasks) if t.model == model)
        fp = tasks[last].fingerprint
        tasks.insert(
            last + 1,
            Task(
                id=swaps[model],
                model=model,
                kind="swap",
                interval=plan.interval,
                upstream=tuple(ids),
                fingerprint=fp,
                table=model,
                temp=shadow_name(model),
                grants=tasks[last].grants,
            ),
        )
    return replace(plan, tasks=tuple(tasks))


def complete_part(
    cp: CompiledProject, span: Interval, execution_time: datetime, allow_partial: bool
) -> tuple[Interval, Interval | None]:
    """(the span to backfill, the incomplete part left out or None): a backfill builds only
    the schedule intervals that end by the execution time, unless --allow-partial (SPEC §7)."""
    if allow_partial or span.end <= execution_time:
        return span, None
    end = floor(execution_time, cp.raw.config.schedule)
    if end <= span.start:
        raise IntervalError(
            f"nothing to backfill: no {cp.raw.config.schedule} interval of {span.label} is "
            f"complete at the execution time {iso(execution_time)}Z",
            hint="backfill after they end, or pass --allow-partial to build them as partial",
        )
    return Interval(span.start, end), Interval(end, span.end)


def explosion(
    cp: CompiledProject, span: Interval, models: Iterable[str] | None, limit: int = EXPLOSION_LIMIT
) -> list[tuple[str, int]]:
    """Models that would expand to more than `limit` intervals, checked before expanding."""
    out = []
    for name in models if models is not None else cp.graph.order:
        node = cp.nodes[name]
        if node.kind != "incremental":
            continue
        n = 0
        for _ in expand(span, node.grain):
            n += 1
            if n > limit:
                break
        if n > limit:
            out.append((name, n))
    return out


# ---------------------------------------------------------------- dry run


@dataclass(frozen=True)
class ModelPlan:
    """One model's share of a backfill, as the dry run reports it."""

    model: str
    kind: str
    intervals: int = 0
    to_run: int = 0
    skipped: int = 0
    reasons: tuple[tuple[str, int], ...] = ()  # (kind of reason, tasks), as first met


@dataclass(frozen=True)
class DryRun:
    """What a backfill would do and why (`pipe backfill --dry-run`)."""

    span: Interval
    models: tuple[ModelPlan, ...]
    blocked: tuple  # decide.Blocked: tasks whose upstream is not usable
    estimated_task_seconds: float
    estimate_known_for: tuple[str, ...]  # models with past attempts to learn from

    def as_json(self) -> dict:
        """The document `--dry-run --json` prints (and the console reads)."""
        models = [
            {
                "model": m.model,
                "kind": m.kind,
                "intervals": m.intervals,
                "to_run": m.to_run,
                "skipped": m.skipped,
                "reasons": dict(m.reasons),
            }
            for m in self.models
        ]
        return {
            "span": {"start": iso(self.span.start), "end": iso(self.span.end)},
            "models": models,
            "total": {
                "tasks": sum(m.intervals for m in self.models),
                "to_run": sum(m.to_run for m in self.models),
                "skipped": sum(m.skipped for m in self.models),
            },
            "blocked": [
                {
                    "model": b.task.model,
                    "interval": b.task.label,
                    "upstream": b.upstream.model,
                    "upstream_interval": b.upstream.label,
                    "why": b.why,
                }
                for b in self.blocked
            ],
            "estimated_task_seconds": round(self.estimated_task_seconds, 3),
            "estimate_known_for": list(self.estimate_known_for),
        }


def dry_run(
    cp: CompiledProject, plan: Plan, context: dict[str, Task], force: bool, execution_time: datetime
) -> DryRun:
    """What the backfill would do and why, decided as the run decides (decide.py) from the
    state store's mirror of the ledger; writes nothing. Not known without the warehouse:
    tables dropped by hand (the run finds and rebuilds them)."""
    state = StateStore(cp.raw.root, readonly=True)
    try:
        published = state.published_entries(cp.target.name)
        means = state.mean_durations(cp.target.name)
    finally:
        state.close()
    decision = decide(
        plan.tasks, context, published, stale(published), execution_time=execution_time, force=force
    )
    counts: dict[str, list[int]] = {}  # model -> [intervals, to run, skipped]
    kinds: dict[str, str] = {}
    reasons: dict[str, dict[str, int]] = {}
    seconds = 0.0
    for t in plan.tasks:
        row = counts.setdefault(t.model, [0, 0, 0])
        kinds.setdefault(t.model, t.kind)
        row[0] += 1
        reason = decision.run.get(t.id)
        if reason is None:
            row[2] += 1
            continue
        row[1] += 1
        kind = reason.split(":", 1)[0]  # the kind of reason, not each upstream's name
        mine = reasons.setdefault(t.model, {})
        mine[kind] = mine.get(kind, 0) + 1
        seconds += means.get(t.model, 0.0)
    models = tuple(
        ModelPlan(m, kinds[m], *counts[m], tuple(reasons.get(m, {}).items()))
        for m in sorted(counts)
    )
    known = tuple(sorted(m for m in counts if m in means))
    return DryRun(plan.interval, models, tuple(decision.blocked), seconds, known)


# ---------------------------------------------------------------- plan files


@dataclass(frozen=True)
class PersistResult:
    written: int
    unchanged: int
    files: int


def persist(
    cp: CompiledProject,
    span: Interval,
    stubs: Plan,
    on_progress: Callable[[int, int], None] | None = None,
) -> PersistResult:
    """Write (or verify) the plan of every schedule interval of the span, and the file of
    the tasks built once. A plan already on disk that no longer matches is refused, as
    `pipe run` refuses it: recompile and review first."""
    root = cp.raw.root
    days = list(expand(span, cp.raw.config.schedule))
    hint = (
        "run "
        f"'pipe compile --start {iso(span.start)[:10]} --end "
        f"{iso(span.end)[:10]}', review 'git diff plans/', then backfill again"
    )
    made = workspace.ensure_plans(cp, days, hint, on_progress)
    written = sum(1 for m in made if m.status == "written")
    unchanged = len(made) - written
    once = Plan(
        stubs.project,
        stubs.target,
        stubs.dialect,
        span,
        tuple(t for t in stubs.tasks if t.sql or t.kind in ("seed", "sensor")),
    )
    path = backfill_path(root, stubs.target, span)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = planfile.dumps(once)
    if not path.is_file() or path.read_bytes() != data:
        planfile.write_bytes(path, data)
    return PersistResult(written, unchanged, len(days) + 1)


def backfill_path(root: Path, target: str, span: Interval) -> Path:
    return root / "plans" / target / "backfill" / f"{span.file_stem}.json"


class PlanFiles:
    """Loads a stub's SQL and checks from its interval's plan file (a few files cached)."""

    def __init__(self, cp: CompiledProject, size: int = 8):
        self.cp = cp
        self.root = cp.raw.root
        self.size = size
        self._cache: OrderedDict[Path, dict[str, Task]] = OrderedDict()
        self._lock = threading.Lock()
        self._paths: dict[Interval, Path] = {}  # a task's interval -> its plan file

    def hydrate(self, task: Task) -> Task:
        if task.sql or task.kind in ("seed", "sensor", "swap"):
            return task
        path = self._paths.get(task.interval)
        if path is None:  # every model of an interval shares it: made once an interval
            outer = inside_one(self.cp, task.interval)
            path = self._paths[task.interval] = planfile.plan_path(
                self.root, self.cp.target.name, outer
            )
        with self._lock:
            tasks = self._cache.get(path)
            if tasks is None:
                tasks = {t.id: t for t in planfile.load(path).tasks}
                self._cache[path] = tasks
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(path)
        found = tasks.get(task.id)
        if found is None or found.fingerprint != task.fingerprint:
            raise PlanFileError(
                f"this plan file has no task {task.id} for {task.model} {task.label} "
                "(it changed since the backfill started)",
                at=SourceLocation(planfile.relpath(self.root, path)),
                hint="recompile the plans with 'pipe compile --start ... --end ...', review "
                "'git diff plans/', and run the backfill again",
            )
        return replace(found, table=task.table, refresh=True) if task.refresh else found


def newest_first(plan: Plan) -> Callable[[Task], tuple]:
    order = {t.id: i for i, t in enumerate(plan.tasks)}

    def key(t: Task) -> tuple:
        return (-t.interval.start.timestamp() if t.interval else float("-inf"), order[t.id])

    return key


def oldest_first(plan: Plan) -> Callable[[Task], tuple]:
    """Default: older intervals first, so a paused backfill has a contiguous done prefix."""
    order = {t.id: i for i, t in enumerate(plan.tasks)}

    def key(t: Task) -> tuple:
        return (t.interval.start.timestamp() if t.interval else float("-inf"), order[t.id])

    return key
