"""What a run does before its first task, under the lock: clean, create schemas, read
the warehouse's ledger, reconcile the state store with it, decide what to run.

    adapter + tasks -> relations -> ledger (less dropped tables) -> decide -> Start

Every statement here is pipe's own, not a task's: the runner turns an AdapterError from
here into a WarehouseError (`refused`) naming the target.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .adapters import Adapter, adapter_class
from .adapters.base import TEMP_MARK, expand_env
from .adapters.errors import AdapterError
from .adapters.ledgertable import LEDGER
from .config import Target
from .decide import Blocked, Decision, decide, describe
from .errors import LockBusy, SourceLocation, UpstreamMissing, WarehouseError
from .executor import first_line
from .intervals import iso
from .ledger import Entry, Key, stale
from .names import TableName
from .plan import Task
from .projectlock import LockHeld, ProjectLock
from .state import StateStore


class Opening:
    """A run's first steps: the project lock taken, then the warehouse connection opened,
    on a thread of its own when the adapter allows it (`opens_in_background`), so that a
    DuckDB file's catalog is read while the command loads its plan. `adapter()` waits for
    it (raising what opening raised); `close()` releases what the run did not take.

    The thread also makes the start's two reads (`prepare`): the listing of relations and,
    when the ledger table exists, the ledger. Under the project lock nothing else writes
    the ledger in between; a read that fails is left to `prepare`, which says why."""

    relations: dict[str, str] | None = None
    ledger: dict[Key, Entry] | None = None

    @classmethod
    def of(
        cls, root: Path, target: Target, what: str, wait: bool, on_wait=None, early=None
    ) -> Opening:
        """The opening `pipe run` started before its command was parsed (`early`, a
        runearly.Early), when it opened this target's file; else a new one."""
        if early is not None and target.adapter == "duckdb":
            from .adapters.duckdb import DuckDBAdapter

            early = early.take(root, DuckDBAdapter.file_of(target, root))
        elif early is not None:
            early.close()
            early = None
        if early is None:
            return cls(root, target, what, wait, on_wait)
        return _FromEarly(early, target, Path(root))

    def __init__(self, root: Path, target: Target, what: str, wait: bool, on_wait=None):
        self.lock = ProjectLock(root)
        try:
            self.lock.acquire(wait, on_wait, what)
        except LockHeld as exc:
            raise _busy(exc.holder) from None
        self._opened: Adapter | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        try:
            cls = adapter_class(target)  # the driver is imported here, not on the thread
            if cls.opens_in_background:
                self._thread = threading.Thread(
                    target=self._open, args=(cls, target, root), name="pipe-open", daemon=True
                )
                self._thread.start()
            else:
                self._open(cls, target, root)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, cls, target: Target, root: Path) -> None:
        try:
            self._opened = adapter = cls(target, root)
        except BaseException as exc:  # noqa: BLE001 - raised again by adapter()
            self._error = exc
            return
        adapter.open_worker_ahead()
        try:
            self.relations = adapter.relations()
            if self.relations.get(LEDGER) == "table":
                self.ledger = adapter.read_ledger()
        except AdapterError:  # prepare() reads again, and says what failed
            pass

    def adapter(self) -> Adapter:
        """The connection, now the caller's to close."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        opened, self._opened = self._opened, None
        assert opened is not None
        return opened

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._opened is not None:
            try:
                self._opened.close()
            except AdapterError:
                pass
            self._opened = None
        self.lock.release()


class _FromEarly(Opening):
    """An `Opening` made of runearly's: its lock, its connection and its two reads."""

    def __init__(self, early, target: Target, root: Path):
        self.lock = early.lock
        self._early, self._target, self._root = early, target, root
        self._opened = None
        self._error = None
        self._thread = early.thread

    def adapter(self) -> Adapter:
        early, self._early = self._early, None
        if early is None:
            return super().adapter()
        early.thread.join()
        from .adapters.duckdb import DuckDBAdapter

        if early.error is not None:
            raise DuckDBAdapter.open_error(self._target, early.error)
        try:
            adapter = DuckDBAdapter(self._target, self._root, early.con, utc=not early.utc)
        except BaseException:
            early.close()  # the connection; the lock is released by close() as ever
            raise
        early.con = None
        if early.rows is not None:
            self.relations = DuckDBAdapter.relations_of(early.rows)
            if early.ledger is not None and self.relations.get(LEDGER) == "table":
                rows, self.ledger = early.ledger
                adapter.ledger_rows = len(rows)  # as read_ledger sets it
        return adapter

    def close(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early.close()
            return
        super().close()


def _busy(holder: str | None) -> LockBusy:
    said = f"({holder})" if holder else "(the lock file does not say which)"
    return LockBusy(
        f"another pipe process is running on this project {said}",
        at=SourceLocation(".pipe/lock"),
        hint="wait for it, or drop --no-wait to queue behind it",
    )


class Notes:
    """Where the start says what it decided (the run's Reporter has this method)."""

    def note(self, text: str) -> None: ...


@dataclass(frozen=True)
class Start:
    """What the run's set-up found: what is published, and what to skip or fail."""

    published: dict[Key, Entry]
    decision: Decision
    done: frozenset[str]  # already published (or idle sensors): skipped
    blocked: dict[str, str]  # task id -> why it cannot run (depends_on_past)
    # the state store made the ledger's mirror (`reconcile`): nothing of it decides what
    # runs, so the runner calls it once the first task is handed out (Recorder)
    reconcile: Callable[[], object] = lambda: None


def prepare(
    adapter: Adapter,
    tasks: Sequence[Task],
    context: Mapping[str, Task],
    state: StateStore,
    reporter: Notes,
    *,
    kind: str,
    force: bool,
    execution_time: datetime,
    early: Opening | None = None,
) -> Start:
    """Clean, create schemas, read the ledger, decide; the state store's mirror of the
    ledger is made by `Start.reconcile` (at once when the run is refused). `early`: the
    reads its thread made already."""
    relations = early.relations if early and early.relations is not None else None
    if relations is None:
        relations = adapter.relations()  # one catalog query for all of the start
    clean_temp(adapter, tasks, relations)
    # a sensor's table is a source: pipe neither builds it nor creates its schema
    schemas = sorted({TableName.parse(t.table).schema for t in tasks if t.kind != "sensor"})
    have = {TableName.listed_schema(name) for name in relations}
    for schema in schemas:
        if schema not in have:  # a schema holding a relation exists
            adapter.ensure_schema(schema)
    ledger = early.ledger if early else None
    published, missing = _published(adapter, schemas, reporter, kind, relations, ledger)
    target = adapter.target.name

    def reconcile() -> None:
        state.reconcile(target, published)

    decision = decide(
        tasks,
        context,
        published,
        stale(published),
        execution_time=execution_time,
        force=force,
        missing=missing,
    )
    if decision.blocked:
        reconcile()
        raise _refusal(decision.blocked)
    done = frozenset(decision.skip) | _idle_sensors(tasks, decision.skip)
    adapter.prefetch_seeds([t for t in tasks if t.id not in done])  # Postgres: seedread.py
    if decision.partial:
        reporter.note(
            f"{len(decision.partial)} task(s) cover time after the execution "
            f"time {iso(execution_time)}Z: recorded as partial, rebuilt by the "
            "first run or backfill that covers them once complete"
        )
    return Start(published, decision, done, _past_missing(tasks, done, published), reconcile)


def clean_temp(
    adapter: Adapter, tasks: Sequence[Task], relations: dict[str, str] | None = None
) -> list[str]:
    """Drop the temp relations of these tasks that an older run left behind.

    A task builds its temp table inside its own transaction, so on engines with
    transactional DDL none survives a crash; this sweeps what a non-transactional engine
    or an older pipe left. Only the names of these tasks: another project (or checkout)
    on the same database keeps its own."""
    mine = {t.temp for t in tasks if t.temp}
    dropped = []
    marked = None
    if relations is not None:  # a temp table's listed name holds the mark too
        marked = {n: k for n, k in relations.items() if TEMP_MARK in n}
    for name, kind in adapter.temp_relations(marked):
        if name in mine:
            adapter.drop(name, kind)
            dropped.append(name)
            if relations is not None:
                relations.pop(name, None)
    return dropped


def check_env(target: Target) -> None:
    for key, value in target.options:
        if isinstance(value, str):
            expand_env(value, f"target '{target.name}' {key}")


def refused(target: Target, kind: str, exc: AdapterError) -> WarehouseError:
    return WarehouseError(
        f"target '{target.name}' ({target.adapter}) refused what pipe does before the "
        f"{kind}'s first task: {first_line(str(exc))}",
        at=SourceLocation("pipe.yml"),
        hint="pipe creates the models' schemas and keeps its ledger in _pipe.ledger: "
        "grant the target's role those privileges, or point the target elsewhere",
    )


def _past_missing(
    tasks: Sequence[Task], done: frozenset[str], published: Mapping[Key, Entry]
) -> dict[str, str]:
    """depends_on_past tasks whose previous interval is not published: they fail."""
    blocked = {}
    for t in tasks:
        if t.past is not None and t.id not in done:
            key = (t.model, iso(t.past.start), iso(t.past.end))
            if key not in published:
                blocked[t.id] = (
                    f"depends_on_past: {t.model} {t.past.label} is not "
                    "published yet; run that interval first"
                )
    return blocked


def _published(
    adapter: Adapter,
    schemas: list[str],
    reporter: Notes,
    kind: str,
    relations: dict[str, str],
    ledger: dict[Key, Entry] | None,
) -> tuple[dict[Key, Entry], frozenset[str]]:
    """The warehouse ledger (the truth, written in each publish's transaction), less the
    models whose table is gone: a dropped table publishes nothing (SPEC §7, drift). Their
    keys get tombstones, so a rebuild of some intervals does not revive the others.
    `relations`: the warehouse's relations as listed at the start (the catalog's source);
    `ledger`: the ledger as read already, if it was."""
    published = (
        ledger if ledger is not None else adapter.open_ledger(relations.get(LEDGER) == "table")
    )
    if adapter.ledger_rows > 2 * len(published) + 1000:
        adapter.compact_ledger()
    shadows = sorted({m for m, _, _ in published if TEMP_MARK in m})
    if shadows:  # a --full-refresh that did not reach its swap: its shadow is gone
        with adapter.transaction():
            for shadow in shadows:
                adapter.forget_ledger(shadow)
        published = {k: e for k, e in published.items() if k[0] not in shadows}
    models = sorted({m for m, _, _ in published})
    listed = set(schemas) | {TableName.parse(m).schema for m in models}
    adapter.catalog.load(
        listed, {n: k for n, k in relations.items() if TableName.listed_schema(n) in listed}
    )
    gone = [m for m in models if adapter.relation_kind(m) is None]
    if not gone:
        return published, frozenset()
    keys = [k for k in published if k[0] in gone]
    with adapter.transaction():
        adapter.record_removed(keys, time.time())
    for model in gone:
        n = sum(1 for k in keys if k[0] == model)
        reporter.note(
            f"{model}: its table is missing from the warehouse (dropped outside "
            f"pipe?); its {n} published interval(s) no longer count, and this "
            f"{kind} rebuilds the ones it covers"
        )
    return {k: e for k, e in published.items() if k[0] not in gone}, frozenset(gone)


def _refusal(blocked: Sequence[Blocked]) -> UpstreamMissing:
    first = blocked[0]
    more = len({b.task.id for b in blocked}) - 1
    return UpstreamMissing(
        f"{first.task.model} {first.task.label} reads {describe(first.upstream.key)}, which "
        f"{first.why}"
        + (f" (and {more} more task(s) like it)" if more else "")
        + "; nothing was run, so nothing is built from missing data",
        hint=f"build the upstream in the same command: --select '+{first.task.model}'",
    )


def _idle_sensors(tasks: Sequence[Task], done) -> frozenset[str]:
    """Sensors whose every downstream task is already published: nothing to wait for."""
    waiting: dict[str, list[str]] = {}
    for t in tasks:
        for u in t.upstream:
            waiting.setdefault(u, []).append(t.id)
    return frozenset(
        t.id
        for t in tasks
        if t.kind == "sensor" and t.id not in done and all(d in done for d in waiting.get(t.id, ()))
    )
