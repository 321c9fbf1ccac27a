"""OpenLineage events: a real run writes them through openlineage-python's file transport;
the tests read them back, validate every event against the schema of the facets pipe emits
(tests/fixtures/openlineage_run_event.schema.json) and check them against the run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from conftest import PIPE_YML, run_cli

SCHEMA = json.loads(
    (Path(__file__).parent / "fixtures" / "openlineage_run_event.schema.json").read_text()
)
DAY = "2026-06-01"


def events_of(path: Path) -> list[dict]:
    """Every event of the file transport's log, each validated."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for event in events:
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(event)]
        assert not errors, (event["job"]["name"], event["eventType"], errors)
    return events


def with_openlineage(root: Path, extra: str = "") -> Path:
    log = root / "events.jsonl"
    with open(root / "pipe.yml", "a") as f:
        f.write(
            "openlineage:\n  namespace: shop-dev\n"
            f"  transport: {{type: file, log_file_path: '{log}', append: true}}\n{extra}"
        )
    return log


@pytest.fixture(autouse=True)
def _no_openlineage_env(monkeypatch):
    for key in (
        "OPENLINEAGE_URL",
        "OPENLINEAGE_CONFIG",
        "OPENLINEAGE_DISABLED",
        "OPENLINEAGE_NAMESPACE",
    ):
        monkeypatch.delenv(key, raising=False)


def test_a_run_emits_start_and_complete_per_task(example_project):
    log = with_openlineage(example_project)
    code, out = run_cli(["run", "--interval", DAY, "--json", "--project", example_project])
    assert code == 0, out
    result = json.loads(out)
    everything = events_of(log)
    # the pipe run itself: the parent job, first and last
    first, last = everything[0], everything[-1]
    assert [(e["job"]["name"], e["eventType"]) for e in (first, last)] == [
        ("shop", "START"),
        ("shop", "COMPLETE"),
    ]
    assert first["run"]["runId"] == last["run"]["runId"]
    assert first["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2026-06-01T00:00:00Z"
    events = everything[1:-1]
    ran = {t["id"]: t for t in result["tasks"] if t["status"] == "success"}
    assert len(events) == 2 * len(ran)
    by_run: dict[str, list[dict]] = {}
    for e in events:
        by_run.setdefault(e["run"]["runId"], []).append(e)
    assert len(by_run) == len(ran)
    parents = set()
    for run_events in by_run.values():
        assert [e["eventType"] for e in run_events] == ["START", "COMPLETE"]
        assert run_events[0]["eventTime"] <= run_events[1]["eventTime"]
        parent = run_events[0]["run"]["facets"]["parent"]
        parents.add((parent["run"]["runId"], parent["job"]["namespace"], parent["job"]["name"]))
        assert {e["job"]["namespace"] for e in run_events} == {"shop-dev"}
    assert parents == {(first["run"]["runId"], "shop-dev", "shop")}

    # staging.orders: inputs, interval, SQL, rows, checks and column lineage
    [done] = [
        e for e in events if e["job"]["name"] == "staging.orders" and e["eventType"] == "COMPLETE"
    ]
    warehouse = f"duckdb://{(example_project / 'warehouse.duckdb').resolve().as_posix()}"
    assert sorted((i["namespace"], i["name"]) for i in done["inputs"]) == [
        (warehouse, "raw.orders"),
        (warehouse, "staging.customers"),
        (warehouse, "staging.products"),
    ]
    assert done["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2026-06-01T00:00:00Z"
    assert done["run"]["facets"]["nominalTime"]["nominalEndTime"] == "2026-06-02T00:00:00Z"
    assert "from raw.orders as o" in done["job"]["facets"]["sql"]["query"]
    assert done["job"]["facets"]["sql"]["dialect"] == "duckdb"
    [output] = done["outputs"]
    assert (output["namespace"], output["name"]) == (warehouse, "staging.orders")
    task = next(t for t in ran.values() if t["model"] == "staging.orders")
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == task["rows"]
    assertions = output["facets"]["dataQualityAssertions"]["assertions"]
    assert {(a["name"], a["success"]) for a in assertions} == {
        (c["name"], c["status"] == "pass") for c in task["checks"]
    }
    not_null = next(a for a in assertions if a["name"] == "not_null(order_id)")
    assert (not_null["assertion"], not_null["column"], not_null["severity"]) == (
        "not_null",
        "order_id",
        "error",
    )
    lineage = output["facets"]["columnLineage"]["fields"]
    assert sorted((f["name"], f["field"]) for f in lineage["amount"]["inputFields"]) == [
        ("raw.orders", "quantity"),
        ("staging.products", "price_cents"),
    ]
    fields = [f["name"] for f in output["facets"]["schema"]["fields"]]
    assert fields[:2] == ["order_id", "customer_id"] and "amount" in fields

    # a seed reads its CSV file
    [seed] = [e for e in events if e["job"]["name"] == "raw.orders" and e["eventType"] == "START"]
    assert seed["inputs"] == [
        {
            "namespace": "file",
            "name": (example_project / "seeds/raw/orders.csv").resolve().as_posix(),
            "facets": {},
            "inputFacets": {},
        }
    ]
    assert {f["name"]: f["type"] for f in seed["outputs"][0]["facets"]["schema"]["fields"]}[
        "quantity"
    ] == "BIGINT"


FAILING = {
    "seeds/raw/n.csv": "id\n1\n2\n",
    "models/s/good.sql": "select id from raw.n\n",
    "models/s/bad.sql": "select id, id / 0 as boom from raw.n\n",
    "models/s/bad.yml": 'checks:\n  - expression: "id > 1"\n',
    "models/s/after.sql": "select * from s.bad\n",
}


def test_a_failed_task_emits_fail_with_its_error(write_project):
    root = write_project(FAILING)
    log = with_openlineage(root)
    code, out = run_cli(["run", "--interval", DAY, "--project", root])
    assert code == 1, out
    events = events_of(log)
    states = {}
    for e in events:
        states.setdefault(e["job"]["name"], []).append(e["eventType"])
    assert states == {
        "raw.n": ["START", "COMPLETE"],
        "s.good": ["START", "COMPLETE"],
        "s.bad": ["START", "FAIL"],
        "t": ["START", "FAIL"],  # the pipe run: a task failed
    }  # s.after never started: no events
    [fail] = [e for e in events if e["eventType"] == "FAIL" and e["job"]["name"] == "s.bad"]
    assert "expression(id > 1)" in fail["run"]["facets"]["errorMessage"]["message"]
    assert fail["run"]["facets"]["errorMessage"]["programmingLanguage"] == "SQL"
    [assertion] = fail["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
    assert (assertion["success"], assertion["actual"]) == (False, "1")


def test_a_failing_transport_never_fails_the_run(write_project):
    root = write_project(FAILING | {"models/s/bad.yml": ""})
    (root / "events.jsonl").mkdir()  # the file transport cannot write a directory
    with_openlineage(root)
    code, out = run_cli(["run", "--interval", DAY, "--project", root])
    assert code == 0, out
    warnings = [line for line in out.splitlines() if "OpenLineage" in line]
    assert len(warnings) == 1, out
    assert warnings[0].startswith("warning: OpenLineage events could not be sent")
    assert "10 event(s) dropped, the run itself is unaffected" in warnings[0]


def test_environment_variables_configure_the_client(write_project, monkeypatch):
    root = write_project(FAILING | {"models/s/bad.yml": ""})
    log = root / "env-events.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(log))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "from-env")
    code, out = run_cli(["run", "--interval", DAY, "--project", root])
    assert code == 0, out
    events = events_of(log)
    assert len(events) == 10
    assert {e["job"]["namespace"] for e in events} == {"from-env"}
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    log.unlink()
    code, out = run_cli(["run", "--interval", DAY, "--force", "--project", root])
    assert code == 0, out
    assert not log.exists()


def test_no_configuration_no_events(write_project, monkeypatch):
    monkeypatch.chdir(write_project(FAILING))
    code, out = run_cli(["run", "--interval", DAY])
    assert code == 0 or code == 1, out
    assert "OpenLineage" not in out


@pytest.mark.parametrize(
    ("yml", "message"),
    [
        (
            "openlineage:\n  transport: {url: 'http://x'}\n",
            "pipe.yml:8: 'openlineage.transport' needs 'type'",
        ),
        (
            "openlineage:\n  namespace: n\n  colour: red\n",
            "pipe.yml:9: unknown key 'colour' in openlineage",
        ),
        (
            "openlineage:\n  transport: {type: http, url: 'http://x', auth: {type: api_key, "
            "apiKey: '${PIPE_TEST_NO_SUCH_VAR}'}}\n",
            "PIPE_TEST_NO_SUCH_VAR",
        ),
    ],
)
def test_openlineage_config_errors_are_exit_2(write_project, yml, message):
    root = write_project(FAILING, pipe_yml=PIPE_YML + yml)
    code, out = run_cli(["run", "--interval", DAY, "--project", root])
    assert code == 2, out
    assert message in out


def test_interrupted_tasks_end_with_abort(write_project):
    """Driven through the runner's Reporter hooks, as the runner calls them: a task that
    fails after Ctrl-C, and one still open when the run ends, both end with ABORT."""
    from pipe import intervals, planner
    from pipe.compiler import compile_project
    from pipe.executor import TaskResult
    from pipe.loader import load_project
    from pipe.openlineage import observe
    from pipe.runner import Reporter

    root = write_project(FAILING)
    log = with_openlineage(root)
    cp = compile_project(load_project(root))
    tasks = {t.model: t for t in planner.build_plan(cp, intervals.parse_label(DAY)).tasks}
    warnings: list[str] = []
    reporter = observe(Reporter(), cp, warnings.append)
    reporter.start(len(tasks), 0, DAY)
    reporter.task_started(tasks["s.good"], 1)
    reporter.task_started(tasks["s.bad"], 1)
    reporter.stopping(2)
    reporter.task_finished(tasks["s.bad"], TaskResult("failed", error="interrupted"), 1, 0.1, True)
    reporter.done()
    assert warnings == []
    assert [(e["job"]["name"], e["eventType"]) for e in events_of(log)] == [
        ("t", "START"),
        ("s.good", "START"),
        ("s.bad", "START"),
        ("s.bad", "ABORT"),
        ("s.good", "ABORT"),
        ("t", "ABORT"),
    ]


def test_dataset_namespaces_follow_openlineage_naming_without_credentials(tmp_path, monkeypatch):
    from pipe.adapters.duckdb import DuckDBAdapter
    from pipe.adapters.postgres import PostgresAdapter
    from pipe.config import Target

    monkeypatch.setenv("PIPE_TEST_OL_DSN", "postgresql://ann:s3cret@db.example:6543/shop")
    pg = Target("prod", "postgres", "postgres", (("dsn", "${PIPE_TEST_OL_DSN}"),))
    assert PostgresAdapter.lineage_namespace(pg, tmp_path) == (
        "postgres://db.example:6543",
        "shop.",
    )
    kv = Target("kv", "postgres", "postgres", (("dsn", "host=h dbname=d password=x"),))
    assert PostgresAdapter.lineage_namespace(kv, tmp_path) == ("postgres://h:5432", "d.")
    dev = Target("dev", "duckdb", "duckdb", (("path", "w.duckdb"),))
    assert DuckDBAdapter.lineage_namespace(dev, tmp_path) == (
        f"duckdb://{(tmp_path / 'w.duckdb').resolve().as_posix()}",
        "",
    )


@pytest.mark.postgres
def test_postgres_run_events_and_catalog_lineage(write_project, pg_dsn, monkeypatch):
    """On Postgres: datasets are named database.schema.table under postgres://host:port,
    with no credential; a source without columns: takes them from the catalog."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from conftest import run_cli_json

    with psycopg.connect(pg_dsn, autocommit=True) as con:
        con.execute("create schema ext")
        con.execute("create table ext.blob (payload text, n int)")
        con.execute("insert into ext.blob values ('a', 1), ('b', 2)")
    monkeypatch.setenv("PIPE_TEST_OL_PG", pg_dsn)
    yml = PIPE_YML.replace(
        "dev: {adapter: duckdb, path: warehouse.duckdb}",
        'dev: {adapter: postgres, dsn: "${PIPE_TEST_OL_PG}"}',
    )
    root = write_project(
        {
            "sources.yml": "sources:\n  - name: ext.blob\n",
            "models/s/a.sql": "select *, n * 2 as n2 from ext.blob\n",
        },
        pipe_yml=yml,
    )
    log = with_openlineage(root)
    rows = run_cli_json(["lineage", "s.a", "--json", "--project", root])
    assert [(r["column"], r["parents"]) for r in rows] == [
        ("s.a.payload", ["ext.blob.payload"]),
        ("s.a.n", ["ext.blob.n"]),
        ("s.a.n2", ["ext.blob.n"]),
    ]
    code, out = run_cli(["run", "--interval", DAY, "--project", root])
    assert code == 0, out
    info = conninfo_to_dict(pg_dsn)
    namespace = f"postgres://{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
    events = events_of(log)
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("t", "START"),
        ("s.a", "START"),
        ("s.a", "COMPLETE"),
        ("t", "COMPLETE"),
    ]
    done = events[2]
    assert (done["outputs"][0]["namespace"], done["outputs"][0]["name"]) == (
        namespace,
        f"{info['dbname']}.s.a",
    )
    assert done["inputs"][0]["name"] == f"{info['dbname']}.ext.blob"
    assert done["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 2
    fields = done["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert sorted(fields) == ["n", "n2", "payload"]  # the source's columns from the catalog
    assert "password" not in log.read_text()


def test_a_backfill_emits_each_task_with_its_own_sql(write_project):
    root = write_project(
        {
            "seeds/raw/e.csv": "ts,v\n2026-06-01 10:00:00,1\n2026-06-02 10:00:00,2\n",
            "models/s/inc.sql": "select ts, v from raw.e where ts >= {{ interval_start }} and "
            "ts < {{ interval_end }}\n",
            "models/s/inc.yml": "kind: incremental\ntime_column: ts\n",
        }
    )
    log = with_openlineage(root)
    code, out = run_cli(
        ["backfill", "--start", "2026-06-01", "--end", "2026-06-03", "--project", root]
    )
    assert code == 0, out
    done = {
        e["run"]["facets"]["nominalTime"]["nominalStartTime"]: e
        for e in events_of(log)
        if e["job"]["name"] == "s.inc" and e["eventType"] == "COMPLETE"
    }
    assert sorted(done) == ["2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"]
    for start, e in done.items():
        assert f"TIMESTAMP '{start[:10]} 00:00:00'" in e["job"]["facets"]["sql"]["query"]
        assert e["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 1


def test_openlineage_without_a_transport_warns_and_runs(write_project, monkeypatch):
    monkeypatch.chdir(write_project({}, name="elsewhere"))  # no openlineage.yml here
    root = write_project(
        FAILING | {"models/s/bad.yml": ""}, pipe_yml=PIPE_YML + "openlineage:\n  namespace: n\n"
    )
    code, out = run_cli(["run", "--interval", DAY, "--project", root])
    assert code == 0, out
    assert [
        line for line in out.splitlines() if "OpenLineage" in line or "openlineage" in line
    ] == [
        "warning: 'openlineage' in pipe.yml has no transport and no OPENLINEAGE_URL "
        "(or other OPENLINEAGE_ variable) is set; no events are sent"
    ]
