"""The Spark target: configuration errors, secrets, the missing client, compile-time
rules of the Spark dialect, the embedded local session. Behaviour (publish, checks,
timeouts, the example's tables) is in the contract suite, which runs on Spark too.

Only the last test needs Java; the others run without a server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import run_cli, run_pipe
from servers import free_port, spark_home

SPARK_YML = """\
name: t
start: 2026-06-01
targets:
  dev: {adapter: duckdb, path: warehouse.duckdb}
  spark: {adapter: spark, remote: "${PIPE_SPARK_REMOTE}"}
"""


def test_a_spark_target_needs_remote_or_master(write_project):
    root = write_project(
        {"models/a/m.sql": "select 1 as x"},
        pipe_yml=SPARK_YML.replace('remote: "${PIPE_SPARK_REMOTE}"', "warehouse: w"),
    )
    code, out = run_cli(["compile", "--project", root, "--interval", "2026-06-01"])
    assert code == 2, out
    assert (
        "pipe.yml:5: target 'spark' (spark) needs either 'remote' (sc://HOST:PORT) or "
        "'master' (local[N]), not both"
    ) in out


def test_an_unreachable_server_is_a_user_error_that_never_shows_the_token(
    write_project, monkeypatch
):
    secret = "dapi-s3cr3t-314159"
    monkeypatch.setenv("PIPE_SPARK_REMOTE", f"sc://127.0.0.1:{free_port()}/;token={secret}")
    root = write_project({"models/a/m.sql": "select 1 as x"}, pipe_yml=SPARK_YML)
    code, out = run_cli(["run", "--project", root, "--target", "spark", "--interval", "2026-06-01"])
    assert code == 2, out
    assert "cannot connect to target 'spark' (spark): 127.0.0.1:" in out
    assert secret not in out
    for path in (root / "plans").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text()


def test_without_pyspark_a_spark_target_says_what_to_install(write_project, monkeypatch):
    """A Python where `import pyspark` fails (sys.modules entry None) runs the real CLI."""
    monkeypatch.setenv("PIPE_SPARK_REMOTE", "sc://127.0.0.1:15002")
    root = write_project({"models/a/m.sql": "select 1 as x"}, pipe_yml=SPARK_YML)
    code = (
        "import sys; sys.modules['pyspark'] = None; from pipe.cli import main; "
        "main(['run', '--target', 'spark', '--interval', '2026-06-01'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "the spark adapter needs pyspark with Spark Connect" in out
    assert "pip install 'pipe[spark]'" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("sql", "line", "message"),
    [
        ("select 1 as x\nunion by name\nselect 2 as x", 1, "UNION BY NAME cannot run on spark"),
        ("select x,\n  x::json as j from a.base", 2, "a cast to JSON (::json) cannot run on spark"),
        ("select *\nexclude (x) from a.base", 1, "SELECT * EXCLUDE/REPLACE cannot run on spark"),
        # sqlglot knows no such function and passes it through by name
        ("select x,\n  to_hours(x) as h from a.base", 2, "the function to_hours() cannot run"),
        ("select list_sum([x, 1]) as s from a.base", 1, "the function list_sum() cannot run"),
        (
            "select x from a.base\ncross join read_csv('x.csv') as c",
            2,
            "the table function read_csv() cannot run on spark",
        ),
    ],
)
def test_constructs_spark_cannot_run_are_compile_errors(write_project, sql, line, message):
    root = write_project(
        {"models/a/base.sql": "select 1 as x", "models/a/m.sql": sql}, pipe_yml=SPARK_YML
    )
    code, out = run_cli(
        ["compile", "--project", root, "--target", "spark", "--interval", "2026-06-01"]
    )
    assert code == 2, out
    assert f"models/a/m.sql:{line}: {message}" in out, out
    assert "Traceback" not in out
    assert run_cli(["compile", "--project", root, "--interval", "2026-06-01"])[0] == 0


def test_spark_built_ins_and_catalog_functions_by_qualified_name_compile(write_project):
    root = write_project(
        {
            "models/a/m.sql": "select h, epoch_ms(h) as t, strftime(now(), '%Y') as y,\n"
            "  ops.my_udf(h) as u from range(24) as t(h)",
            "models/a/n.sql": "select v from unnest([1, 2]) as t(v)",
        },
        pipe_yml=SPARK_YML,
    )
    code, out = run_cli(
        ["compile", "--project", root, "--target", "spark", "--interval", "2026-06-01"]
    )
    assert code == 0, out


def test_a_series_table_source_is_written_as_spark_range(write_project):
    root = write_project(
        {
            "models/a/m.sql": "select i from range(3) t(i)",
            "models/a/n.sql": "select i from generate_series(1, 3) t(i)",
        },
        pipe_yml=SPARK_YML,
    )
    code, out = run_cli(
        ["compile", "--project", root, "--target", "spark", "--interval", "2026-06-01"]
    )
    assert code == 0, out
    plan = json.loads((root / "plans" / "spark" / "2026-06-01.json").read_text())
    sql = {t["table"]: " ".join("\n".join(t["sql"]).split()) for t in plan["tasks"]}
    assert sql == {
        "a.m": "SELECT i FROM RANGE(0, 3) AS t(i)",
        "a.n": "SELECT i FROM RANGE(1, 3 + 1) AS t(i)",
    }


@pytest.mark.spark
def test_the_embedded_local_session_writes_its_tables_under_the_warehouse_dir(
    write_project, request
):
    """`master: local[1]` starts Spark inside the pipe process, with a Derby metastore and
    the tables under the warehouse directory. (One run: a JVM start costs a minute here.)"""
    if spark_home() is None or not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        request.getfixturevalue("spark_remote")  # skips, or fails under CI=true, with why
    root = write_project(
        {
            "models/a/m.sql": "select i, i * 2 as j from range(3) t(i)",
            "models/a/v.sql": "select sum(j) as s from a.m",
            "models/a/v.yml": "kind: view\n",
        },
        pipe_yml=SPARK_YML.replace(
            'remote: "${PIPE_SPARK_REMOTE}"', 'master: "local[1]", warehouse: sparkwh'
        ),
    )
    proc = run_pipe(["run", "--target", "spark", "--interval", "2026-06-01"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 succeeded" in proc.stdout, proc.stdout
    assert (root / "sparkwh" / "metastore_db").is_dir()
    tables = root / "sparkwh" / "tables" / "_pipe.db"
    assert sorted(p.name.split("__v")[0] for p in tables.iterdir()) == ["a__m", "ledger"]


@pytest.mark.spark
def test_a_ledger_of_parquet_rows_is_converted_to_table_properties(
    write_project, spark_remote, monkeypatch
):
    """An older pipe kept the ledger as Parquet rows of `_pipe.ledger`; a run converts them
    into the table's properties (one metastore operation a row, not a Spark job) and still
    skips what they say is published."""
    from spark_helpers import SparkWarehouse, session

    SparkWarehouse(spark_remote).wipe()
    monkeypatch.setenv("PIPE_SPARK_REMOTE", spark_remote)
    root = write_project({"models/a/m.sql": "select 1 as x"}, pipe_yml=SPARK_YML)
    args = ["run", "--target", "spark", "--interval", "2026-06-01"]
    proc = run_pipe(args, root)
    assert proc.returncode == 0 and "1 succeeded" in proc.stdout, proc.stdout + proc.stderr
    spark = session(spark_remote)
    props = dict(spark.sql("SHOW TBLPROPERTIES _pipe.ledger").collect())
    (row,) = [json.loads(v) for k, v in props.items() if k.startswith("pipe.ledger.")]
    # the warehouse as an older pipe left it: the same row in Parquet, no properties
    keys = ", ".join(f"'{k}'" for k in props if k.startswith("pipe.ledger"))
    spark.sql(f"ALTER TABLE _pipe.ledger UNSET TBLPROPERTIES ({keys})")
    spark.createDataFrame([row], spark.table("_pipe.ledger").schema).write.insertInto(
        "_pipe.ledger"
    )
    shutil.rmtree(root / ".pipe")  # the state store too: only the warehouse's ledger says
    proc = run_pipe(args, root)
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout + proc.stderr
    props = dict(spark.sql("SHOW TBLPROPERTIES _pipe.ledger").collect())
    assert props["pipe.ledger_format"] == "properties"
    assert [json.loads(v) for k, v in props.items() if k.startswith("pipe.ledger.")] == [row]
    assert spark.sql("SELECT count(*) FROM _pipe.ledger").collect()[0][0] == 0
