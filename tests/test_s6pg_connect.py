"""A run's first Postgres worker connects while the run starts (issue 14), and every
connection is set up in one call: UTC, and the gone-client check on PostgreSQL 14+."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from pipe.adapters.postgres import PostgresAdapter
from pipe.config import Target


def _adapter(dsn: str) -> PostgresAdapter:
    return PostgresAdapter(Target("pg", "postgres", "postgres", (("dsn", dsn),)), Path("."), dsn)


def _backends(dsn: str, settled: int | None = None) -> int:
    """The other sessions on this database; with `settled`, waits up to 5 s for that
    many (a closed connection's backend leaves pg_stat_activity a moment later)."""
    with psycopg.connect(dsn, autocommit=True) as con:
        for _ in range(50):
            (n,) = con.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchone()
            if settled is None or n == settled:
                break
            time.sleep(0.1)
    return n


def test_the_worker_opened_ahead_is_the_first_worker_and_set_up_as_any(pg_dsn):
    adapter = _adapter(pg_dsn)
    try:
        adapter.open_worker_ahead()
        first = adapter.worker()
        second = adapter.worker()  # the next ones connect when asked
        for w in (first, second):
            assert w.scalar("SHOW TIME ZONE") == "UTC"
            assert w.scalar("SHOW client_connection_check_interval") == "1s"
            assert w.seeds is adapter.seeds and w.catalog is adapter.catalog
        assert _backends(pg_dsn) == 3
        first.close()
        second.close()
    finally:
        adapter.close()
    assert _backends(pg_dsn, settled=0) == 0


def test_a_worker_opened_ahead_and_never_used_is_closed_with_the_adapter(pg_dsn):
    adapter = _adapter(pg_dsn)
    adapter.open_worker_ahead()
    adapter.open_worker_ahead()  # once
    adapter.close()
    assert _backends(pg_dsn, settled=0) == 0
