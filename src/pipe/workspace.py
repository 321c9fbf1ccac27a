"""What commands call: load -> compile -> plan, through the caches.

    project dir --loader--> RawProject --compiler--> CompiledProject
                --planner--> Plan --planfile--> plans/<target>/<interval>.json

"Compile if missing, refuse if stale" lives here and nowhere else (`ensure_plans`): `pipe
run` and `pipe backfill` run a plan file only when it is what compiling would write now.

A compile of an unchanged project need not build its plans again: the plan of an interval
is a function of the project's files, the target, the interval and pipe itself, all of
which `plan_key` hashes (CompiledProject.key covers all but the interval). Writing a plan
records, per plan file, that key and the sha256 of the bytes written; `known_unchanged`
trusts a record only while the file on disk still has those bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import planfile
from .errors import SourceLocation, StalePlanError
from .intervals import Interval, iso

if TYPE_CHECKING:  # the compiler, loader and planner are imported only when used:
    # `pipe run` of an unchanged project needs none of them (see runview.py)
    from .compiler import CompiledProject
    from .plan import Plan


def load(
    project: Path,
    target: str | None = None,
    write_cache: bool = True,
    warn: Callable[[str], None] | None = None,
) -> CompiledProject:
    """The project in (or above) `project`, loaded and compiled through the caches;
    `warn(message)` for each warning about pipe.yml."""
    from .compiler import compile_project
    from .loader import load_project

    raw = load_project(Path(project), use_cache=True, write_cache=write_cache)
    for warning in raw.config.warnings:
        if warn is not None:
            warn(warning)
    return compile_project(raw, target, write_cache=write_cache)


@dataclass(frozen=True)
class PlanFile:
    """What compiling one interval did to its plan file."""

    path: str  # relative to the project: plans/<target>/<interval>.json
    status: str  # written | unchanged | ok | missing | stale (the last three: --check)
    tasks: int


def rel_plan_path(cp: CompiledProject, interval: Interval) -> str:
    root = cp.raw.root
    return planfile.relpath(root, planfile.plan_path(root, cp.target.name, interval))


def compile_plan(cp: CompiledProject, interval: Interval, check: bool = False) -> PlanFile:
    """`pipe compile` for one interval: write its plan (unless recorded unchanged), or
    with `check` build it and compare it with the file on disk, writing nothing."""
    rel = rel_plan_path(cp, interval)
    from .planner import build_plan

    known = None if check else known_unchanged(cp, interval)
    if known is not None:  # built from these very inputs, and the file is untouched
        return PlanFile(rel, "unchanged", known)
    if check:  # CI: always built and compared for real
        plan = build_plan(cp, interval)
        reason = planfile.stale_reason(cp.raw.root, plan)
        return PlanFile(rel, reason or "ok", len(plan.tasks))
    from .plansplice import write

    made = write(cp, interval)  # only the changed models' tasks built, where it can
    _record_written(cp, made.path, interval, made.sha, made.tasks)
    return PlanFile(rel, "written" if made.changed else "unchanged", made.tasks)


def ensure_plans(
    cp: CompiledProject,
    ivs: Iterable[Interval],
    hint: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[PlanFile]:
    """Compile if missing, refuse if stale: the plan file of every interval is written
    when it is missing and kept when it is what compiling writes now; when any is stale
    (the project changed since it was compiled) nothing runs: StalePlanError naming them,
    with `hint` (how to review and recompile). Statuses: written | unchanged."""
    from .planner import build_plan

    ivs = list(ivs)
    root = cp.raw.root
    out: list[PlanFile] = []
    stale: list[str] = []
    for i, iv in enumerate(ivs):
        rel = rel_plan_path(cp, iv)
        known = known_unchanged(cp, iv)
        if known is not None:
            out.append(PlanFile(rel, "unchanged", known))
        elif not (root / rel).exists():  # as `pipe compile --interval` writes it, with the
            out.append(_write_missing(cp, iv, rel))  # record its next edit splices from
        else:
            fresh = build_plan(cp, iv)
            reason = planfile.stale_reason(root, fresh)
            if reason == "stale":
                stale.append(rel)
            else:
                write_recorded(cp, fresh)  # missing: written; up to date: recorded
                status = "written" if reason == "missing" else "unchanged"
                out.append(PlanFile(rel, status, len(fresh.tasks)))
        if on_progress:
            on_progress(i + 1, len(ivs))
    if len(stale) == 1:
        raise StalePlanError(
            "this plan is stale: the project changed since it was compiled",
            at=SourceLocation(stale[0]),
            hint=hint,
        )
    if stale:
        shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
        raise StalePlanError(
            f"plan files are stale: {shown}: the project changed since they were compiled",
            hint=hint,
        )
    return out


def _write_missing(cp: CompiledProject, interval: Interval, rel: str) -> PlanFile:
    from .plansplice import write

    made = write(cp, interval)
    _record_written(cp, made.path, interval, made.sha, made.tasks)
    return PlanFile(rel, "written", made.tasks)


def validate(cp: CompiledProject) -> None:
    """Plain `pipe compile`: check what `--interval` checks (each model's SQL for the
    target, every check's and sensor's SQL) by building, not writing, the plan of the
    project's first interval: of the models and sources whose fingerprint (SPEC §7: their
    SQL, macros, checks, upstream) it has not built since. A warm compile builds nothing,
    and a cold one builds again only what its compile did not (modelsql.ModelSql)."""
    from .modelsql import reference_interval
    from .planner import validate as validate_sql

    iv = reference_interval(cp.raw, cp.raw.config.schedule)
    key = plan_key(cp, iv)
    if key is not None and known_unchanged(cp, iv) is not None:
        return
    done_key = f"validated:{cp.target.name}:{iso(iv.start)}"
    done = cp.state.records().get(done_key) or frozenset()
    fingerprints = {n: node.fingerprint for n, node in cp.nodes.items()}
    todo = [n for n, fp in fingerprints.items() if fp not in done]
    if todo:
        validate_sql(cp, iv, models=todo)
    if key is not None and todo:
        cp.state.record(done_key, frozenset(fingerprints.values()))


# ---------------------------------------------------------------- unchanged plans


def plan_key(cp: CompiledProject, interval: Interval) -> str | None:
    if not cp.key:
        return None
    return hashlib.sha256(
        f"{planfile.PLAN_FORMAT}\0{cp.key}\0{iso(interval.start)}\0{iso(interval.end)}".encode()
    ).hexdigest()


def known_unchanged(cp: CompiledProject, interval: Interval) -> int | None:
    """The number of tasks of `interval`'s plan when the file on disk is the one compiling
    would write now (recorded by `write_recorded` from the same inputs, bytes unchanged
    since); None when it must be built."""
    key = plan_key(cp, interval)
    if key is None:
        return None
    root = cp.raw.root
    path = planfile.plan_path(root, cp.target.name, interval)
    found = cp.state.records().get(planfile.relpath(root, path))
    if not found or found[0] != key:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return found[2] if hashlib.sha256(data).hexdigest() == found[1] else None


def write_recorded(cp: CompiledProject, plan: Plan) -> bool:
    """Write the plan file, and record its key and bytes for `known_unchanged`; return
    whether the file's bytes changed."""
    path, changed, data = planfile.write(cp.raw.root, plan)
    if plan.target == cp.target.name:
        sha = hashlib.sha256(data).hexdigest()
        _record_written(cp, path, plan.interval, sha, len(plan.tasks))
    return changed


def _record_written(cp: CompiledProject, path: Path, interval: Interval, sha: str, tasks: int):
    key = plan_key(cp, interval)
    if key is not None:
        cp.state.record(planfile.relpath(cp.raw.root, path), (key, sha, tasks))
