"""The durable state store: runs, task attempts, check results, published intervals.

SQLite in WAL mode at .pipe/state.db: in the standard library, durable across kill -9
(a committed transaction survives; an uncommitted one vanishes whole), and readable by
`pipe status` while a run writes. Only the scheduler thread writes, so one connection
suffices. synchronous=NORMAL in WAL mode may lose the last commits on power loss but never
corrupts; a lost "published" record only means that interval is published again, which is
idempotent (the warehouse publish comes first, the record after).

The tables and the frozen rows read from them are staterows.py's; the project lock is
projectlock.py's (both re-exported here).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from .errors import SourceLocation, StateError
from .ledger import Entry, Key, decode_reads, encode_reads
from .staterows import SCHEMA, Attempt, Outcome, StoredCheck, StoredRun

__all__ = ["Attempt", "Outcome", "StateStore", "StoredCheck", "StoredRun"]  # its rows come with it

_CHECKS = (
    "SELECT c.run_id, c.task_id, c.attempt, c.model, c.interval_start, c.interval_end, "
    "c.check_name, c.severity, c.status, c.failures, c.sample, c.check_type "
    "FROM check_results c"
)
_RUNS = (
    "SELECT run_id, kind, target, label, status, started_at, finished_at, total, summary, "
    "args, pid FROM runs"
)
_OUTCOMES = (
    "SELECT o.run_id, o.task_id, o.model, o.interval_start, o.interval_end, o.status, "
    "o.reason FROM task_outcomes o"
)


class StateStore:
    def __init__(self, root: Path, readonly: bool = False):
        folder = root / ".pipe"
        self.path = folder / "state.db"
        self.moved_aside: Path | None = None  # a damaged store this one replaced
        try:
            self._open(readonly)
        except sqlite3.DatabaseError as exc:
            if readonly:
                raise StateError(
                    f"the state store is damaged ({exc})",
                    at=SourceLocation(".pipe/state.db"),
                    hint="the next 'pipe run' or 'pipe backfill' moves it aside and rebuilds "
                    "what is published from the warehouse's ledger; only the run history is "
                    "lost",
                ) from None
            self.moved_aside = self._move_aside()
            self._open(readonly)

    def _open(self, readonly: bool) -> None:
        if readonly and not self.path.exists():
            self.db = sqlite3.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                str(self.path), timeout=30, isolation_level=None, check_same_thread=False
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(published)")}
        for column, dtype in (("reads", "TEXT"), ("partial", "INTEGER"), ("replaced", "INTEGER")):
            if column not in have:  # a state store of an older pipe
                self.db.execute(f"ALTER TABLE published ADD COLUMN {column} {dtype}")
        checks = {r[1] for r in self.db.execute("PRAGMA table_info(check_results)")}
        if "check_type" not in checks:
            self.db.execute("ALTER TABLE check_results ADD COLUMN check_type TEXT")

    def _move_aside(self) -> Path:
        """Keep a damaged store for inspection (state.db.damaged, .damaged-2, ...)."""
        try:
            self.db.close()
        except (AttributeError, sqlite3.Error):
            pass
        n, aside = 1, self.path.with_name("state.db.damaged")
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"state.db.damaged-{n}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            extra = self.path.with_name(self.path.name + suffix)
            if extra.exists():
                os.replace(extra, aside.with_name(aside.name + suffix))
        return aside

    def close(self) -> None:
        self.db.close()

    # -- runs
    def recover(self) -> list[int]:
        """Mark runs left 'running' by a dead process as crashed (call holding the lock)."""
        dead = [r for (r,) in self.db.execute("SELECT run_id FROM runs WHERE status = 'running'")]
        if dead:
            with self.db:
                self.db.execute("BEGIN")
                self.db.execute("UPDATE runs SET status = 'crashed' WHERE status = 'running'")
                self.db.execute("UPDATE attempts SET status = 'abandoned' WHERE status = 'running'")
        return dead

    def start_run(
        self,
        kind: str,
        target: str,
        label: str,
        start: str,
        end: str,
        args: Mapping[str, object] | Iterable[tuple[str, object]],
        total: int,
    ) -> int:
        """Record a run as started; `args`, the command's arguments (a mapping or its
        pairs), are kept as JSON."""
        cur = self.db.execute(
            "INSERT INTO runs (kind, target, label, interval_start, interval_end, args, pid, "
            "status, started_at, total) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            (
                kind,
                target,
                label,
                start,
                end,
                json.dumps(dict(args), sort_keys=True),
                os.getpid(),
                time.time(),
                total,
            ),
        )
        return int(cur.lastrowid)

    def finish_run(
        self,
        run_id: int,
        status: str,
        summary: Mapping[str, int] | Iterable[tuple[str, int]],
    ) -> None:
        self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE run_id = ?",
            (status, time.time(), json.dumps(dict(summary), sort_keys=True), run_id),
        )

    # -- attempts and outcomes (called by the scheduler thread only)
    def begin(self) -> None:
        self.db.execute("BEGIN")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def attempt_started(
        self, run_id: int, task_id: str, attempt: int, key, queued_at: float, started_at: float
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO attempts (run_id, task_id, attempt, model, interval_start, "
            "interval_end, status, queued_at, started_at) VALUES (?, ?, ?, ?, ?, ?, 'running',"
            " ?, ?)",
            (run_id, task_id, attempt, *key, queued_at, started_at),
        )

    def attempt_finished(
        self,
        run_id: int,
        task_id: str,
        attempt: int,
        status: str,
        finished_at: float,
        rows: int | None,
        leaked: int | None,
        error: str | None,
    ) -> None:
        self.db.execute(
            "UPDATE attempts SET status = ?, finished_at = ?, rows = ?, leaked = ?, error = ? "
            "WHERE run_id = ? AND task_id = ? AND attempt = ?",
            (status, finished_at, rows, leaked, error, run_id, task_id, attempt),
        )

    def check_results(
        self, run_id: int, task_id: str, attempt: int, key, results, types: Mapping | None = None
    ) -> None:
        """Store an attempt's check results; `types`: each check's type by its name."""
        types = types or {}
        self.db.executemany(
            "INSERT OR REPLACE INTO check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    task_id,
                    attempt,
                    *key,
                    r.name,
                    r.severity,
                    r.status,
                    r.failures,
                    json.dumps(r.sample, default=str) if r.sample else None,
                    types.get(r.name),
                )
                for r in results
            ],
        )

    def outcome(self, run_id: int, task_id: str, key, status: str, reason: str | None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO task_outcomes VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, task_id, *key, status, reason),
        )

    def outcomes(self, run_id: int, rows: list[tuple]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO task_outcomes VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(run_id, *r) for r in rows],
        )

    def mark_published(self, target: str, key: Key, entry: Entry, run_id: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO published VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (target, *key, *self._row(entry, run_id)),
        )

    def forget_published(self, target: str, key: Key) -> None:
        self.db.execute(
            "DELETE FROM published WHERE target = ? AND model = ? AND "
            "interval_start = ? AND interval_end = ?",
            (target, *key),
        )

    @staticmethod
    def _row(entry: Entry, run_id: int) -> tuple:
        return (
            entry.fingerprint,
            run_id,
            entry.rows,
            entry.published_at,
            encode_reads(entry.reads) if entry.reads else None,
            int(entry.partial),
            entry.replaced,
        )

    def reconcile(
        self, target: str, ledger: dict[Key, Entry], have: dict[Key, Entry] | None = None
    ) -> int:
        """Make `published` the warehouse ledger's mirror; return how many rows changed.
        `have`: the mirror as `published_entries` read it, when the caller read it."""
        if have is None:
            have = self.published_entries(target)
        gone = [k for k in have if k not in ledger]
        fresh = [(k, e) for k, e in ledger.items() if have.get(k) != e]
        if gone or fresh:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "DELETE FROM published WHERE target = ? AND model = ? AND "
                    "interval_start = ? AND interval_end = ?",
                    [(target, *k) for k in gone],
                )
                self.db.executemany(
                    "INSERT OR REPLACE INTO published VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(target, *k, *self._row(e, 0)) for k, e in fresh],
                )
        return len(gone) + len(fresh)

    # -- reads
    def published_entries(self, target: str) -> dict[Key, Entry]:
        """The mirror of the warehouse ledger for `target` (as of the last run's start and
        its publishes): readable while a run holds the warehouse."""
        rows = self.db.execute(
            "SELECT model, interval_start, interval_end, fingerprint, "
            "published_at, rows, reads, partial, replaced FROM published "
            "WHERE target = ?",
            (target,),
        )
        return {
            (m, s, e): Entry(fp, at, n, decode_reads(reads), bool(partial), replaced)
            for m, s, e, fp, at, n, reads, partial, replaced in rows
        }

    def published_fingerprints(self, target: str, models=None) -> dict[tuple, str]:
        """(model, start, end) -> fingerprint of everything published on `target`."""
        rows = self.db.execute(
            "SELECT model, interval_start, interval_end, fingerprint "
            "FROM published WHERE target = ?",
            (target,),
        )
        wanted = set(models) if models is not None else None
        return {(m, s, e): fp for m, s, e, fp in rows if wanted is None or m in wanted}

    def runs(self, limit: int = 10, target: str | None = None) -> list[StoredRun]:
        """The newest `limit` runs (of `target` when given), newest first."""
        where, params = (" WHERE target = ?", (target,)) if target else ("", ())
        rows = self.db.execute(f"{_RUNS}{where} ORDER BY run_id DESC LIMIT ?", (*params, limit))
        return [_stored_run(row) for row in rows]

    def attempts(self, run_id: int) -> list[Attempt]:
        rows = self.db.execute(
            "SELECT run_id, task_id, attempt, model, interval_start, "
            "interval_end, status, queued_at, started_at, finished_at, rows,"
            " leaked, error FROM attempts WHERE run_id = ? "
            "ORDER BY started_at, task_id, attempt",
            (run_id,),
        )
        return [Attempt(*r) for r in rows]

    def task_outcomes(self, run_id: int) -> list[Outcome]:
        """How each task of a run settled, by model and interval."""
        rows = self.db.execute(
            f"{_OUTCOMES} WHERE o.run_id = ? ORDER BY o.model, o.interval_start", (run_id,)
        )
        return [Outcome(*r) for r in rows]

    def settled(self, run_id: int) -> int:
        """How many tasks of a run are done: published by it, or skipped as published."""
        row = self.db.execute(
            "SELECT count(*) FROM task_outcomes WHERE run_id = ? AND status IN "
            "('success', 'skipped')",
            (run_id,),
        ).fetchone()
        return int(row[0])

    def failed_checks(self, run_id: int) -> list[StoredCheck]:
        """The check results of a run that did not pass, by model, interval and name."""
        rows = self.db.execute(
            f"{_CHECKS} WHERE c.run_id = ? AND c.status <> 'pass' "
            "ORDER BY c.model, c.interval_start, c.check_name",
            (run_id,),
        )
        return [StoredCheck(*r) for r in rows]

    def run(self, run_id: int) -> StoredRun | None:
        """One run as `runs()` gives it, or None."""
        row = self.db.execute(f"{_RUNS} WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _stored_run(row)

    def checks_of(self, run_id: int) -> list[StoredCheck]:
        """Every check result of a run, by task, attempt and name."""
        rows = self.db.execute(
            f"{_CHECKS} WHERE c.run_id = ? ORDER BY c.task_id, c.attempt, c.check_name",
            (run_id,),
        )
        return [StoredCheck(*r) for r in rows]

    def latest_outcomes(self, target: str) -> dict[Key, Outcome]:
        """(model, start, end) -> its newest outcome on `target`."""
        rows = self.db.execute(
            f"{_OUTCOMES} JOIN runs r USING (run_id) WHERE r.target = ? ORDER BY o.run_id",
            (target,),
        )
        out = {}
        for row in rows:
            o = Outcome(*row)
            out[(o.model, o.interval_start, o.interval_end)] = o
        return out

    def check_history(self, target: str) -> list[StoredCheck]:
        """Every check result on `target`, oldest first."""
        rows = self.db.execute(
            f"{_CHECKS} JOIN runs r USING (run_id) WHERE r.target = ? "
            "ORDER BY c.run_id, c.attempt, c.interval_start, c.check_name",
            (target,),
        )
        return [StoredCheck(*r) for r in rows]

    def earlier_rows(self, run_id: int) -> dict[tuple[str, str, str], int]:
        """(model, start, end) -> rows of its latest successful publish before `run_id`,
        for the intervals `run_id` published: what a republish is compared with."""
        rows = self.db.execute(
            "SELECT a.model, a.interval_start, a.interval_end, a.rows FROM attempts a "
            "JOIN (SELECT model, interval_start, interval_end FROM attempts WHERE run_id = ? "
            "AND status = 'success') n USING (model, interval_start, interval_end) "
            "WHERE a.run_id < ? AND a.status = 'success' AND a.rows IS NOT NULL "
            "ORDER BY a.run_id",
            (run_id, run_id),
        )
        return {(m, s, e): n for m, s, e, n in rows}

    def mean_durations(self, target: str) -> dict[str, float]:
        """Mean successful attempt duration per model, for estimates."""
        rows = self.db.execute(
            "SELECT a.model, avg(a.finished_at - a.started_at) FROM attempts a JOIN runs r "
            "USING (run_id) WHERE a.status = 'success' AND r.target = ? GROUP BY a.model",
            (target,),
        )
        return {m: d for m, d in rows}


def _stored_run(row: tuple) -> StoredRun:
    """A row of `_RUNS`: a run left 'running' by a process that is gone crashed (killed,
    and no run since has recorded it)."""
    *fields, pid = row
    run = StoredRun(*fields)
    if run.status == "running" and not _alive(pid):
        return replace(run, status="crashed")
    return run


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (state.db is local to the project's machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
