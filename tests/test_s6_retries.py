"""A guarded incremental publish that has to be redone the careful way (executor._Unguarded)
is not one of the task's tries: those are for other writers' commits. Before, four
conflicts and then a redo ran the tries out and the task ended as "a bug in pipe"."""

from __future__ import annotations

import pytest

from pipe import executor
from pipe.adapters.duckdb import DuckDBAdapter
from pipe.adapters.errors import AdapterError
from pipe.config import Target
from pipe.plan import Task


def _task() -> Task:
    return Task(id="t", model="m.x", kind="incremental", interval=None, upstream=(),
                fingerprint="f", table="m.x", temp="m.x__tmp")  # fmt: skip


@pytest.mark.parametrize("conflicts", [0, 2, 4])
def test_a_careful_redo_is_not_one_of_the_tries(tmp_path, monkeypatch, conflicts):
    target = Target("dev", "duckdb", "duckdb", (("path", str(tmp_path / "w.duckdb")),))
    adapter = DuckDBAdapter(target, tmp_path)
    calls = []

    def publish(adapter, task, root, stamp, guard=False):
        calls.append(guard)
        if len(calls) <= conflicts:
            raise AdapterError("TransactionContext Error: Catalog write-write conflict")
        if guard:
            raise executor._Unguarded
        return "published"

    monkeypatch.setattr(executor, "_write_audit_publish", publish)
    try:
        assert executor._execute(adapter, _task(), tmp_path, None, executor.Creating()) == (
            "published"
        )
    finally:
        adapter.close()
    assert calls == [True] * (conflicts + 1) + [False]


def test_conflicts_beyond_the_tries_fail_the_task(tmp_path, monkeypatch):
    target = Target("dev", "duckdb", "duckdb", (("path", str(tmp_path / "w.duckdb")),))
    adapter = DuckDBAdapter(target, tmp_path)

    def publish(adapter, task, root, stamp, guard=False):
        raise AdapterError("TransactionContext Error: Catalog write-write conflict")

    monkeypatch.setattr(executor, "_write_audit_publish", publish)
    try:
        with pytest.raises(AdapterError, match="conflict"):
            executor._execute(adapter, _task(), tmp_path, None, executor.Creating(), tries=3)
    finally:
        adapter.close()
