"""What a command runs, and why: the ledger against the tasks, with no database and no clock.

    decide(tasks, context, ledger, ...) -> Decision(run={id: why}, skip, blocked, partial)

A task is skipped only when its key is published with its fingerprint, complete (not
partial), not stale, and nothing it reads is rebuilt by the same command (SPEC §7). Every
task that runs has one reason, in this order of precedence:

    full refresh         backfill --full-refresh: rebuilt into a shadow table, swapped in
    forced               --force
    table missing        its model's table was dropped outside pipe
    never published
    fingerprint changed  the model or its config changed (model), or an upstream model
                         did (upstream)
    partial              built before its interval was complete (--allow-partial)
    stale                an upstream interval it read was published again since
    upstream rebuilt     an upstream task of this command runs
    lookback             one of the model's `lookback` intervals, rebuilt for late data

A selected task that reads a task outside the selection needs that task's key published,
current and not stale; otherwise it is *blocked*: the command must not build it from
nothing (the runner refuses before anything runs and names the upstream). A full model or
view is keyed by run label or backfill span, and its table holds its latest build: when
that build's key covers the upstream task's interval (a backfill's span, say), the task
reads it instead (`Decision.stand_in`), exactly as a task of that backfill did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .ledger import Entry, Key, Stale
from .plan import Task


@dataclass(frozen=True)
class Blocked:
    """A task that cannot run: the upstream task it reads, and `why` (not published...)."""

    task: Task
    upstream: Task
    why: str  # "is not published" | "is stale" | ...


@dataclass(frozen=True)
class Decision:
    """What runs (and why), what is skipped, what is partial or blocked."""

    run: Mapping[str, str]  # task id -> why it runs
    skip: frozenset[str]  # already published, current and complete
    blocked: tuple[Blocked, ...]
    partial: frozenset[str]  # tasks whose own interval is not complete yet
    # an unpublished full/view key outside the command -> the published key read instead
    stand_in: Mapping[Key, Key] = field(default_factory=dict)


def incomplete(task: Task, execution_time: datetime) -> bool:
    """Whether the task's interval ends after the execution time (its data may still
    arrive). Seeds have no interval: always complete."""
    return task.interval is not None and task.interval.end > execution_time


def describe(key: Key) -> str:
    """'staging.orders [2026-06-01T00:00:00, 2026-06-02T00:00:00)' or the bare name."""
    model, start, end = key
    return f"{model} [{start}, {end})" if start else model


def decide(
    tasks: Sequence[Task],
    context: Mapping[str, Task],
    ledger: Mapping[Key, Entry],
    stale: Mapping[Key, Stale],
    *,
    execution_time: datetime,
    force: bool = False,
    missing: frozenset[str] = frozenset(),
) -> Decision:
    """`tasks`: the command's tasks, in plan order (upstream models first); `context`: every
    task of the expansion by id, for upstream tasks outside the selection; `ledger`: the
    published keys (without the models in `missing`, whose tables are gone)."""
    facts = _Facts(context, ledger, stale, force, missing)
    run = _reasons(tasks, facts)
    stand_in: dict[Key, Key] = {}
    blocked = _blocked(tasks, run, facts, stand_in)
    skip = frozenset(t.id for t in tasks if t.id not in run and t.kind != "sensor")
    partial = frozenset(t.id for t in tasks if t.id in run and incomplete(t, execution_time))
    return Decision(run, skip, blocked, partial, stand_in)


@dataclass(frozen=True)
class _Facts:
    """What a decision reads besides the tasks (see `decide`)."""

    context: Mapping[str, Task]
    ledger: Mapping[Key, Entry]
    stale: Mapping[Key, Stale]
    force: bool
    missing: frozenset[str]


def _reasons(tasks: Sequence[Task], facts: _Facts) -> dict[str, str]:
    """Task id -> why it runs, model by model in plan order (an upstream task's reason is
    known before its downstream tasks are decided)."""
    run: dict[str, str] = {}
    by_model: dict[str, list[Task]] = {}
    for t in tasks:
        by_model.setdefault(t.model, []).append(t)
    for model_tasks in by_model.values():
        active = any(
            _base(t, facts) or _upstream_runs(t, facts, run, False)
            for t in model_tasks
            if not t.lookback and t.kind != "sensor"
        )
        for t in sorted(
            model_tasks,
            key=lambda t: (t.interval is not None, t.interval.start if t.interval else 0),
        ):
            if t.kind == "sensor":
                continue  # polled, never published: the runner decides when it is idle
            why = (
                _base(t, facts)
                or _upstream_runs(t, facts, run, True)
                or ("lookback: rebuilt for late data" if t.lookback and active else None)
            )
            if why:
                run[t.id] = why
    return run


def _blocked(
    tasks: Sequence[Task], run: Mapping[str, str], facts: _Facts, stand_in: dict[Key, Key]
) -> tuple:
    """Each task that runs and reads a task outside the selection that is not usable.
    Fills `stand_in` with the covering builds read instead of unpublished full/view keys."""
    selected = {t.id for t in tasks}
    out = []
    latest: dict[str, Key] | None = None  # model -> key of its latest publish, when needed
    for t in tasks:
        if t.id not in run:
            continue
        for u in t.upstream:
            up = facts.context.get(u)
            if u in selected or up is None or up.kind in ("sensor", "swap"):
                continue
            why = _unusable(up.key, up.fingerprint, facts.ledger, facts.stale)
            if why == "is not published" and up.kind in ("full", "view"):
                latest = _latest_keys(facts.ledger) if latest is None else latest
                cover = latest.get(up.model)
                if cover is not None and _covers(cover, up.key):
                    why = _unusable(cover, up.fingerprint, facts.ledger, facts.stale)
                    if why is None:
                        stand_in[up.key] = cover
            if why:
                out.append(Blocked(t, up, why))
    return tuple(out)


def _latest_keys(ledger: Mapping[Key, Entry]) -> dict[str, Key]:
    """Model -> the key of its latest publish: what a full model's table holds now."""
    out: dict[str, Key] = {}
    for key, entry in ledger.items():
        had = out.get(key[0])
        if had is None or entry.published_at > ledger[had].published_at:
            out[key[0]] = key
    return out


def _covers(key: Key, wanted: Key) -> bool:
    """Whether a build keyed `key` covers the interval of `wanted` (same model; ISO
    strings of one format compare as their times)."""
    return bool(key[1]) and key[1] <= wanted[1] and wanted[2] <= key[2]


def _base(t: Task, facts: _Facts) -> str | None:
    """Why `t` runs for a reason of its own (not an upstream task of the command)."""
    entry = facts.ledger.get(t.key)
    if t.refresh or t.kind == "swap":
        return "full refresh"
    if facts.force:
        return "forced"
    if entry is None:
        return "table missing: rebuilt" if t.model in facts.missing else "never published"
    if entry.fingerprint != t.fingerprint:
        for u in t.upstream:
            up = facts.context.get(u)
            had = facts.ledger.get(up.key) if up is not None else None
            if had is not None and had.fingerprint != up.fingerprint:
                return "upstream fingerprint changed"
        return "model fingerprint changed"
    if entry.partial:
        return "partial: built before its interval was complete"
    found = facts.stale.get(t.key)
    if found is not None:
        return f"stale: {describe(found.upstream)} was published again"
    return None


def _upstream_runs(t: Task, facts: _Facts, run: Mapping[str, str], same_model: bool) -> str | None:
    # A full model or view builds a new key for each run label or backfill span: a new
    # label of it is no reason to rebuild what read an older one (SPEC §7). A key published
    # again is, and so is an incremental interval or a seed that was never published:
    # whatever read it was built without it.
    for u in t.upstream:
        up = facts.context[u]
        if (
            u in run
            and (same_model or up.model != t.model)
            and (up.key in facts.ledger or up.kind in ("incremental", "seed"))
        ):
            return f"upstream rebuilt: {describe(up.key)}"
    return None


def _unusable(
    key: Key, fingerprint: str, ledger: Mapping[Key, Entry], stale: Mapping[Key, Stale]
) -> str | None:
    entry = ledger.get(key)
    if entry is None:
        return "is not published"
    if entry.fingerprint != fingerprint:
        return "was published by an older version of its model"
    if key in stale:
        return f"is stale ({describe(stale[key].upstream)} was published again)"
    return None
