"""Sensors: a source's `wait_for` is polled until true, without a worker slot, then its
downstream runs; or it times out cleanly and its downstream is `upstream_failed`."""

from __future__ import annotations

import time

from runner_helpers import (
    Background,
    attempts,
    outcomes,
    rows,
    run,
    state,
    statuses_by_model,
    temp_tables,
    wait_until,
    warehouse,
)


def sensor_project(wait_timeout: str) -> dict[str, str]:
    return {
        "sources.yml": (
            "sources:\n  - name: raw.ready\n"
            '    wait_for: "select count(*) > 0 from raw.ready where ts >= '
            '{{ interval_start }}"\n'
            f"    poke_every: 0.2s\n    wait_timeout: {wait_timeout}\n"
        ),
        "models/a/gated.sql": "select count(*) as n from raw.ready",
        "models/b/free.sql": "select 1 as x",
    }


def test_sensor_waits_then_proceeds(write_project):
    root = write_project(sensor_project("30s"))

    def make_ready():
        # b.free can only finish after the scheduler's first fill, which pokes the sensor
        # while raw.ready does not exist yet: from then on the sensor is waiting
        wait_until(
            lambda: state(
                root, "select 1 from attempts where model = 'b.free' and status = 'success'"
            ),
            what="b.free",
        )
        assert not state(root, "select 1 from attempts where model = 'a.gated'")
        created = time.time()
        with warehouse(root) as con:  # the run's own DuckDB instance: same process
            con.execute("create schema if not exists raw")
            con.execute("create table raw.ready as select timestamp '2026-05-31' as ts")
            # an old row does not satisfy wait_for: the sensor keeps waiting
            con.execute("insert into raw.ready values (timestamp '2026-06-01 08:00')")
        return created

    helper = Background(make_ready)
    # one slot: the waiting sensor must not hold it, or b.free could never run
    code, out = run(root, "--concurrency", "1")
    created = helper.join()
    assert code == 0, out
    [gated] = attempts(root, model="a.gated")
    assert gated["status"] == "success" and gated["started_at"] > created
    assert rows(root, "select n from a.gated") == [(2,)]
    assert outcomes(root)[("raw.ready", "2026-06-01T00:00:00")] == ("success", None)


def test_sensor_times_out_cleanly(write_project):
    root = write_project(sensor_project("1s"))
    started = time.monotonic()
    code, out = run(root)
    took = time.monotonic() - started
    assert code == 1, out
    assert 1.0 <= took < 30, took  # its 1s wait_timeout, not a hang (no speed assert)
    assert "failed: raw.ready 2026-06-01: sensor timed out after 1s" in out, out
    assert "(last error: Catalog Error: " in out, out  # why it was never true
    assert statuses_by_model(root) == {
        "raw.ready": {"failed"},
        "a.gated": {"upstream_failed"},
        "b.free": {"success"},
    }
    assert not attempts(root, model="a.gated")
    assert temp_tables(root) == []
    assert state(root, "select status from runs") == [("failed",)]
    with warehouse(root) as con:  # pipe does not create a source's schema
        assert con.execute(
            "select count(*) from information_schema.schemata where schema_name = 'raw'"
        ).fetchall() == [(0,)]


def test_a_mistake_in_wait_for_fails_the_sensor_at_once_with_its_message(write_project):
    """Only 'false' (or a table that is not there yet) is 'not yet': a wait_for that
    names a column that does not exist is a mistake, not something to wait out."""
    root = write_project(
        {
            "sources.yml": (
                "sources:\n  - name: raw.ready\n"
                '    wait_for: "select count(*) > 0 from raw.ready where tss >= '
                '{{ interval_start }}"\n'
                "    poke_every: 0.2s\n    wait_timeout: 60s\n"
            ),
            "models/a/gated.sql": "select count(*) as n from raw.ready",
        }
    )
    with warehouse(root) as con:
        con.execute("create schema if not exists raw")
        con.execute("create table raw.ready as select timestamp '2026-06-01 08:00' as ts")
    started = time.monotonic()
    code, out = run(root)
    assert code == 1, out
    assert time.monotonic() - started < 30  # not its wait_timeout
    assert "failed: raw.ready 2026-06-01: wait_for of raw.ready failed: Binder Error: " in out
    assert '"tss" not found' in out, out
    assert "timed out" not in out, out
    assert statuses_by_model(root)["a.gated"] == {"upstream_failed"}


def test_a_hanging_sensor_query_is_interrupted_at_its_wait_timeout(write_project):
    root = write_project(
        {
            "sources.yml": (
                "sources:\n  - name: raw.slow\n"
                '    wait_for: "select sum(hash(i)) < 0 from range(10000000000) t(i)"\n'
                "    poke_every: 0.2s\n    wait_timeout: 1s\n"
            ),
            "models/a/gated.sql": "select 1 as x from raw.slow",
        }
    )
    started = time.monotonic()
    code, out = run(root)
    assert code == 1, out
    assert time.monotonic() - started < 30  # not the query's natural minute
    assert "failed: raw.slow 2026-06-01: sensor timed out after 1s" in out, out
