"""DuckDB's own threads are shared among a run's worker connections while they fit
(adapters.duckdb.DuckDBAdapter.worker): one worker keeps the whole pool, two on a pool
of two get one each, more workers than threads give the pool back."""

from __future__ import annotations

from pipe.adapters.duckdb import DuckDBAdapter
from pipe.config import Target


def _threads(adapter) -> int:
    return int(adapter.scalar("SELECT current_setting('threads')"))


def test_the_pool_is_divided_among_the_workers_while_they_fit(tmp_path):
    target = Target("dev", "duckdb", "duckdb", (("path", str(tmp_path / "w.duckdb")),))
    owner = DuckDBAdapter(target, tmp_path)
    try:
        owner.execute("SET threads = 4")
        workers = [owner.worker()]
        assert _threads(owner) == 4  # a run of one worker: the whole pool
        workers.append(owner.worker())
        assert _threads(owner) == 2
        workers += [owner.worker(), owner.worker()]
        assert _threads(owner) == 1
        workers.append(owner.worker())  # more workers than threads: the pool given back
        assert _threads(owner) == 4
        for w in workers:
            w.close()
    finally:
        owner.close()
