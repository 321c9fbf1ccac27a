"""Plans as values: Plan, Task and CheckSpec, the runner's whole view of a project.

A plan is data (STYLE §5): the runner needs only a plan and an adapter, so this module
imports nothing of pipe but intervals and names (for TableName); it must never import
the compiler, the loader, Jinja or sqlglot (tests/test_plans.py holds `pipe.executor` to
that). Each task has a stable id (a hash of model and interval), its upstream task ids,
the final SQL in the target dialect, the target and temporary table names, the checks as
SQL, and the model fingerprint. planner.py builds plans, planfile.py reads and writes their files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from functools import lru_cache

from .intervals import Interval, iso
from .names import TableName


@dataclass(frozen=True)
class CheckSpec:
    name: str
    type: str
    severity: str
    sql: str
    warn_if: str | None = None
    error_if: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    model: str
    kind: str  # full | incremental | view | seed | sensor | swap (--full-refresh)
    interval: Interval | None
    upstream: tuple[str, ...]
    fingerprint: str
    table: str
    temp: str | None = None
    sql: str = ""
    time_column: str | None = None
    checks: tuple[CheckSpec, ...] = ()
    pool: str | None = None
    max_concurrency: int | None = None
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    past: Interval | None = None  # depends_on_past: this interval must be published first
    seed_path: str | None = None
    column_types: tuple[tuple[str, str], ...] = ()
    poke_every: float | None = None
    wait_timeout: float | None = None
    lookback: bool = False  # an interval before the run's, rebuilt for late data
    on_schema_change: str = "fail"
    # backfill --full-refresh: publishes into `table`, a shadow the `swap` task renames in
    refresh: bool = False
    grants: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (privilege, roles) to grant

    @property
    def key(self) -> tuple[str, str, str]:
        """(model, start, end) as the state store keys published work."""
        if self.interval is None:
            return (self.model, "", "")
        return (self.model, *isos(self.interval))  # hot: the scheduler loop asks often

    @property
    def label(self) -> str:
        return self.interval.label if self.interval else "-"

    def __reduce__(self):
        # pickled (runview's plan cache) as its values: unpickling calls __init__ once,
        # a third faster than dataclasses' slot-by-slot __setstate__ for 1,000 tasks
        return (Task, tuple(getattr(self, name) for name in _TASK_FIELDS))


_TASK_FIELDS = tuple(f.name for f in fields(Task))


@dataclass(frozen=True)
class Plan:
    project: str
    target: str
    dialect: str
    interval: Interval
    tasks: tuple[Task, ...]

    def select(self, models: Iterable[str] | None) -> Plan:
        """The same plan with only the tasks of `models` (None keeps all). Upstream ids
        outside the selection stay: what a selected task reads must be published already
        (SPEC §7), and the runner checks that against the ledger."""
        if models is None:
            return self
        keep = set(models)
        return replace(self, tasks=tuple(t for t in self.tasks if t.model in keep))


def task_id(model: str, interval: Interval | None) -> str:
    span = f"{isos(interval)[0]}|{isos(interval)[1]}" if interval else "*"
    return hashlib.sha1(f"{model}|{span}".encode()).hexdigest()[:12]


@lru_cache(maxsize=1 << 16)
def isos(interval: Interval) -> tuple[str, str]:
    """(iso(start), iso(end)): the same few intervals are spelled for every task."""
    return iso(interval.start), iso(interval.end)


def temp_name(table: str, tid: str) -> str:
    """The temporary table a task builds `table` (a node name) in: beside it, in its
    schema, named after it and the task."""
    name = TableName.parse(table)
    return str(TableName(name.schema, f"{name.table[:40]}__pipe_tmp_{tid[:8]}"))
