"""Plans of the example project: golden files, determinism, hygiene, --check, expansion.

Golden plans live in tests/snapshots/test_plans/; after an intended change, update them with
`pytest tests/test_plans.py --snapshot-update` and review the diff like code.
"""

from __future__ import annotations

import json
import os
import re
import socket
from datetime import date
from pathlib import Path

import pytest

import pipe.sql
from conftest import copy_example, files_under, run_cli, run_cli_json, run_pipe
from pipe.compiler import compile_project
from pipe.intervals import parse_label
from pipe.loader import load_project
from pipe.planfile import dumps, stale_reason
from pipe.planner import build_plan

DAY = "2026-06-02"
RANGE = "2026-06-01T00:00/2026-06-03T00:00"
RANGE_FILE = "plans/dev/2026-06-01T0000--2026-06-03T0000.json"
SECRET_DSN = "postgresql://pipe_admin:hunter2-s3cr3t@db-7.internal.example:5432/shop"


def compile_ok(root: Path, *args: str) -> str:
    code, out = run_cli(["compile", "--project", root, *args])
    assert code == 0, out
    return out


def load_plan(root: Path, rel: str) -> dict:
    return json.loads((root / rel).read_text(encoding="utf-8"))


def tasks_of(plan: dict, model: str) -> list[dict]:
    return [t for t in plan["tasks"] if t["model"] == model]


# ---------------------------------------------------------------- golden plans


def test_golden_plan_one_day(example_project, snapshot):
    out = compile_ok(example_project, "--interval", DAY)
    assert f"plans/dev/{DAY}.json" in out
    snapshot.assert_match((example_project / f"plans/dev/{DAY}.json").read_bytes(), f"{DAY}.json")


def test_golden_plan_explicit_range(example_project, snapshot):
    compile_ok(example_project, "--interval", RANGE)
    assert sorted(files_under(example_project / "plans")) == [RANGE_FILE.removeprefix("plans/")]
    snapshot.assert_match((example_project / RANGE_FILE).read_bytes(), "range.json")


def test_golden_plan_postgres_target(example_project, snapshot, monkeypatch):
    """The same day for the postgres target: SQL transpiled, names qualified."""
    monkeypatch.setenv("PIPE_PG_DSN", SECRET_DSN)
    compile_ok(example_project, "--interval", DAY, "--target", "pg")
    snapshot.assert_match((example_project / f"plans/pg/{DAY}.json").read_bytes(), f"pg-{DAY}.json")


# ---------------------------------------------------------------- determinism and hygiene


def test_two_directories_give_byte_identical_plans(tmp_path):
    """Different absolute paths, cwd and cache state; the same bytes."""
    a = copy_example(tmp_path / "one")
    b = copy_example(tmp_path / "elsewhere" / "two")
    compile_ok(a, "--interval", DAY)
    compile_ok(a, "--interval", RANGE)
    code, out = run_cli(["compile", "--interval", DAY], cwd=b)  # from inside the project
    assert code == 0, out
    code, out = run_cli(
        ["compile", "--interval", RANGE, "--project", "two"], cwd=tmp_path / "elsewhere"
    )  # a relative --project
    assert code == 0, out
    assert files_under(a / "plans") == files_under(b / "plans")
    assert len(files_under(a / "plans")) == 2


def test_recompiling_gives_the_same_bytes_and_reports_unchanged(example_project):
    compile_ok(example_project, "--interval", DAY)
    first = files_under(example_project / "plans")
    out = compile_ok(example_project, "--interval", DAY)  # warm: from the parse cache
    assert "unchanged" in out
    assert files_under(example_project / "plans") == first
    # and cold again, without any cache
    cp = compile_project(load_project(example_project), use_cache=False)
    assert dumps(build_plan(cp, parse_label(DAY))) == first[f"dev/{DAY}.json"]


def test_real_console_script_writes_the_same_plan(example_project, tmp_path):
    """The installed `pipe` script in a subprocess agrees with the in-process CLI."""
    other = copy_example(tmp_path / "other")
    compile_ok(example_project, "--interval", DAY)
    # another hash seed than this process's: no set order leaks into a plan
    proc = run_pipe(["compile", "--interval", DAY], cwd=other, env={"PYTHONHASHSEED": "7"})
    assert proc.returncode == 0, proc.stderr
    assert f"plans/dev/{DAY}.json" in proc.stdout
    assert files_under(other / "plans") == files_under(example_project / "plans")


@pytest.mark.parametrize(
    ("target", "label"), [("dev", DAY), ("dev", RANGE), ("pg", DAY), ("dev", "2026-06-01T10")]
)
def test_no_path_host_clock_or_secret_in_plans(example_project, monkeypatch, target, label):
    monkeypatch.setenv("PIPE_PG_DSN", SECRET_DSN)
    compile_ok(example_project, "--interval", label, "--target", target)
    [(name, data)] = files_under(example_project / "plans").items()
    text = data.decode()
    forbidden = [
        str(example_project),
        str(example_project.parent),
        os.getcwd(),
        str(Path.home()),
        date.today().isoformat(),
        "2026-11-22",
        SECRET_DSN,
        "hunter2",
        "pipe_admin",
        "db-7.internal",
        "warehouse.duckdb",  # the target's path stays in pipe.yml
    ]
    for needle in forbidden:
        assert needle not in text, f"{needle!r} appears in {name}"
    host = socket.gethostname()
    if len(host) >= 4:  # a one-letter host name would match anything
        assert not re.search(rf"\b{re.escape(host)}\b", text), f"host name in {name}"
    assert "${PIPE_PG_DSN}" not in text
    assert "/tmp" not in text and "\\" not in text


def test_plan_files_are_readable_json_with_sql_as_lines(example_project):
    compile_ok(example_project, "--interval", DAY)
    data = (example_project / f"plans/dev/{DAY}.json").read_bytes()
    assert data.endswith(b"}\n") and b"\r" not in data
    plan = json.loads(data)
    assert plan["interval"] == {
        "label": DAY,
        "start": "2026-06-02T00:00:00",
        "end": "2026-06-03T00:00:00",
    }
    assert (plan["project"], plan["target"], plan["dialect"]) == ("shop", "dev", "duckdb")
    ids = [t["id"] for t in plan["tasks"]]
    assert len(ids) == len(set(ids))
    position = {tid: i for i, tid in enumerate(ids)}
    for task in plan["tasks"]:
        for up in task["upstream"]:
            assert position[up] < position[task["id"]], "tasks are in dependency order"
        if task["kind"] != "seed":
            assert isinstance(task["sql"], list) and len(task["sql"]) > 1
            assert all("\n" not in line for line in task["sql"])


# ---------------------------------------------------------------- compile --check


def test_check_passes_on_fresh_plans_and_fails_after_an_edit(example_project):
    compile_ok(example_project, "--interval", DAY)
    compile_ok(example_project, "--interval", RANGE)
    before = files_under(example_project / "plans")
    stamps = {p: p.stat().st_mtime_ns for p in (example_project / "plans").rglob("*.json")}

    out = compile_ok(example_project, "--check")
    assert f"ok        plans/dev/{DAY}.json" in out
    assert RANGE_FILE in out

    model = example_project / "models/marts/daily_revenue.sql"
    model.write_text(model.read_text().replace("count(*) as orders", "count(*) as n_orders"))
    code, out = run_cli(["compile", "--check", "--project", example_project])
    assert code == 1, out
    assert f"stale     plans/dev/{DAY}.json" in out
    assert f"stale     {RANGE_FILE}" in out
    assert "Traceback" not in out
    assert files_under(example_project / "plans") == before, "--check wrote a plan"
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_check_fails_on_a_missing_plan(example_project):
    code, out = run_cli(["compile", "--check", "--interval", DAY, "--project", example_project])
    assert code == 1, out
    assert f"missing   plans/dev/{DAY}.json" in out
    assert not (example_project / "plans").exists()
    assert not (example_project / ".pipe").exists(), "--check wrote local state"


def test_check_ignores_an_edit_that_changes_no_plan(example_project):
    compile_ok(example_project, "--interval", DAY)
    sidecar = example_project / "models/marts/customer_orders.yml"
    sidecar.write_text(sidecar.read_text().replace("with lifetime value", "with their LTV"))
    compile_ok(example_project, "--check")


def test_stale_reason(example_project):
    """The function the runner uses to refuse a stale plan."""
    cp = compile_project(load_project(example_project))
    plan = build_plan(cp, parse_label(DAY))
    assert stale_reason(example_project, plan) == "missing"
    compile_ok(example_project, "--interval", DAY)
    assert stale_reason(example_project, plan) is None
    (example_project / "models/staging/products.sql").write_text(
        "select product_id, product_name, category, price_cents * 2 as price_cents\n"
        "from raw.products\n"
    )
    cp2 = compile_project(load_project(example_project))
    assert stale_reason(example_project, build_plan(cp2, parse_label(DAY))) == "stale"


def test_changing_one_model_changes_downstream_fingerprints_only(example_project):
    before = {
        r["name"]: r["fingerprint"]
        for r in run_cli_json(["list", "--json", "--project", example_project])
    }
    model = example_project / "models/staging/customers.sql"
    model.write_text(model.read_text().replace("lower(email)", "upper(email)"))
    after = {
        r["name"]: r["fingerprint"]
        for r in run_cli_json(["list", "--json", "--project", example_project])
    }
    changed = sorted(n for n in before if before[n] != after[n])
    # staging.orders reads staging.customers through its relationships check
    assert changed == [
        "marts.customer_orders",
        "marts.daily_revenue",
        "reports.vip_customers",
        "staging.customers",
        "staging.orders",
    ]


# ---------------------------------------------------------------- expansion


def test_hourly_model_expands_to_24_tasks_in_a_daily_run(example_project):
    compile_ok(example_project, "--interval", DAY)
    plan = load_plan(example_project, f"plans/dev/{DAY}.json")
    hours = tasks_of(plan, "staging.page_views")
    assert len(hours) == 24
    assert [t["interval"]["start"] for t in hours] == [f"{DAY}T{h:02d}:00:00" for h in range(24)]
    assert all(t["interval"]["end"][11:13] == f"{(h + 1) % 24:02d}" for h, t in enumerate(hours))
    assert "where viewed_at >= TIMESTAMP '2026-06-02 05:00:00'" in hours[5]["sql"]
    assert "  and viewed_at < TIMESTAMP '2026-06-02 06:00:00'" in hours[5]["sql"]
    [daily] = tasks_of(plan, "staging.orders")
    assert daily["interval"] == {"start": "2026-06-02T00:00:00", "end": "2026-06-03T00:00:00"}


def test_daily_model_gets_no_task_in_an_hourly_run(example_project):
    compile_ok(example_project, "--interval", "2026-06-01T10")
    plan = load_plan(example_project, "plans/dev/2026-06-01T10.json")
    assert tasks_of(plan, "staging.orders") == []
    assert tasks_of(plan, "marts.daily_revenue") == []
    [hour] = tasks_of(plan, "staging.page_views")
    assert hour["interval"] == {"start": "2026-06-01T10:00:00", "end": "2026-06-01T11:00:00"}
    # a full model still builds once per run, after the hour it reads
    [traffic] = tasks_of(plan, "reports.traffic_by_page")
    assert hour["id"] in traffic["upstream"]


def test_a_range_expands_each_grain(example_project):
    compile_ok(example_project, "--interval", RANGE)
    plan = load_plan(example_project, RANGE_FILE)
    assert len(tasks_of(plan, "staging.page_views")) == 48
    assert [t["interval"]["start"] for t in tasks_of(plan, "staging.orders")] == [
        "2026-06-01T00:00:00",
        "2026-06-02T00:00:00",
    ]
    [full] = tasks_of(plan, "marts.customer_orders")
    assert full["interval"] == {"start": "2026-06-01T00:00:00", "end": "2026-06-03T00:00:00"}


def test_depends_on_past_chains_intervals(example_project):
    compile_ok(example_project, "--interval", RANGE)
    plan = load_plan(example_project, RANGE_FILE)
    first, second = tasks_of(plan, "marts.daily_revenue")
    assert first["id"] in second["upstream"]
    # the project's first interval has no past
    assert "depends_on_past" not in first and "depends_on_past" not in second
    # a later run waits for the interval before it, published by an earlier run
    compile_ok(example_project, "--interval", "2026-06-05")
    [day] = tasks_of(load_plan(example_project, "plans/dev/2026-06-05.json"), "marts.daily_revenue")
    assert day["depends_on_past"] == {"start": "2026-06-04T00:00:00", "end": "2026-06-05T00:00:00"}
    # a model without depends_on_past does not chain
    first, second = tasks_of(plan, "staging.orders")
    assert first["id"] not in second["upstream"]


def test_incremental_interval_waits_only_for_the_upstream_intervals_it_reads(example_project):
    compile_ok(example_project, "--interval", RANGE)
    plan = load_plan(example_project, RANGE_FILE)
    orders = tasks_of(plan, "staging.orders")
    for day, revenue in zip(orders, tasks_of(plan, "marts.daily_revenue"), strict=True):
        assert day["id"] in revenue["upstream"]
        assert not {o["id"] for o in orders if o is not day} & set(revenue["upstream"])


def test_full_model_waits_for_every_upstream_interval(example_project):
    compile_ok(example_project, "--interval", RANGE)
    plan = load_plan(example_project, RANGE_FILE)
    [traffic] = tasks_of(plan, "reports.traffic_by_page")
    assert {t["id"] for t in tasks_of(plan, "staging.page_views")} <= set(traffic["upstream"])
    [customer_orders] = tasks_of(plan, "marts.customer_orders")
    for up in ("staging.orders", "staging.customers"):
        assert {t["id"] for t in tasks_of(plan, up)} <= set(customer_orders["upstream"])
    # and whatever reads a full model waits for it
    [vip] = tasks_of(plan, "reports.vip_customers")
    assert vip["upstream"] == [customer_orders["id"]]


def test_a_seed_task_does_not_depend_on_the_interval(example_project):
    compile_ok(example_project, "--interval", DAY)
    compile_ok(example_project, "--interval", "2026-06-03")
    one = tasks_of(load_plan(example_project, f"plans/dev/{DAY}.json"), "raw.orders")
    two = tasks_of(load_plan(example_project, "plans/dev/2026-06-03.json"), "raw.orders")
    assert one == two and one[0]["interval"] is None


def test_start_and_end_write_one_plan_per_interval(example_project):
    out = compile_ok(example_project, "--start", "2026-06-01", "--end", "2026-06-04")
    assert sorted(files_under(example_project / "plans")) == [
        "dev/2026-06-01.json",
        "dev/2026-06-02.json",
        "dev/2026-06-03.json",
    ]
    assert out.count("written") == 3


# ---------------------------------------------------------------- the parse cache


class ParseCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = pipe.sql.parse_canonical  # parse_select calls it too

        def counting(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(pipe.sql, "parse_canonical", counting)


def test_warm_compile_parses_nothing(example_project, monkeypatch):
    counter = ParseCounter(monkeypatch)
    compile_ok(example_project, "--interval", DAY)
    cold = counter.calls
    assert cold >= 8  # every model at least once
    assert (example_project / ".pipe" / "cache").is_dir()
    counter.calls = 0
    compile_ok(example_project, "--interval", "2026-06-03")
    compile_ok(example_project, "--check")
    assert counter.calls == 0


def test_warm_compile_for_another_dialect_parses_nothing(example_project, monkeypatch):
    """Transpiled SQL is cached too: interval values are placeholders in it."""
    monkeypatch.setenv("PIPE_PG_DSN", SECRET_DSN)
    compile_ok(example_project, "--interval", DAY, "--target", "pg")
    first = files_under(example_project / "plans")
    counter = ParseCounter(monkeypatch)
    (example_project / "plans" / "pg" / f"{DAY}.json").unlink()
    compile_ok(example_project, "--interval", DAY, "--target", "pg")
    assert counter.calls == 0
    assert files_under(example_project / "plans") == first


def test_an_edited_model_is_the_only_one_parsed_again(example_project, monkeypatch):
    compile_ok(example_project, "--interval", DAY)
    counter = ParseCounter(monkeypatch)
    model = example_project / "models/staging/products.sql"
    model.write_text(model.read_text().replace("category,", "category, 1 as one,"))
    compile_ok(example_project, "--interval", DAY)
    assert counter.calls == 1


def test_a_corrupt_cache_is_only_a_slower_compile(example_project):
    compile_ok(example_project, "--interval", DAY)
    good = files_under(example_project / "plans")
    for path in (example_project / ".pipe" / "cache").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\x80garbage")
    (example_project / "plans" / "dev" / f"{DAY}.json").unlink()
    compile_ok(example_project, "--interval", DAY)
    assert files_under(example_project / "plans") == good


# ---------------------------------------------------------------- what a task's SQL holds


def plan_of(write_project, files: dict[str, str], label: str = "2026-06-02") -> dict:
    root = write_project(files)
    compile_ok(root, "--interval", label)
    [(_, data)] = files_under(root / "plans").items()
    return json.loads(data)


def test_jinja_context_in_a_task(write_project):
    plan = plan_of(
        write_project,
        {
            "seeds/raw/orders.csv": "id,ts\n1,2026-06-01 10:00:00\n",
            "macros/m.sql": (
                "{% macro since_start(c) %}{{ c }} >= {{ interval_start }}{% endmacro %}\n"
            ),
            "models/a/b.sql": "-- {{ this }}\nselect id, {{ ds }} as day, {{ var('k') }} as k,\n"
            "  {{ var('missing', 7) }} as fallback\nfrom {{ ref('orders') }}\n"
            "where {{ since_start('ts') }} and ts < {{ interval_end }}\n",
            "pipe.yml": "name: t\nstart: 2026-06-01\nvars: {k: 'x'}\n",
        },
    )
    [task] = tasks_of(plan, "a.b")
    assert task["sql"] == [
        "-- a.b",
        "select id, DATE '2026-06-02' as day, x as k,",
        "  7 as fallback",
        "from raw.orders",
        "where ts >= TIMESTAMP '2026-06-02 00:00:00' and ts < TIMESTAMP '2026-06-03 00:00:00'",
    ]


def test_a_bare_name_is_qualified_in_the_plan(write_project):
    plan = plan_of(
        write_project,
        {
            "seeds/raw/orders.csv": "id\n1\n",
            "models/a/b.sql": 'select o.id from orders as o join "orders" using (id)\n',
        },
    )
    [task] = tasks_of(plan, "a.b")
    assert task["sql"] == ["select o.id from raw.orders as o join raw.orders using (id)"]


def test_relationships_check_reads_the_resolved_table(write_project):
    plan = plan_of(
        write_project,
        {
            "models/a/parent.sql": "select 1 as id\n",
            "models/a/child.sql": "select 1 as id, 1 as parent_id\n",
            "models/a/child.yml": (
                "checks:\n  - relationships: {column: parent_id, to: parent.id}\n"
            ),
        },
    )
    [child] = tasks_of(plan, "a.child")
    [parent] = tasks_of(plan, "a.parent")
    assert child["upstream"] == [parent["id"]]
    [check] = child["checks"]
    assert "left join a.parent as parent on child.parent_id = parent.id" in check["sql"]


def test_a_source_sensor_gates_its_readers(write_project):
    plan = plan_of(
        write_project,
        {
            "sources.yml": 'sources:\n  - name: ext.events\n    wait_for: "select count(*) > 0 '
            'from ext.events where ts >= {{ interval_end }}"\n    poke_every: 1m\n'
            "  - name: ext.users\n",
            "models/a/hits.sql": "select * from ext.events join ext.users using (id)\n",
            "models/a/hits.yml": "kind: incremental\ntime_column: ts\n",
        },
    )
    [sensor] = [t for t in plan["tasks"] if t["kind"] == "sensor"]
    assert sensor["model"] == "ext.events"
    assert sensor["sql"] == [
        "SELECT",
        "  COUNT(*) > 0",
        "FROM ext.events",
        "WHERE",
        "  ts >= CAST('2026-06-03 00:00:00' AS TIMESTAMP)",
    ]
    assert sensor["poke_every"] == 60.0
    assert not tasks_of(plan, "ext.users")  # no sensor, no task
    [hits] = tasks_of(plan, "a.hits")
    assert hits["upstream"] == [sensor["id"]]


def test_task_ids_and_temp_tables_are_stable_and_distinct(example_project, tmp_path):
    compile_ok(example_project, "--interval", RANGE)
    plan = load_plan(example_project, RANGE_FILE)
    temps = [t["temp"] for t in plan["tasks"]]
    assert len(set(temps)) == len(temps)
    assert all("tmp" in t for t in temps)
    # the same task in another run has the same id
    compile_ok(example_project, "--interval", DAY)
    day = {
        (t["model"], json.dumps(t["interval"])): t["id"]
        for t in load_plan(example_project, f"plans/dev/{DAY}.json")["tasks"]
    }
    again = {(t["model"], json.dumps(t["interval"])): t["id"] for t in plan["tasks"]}
    shared = set(day) & set(again)
    assert len(shared) == 4 + 24 + 2  # seeds, the hours and the daily tasks of DAY
    assert all(day[k] == again[k] for k in shared)
