"""The state store's tables (state.py's SCHEMA) and the frozen rows read from them.

One row type per table that a reader gets: a `StoredRun` (runs), an `Attempt` (attempts),
an `Outcome` (task_outcomes), a `StoredCheck` (check_results); their fields are the
table's columns, in order (a `StoredRun` leaves out the span and the pid).
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,            -- run | backfill
    target TEXT NOT NULL,
    label TEXT NOT NULL,
    interval_start TEXT NOT NULL,
    interval_end TEXT NOT NULL,
    args TEXT NOT NULL,
    pid INTEGER NOT NULL,
    status TEXT NOT NULL,          -- running | success | failed | interrupted | crashed
    started_at REAL NOT NULL,
    finished_at REAL,
    total INTEGER NOT NULL DEFAULT 0,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    model TEXT NOT NULL,
    interval_start TEXT NOT NULL,
    interval_end TEXT NOT NULL,
    status TEXT NOT NULL,          -- running | success | failed | abandoned
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    rows INTEGER,
    leaked INTEGER,
    error TEXT,
    PRIMARY KEY (run_id, task_id, attempt)
);
CREATE TABLE IF NOT EXISTS task_outcomes (
    run_id INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    model TEXT NOT NULL,
    interval_start TEXT NOT NULL,
    interval_end TEXT NOT NULL,
    status TEXT NOT NULL,          -- success | skipped | failed | upstream_failed | blocked
    reason TEXT,
    PRIMARY KEY (run_id, task_id)
);
CREATE TABLE IF NOT EXISTS check_results (
    run_id INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    model TEXT NOT NULL,
    interval_start TEXT NOT NULL,
    interval_end TEXT NOT NULL,
    check_name TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,          -- pass | warn | error
    failures INTEGER NOT NULL,
    sample TEXT,
    check_type TEXT,               -- not_null, row_count, ... (NULL: stored by an older pipe)
    PRIMARY KEY (run_id, task_id, attempt, check_name)
);
CREATE TABLE IF NOT EXISTS published (
    target TEXT NOT NULL,
    model TEXT NOT NULL,
    interval_start TEXT NOT NULL,
    interval_end TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    rows INTEGER,
    published_at REAL NOT NULL,    -- the publish's version in the warehouse ledger
    reads TEXT,                    -- the upstream publishes it read (ledger.encode_reads)
    partial INTEGER,
    replaced INTEGER,
    PRIMARY KEY (target, model, interval_start, interval_end)
);
CREATE INDEX IF NOT EXISTS attempts_model ON attempts (model, interval_start);
"""


@dataclass(frozen=True)
class StoredRun:
    """A run or backfill (a row of runs); `status` 'crashed' also for a run left
    'running' by a process that is gone. `summary` (tasks by status, once it finished)
    and `args` (the command's arguments) as stored: JSON text."""

    run_id: int
    kind: str  # run | backfill
    target: str
    label: str
    status: str  # running | success | failed | interrupted | crashed
    started_at: float
    finished_at: float | None
    total: int
    summary: str | None
    args: str


@dataclass(frozen=True)
class Attempt:
    run_id: int
    task_id: str
    attempt: int
    model: str
    interval_start: str
    interval_end: str
    status: str
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    rows: int | None
    leaked: int | None
    error: str | None


@dataclass(frozen=True)
class Outcome:
    """How a task of a run settled (a row of task_outcomes)."""

    run_id: int
    task_id: str
    model: str
    interval_start: str
    interval_end: str
    status: str  # success | skipped | failed | upstream_failed | blocked
    reason: str | None


@dataclass(frozen=True)
class StoredCheck:
    """One check's result on one attempt of a task (a row of check_results); `sample`
    as stored: JSON text or None."""

    run_id: int
    task_id: str
    attempt: int
    model: str
    interval_start: str
    interval_end: str
    check_name: str
    severity: str
    status: str  # pass | warn | error
    failures: int
    sample: str | None
    check_type: str | None = None  # None in a row an older pipe stored
