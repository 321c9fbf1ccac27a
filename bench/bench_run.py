"""`pipe run` against the floor: the same CREATE TABLE AS statements run one by one.

    python bench/bench_run.py [--models 1000] [--concurrency 1 2]
    python bench/bench_run.py --engine postgres --dsn postgresql://... [--models 200]
    python bench/bench_run.py --engine spark --remote sc://127.0.0.1:15002 --models 100 \
        --concurrency 1 4

1. Generates a synthetic project of N full models (bench/gen_project.py) and compiles its
   plan for one interval (not timed: `pipe run` finds the plan on disk, as after a
   `pipe compile` in CI).
2. The floor: every task of the plan as a bare `CREATE TABLE ... AS <plan SQL>` (seeds as
   CREATE TABLE AS read_csv on DuckDB, COPY on Postgres, pipe's own seed load on Spark),
   in plan order, through one connection (one Spark Connect session), in a fresh
   warehouse, timed.
3. `pipe run --interval` of the same plan in a fresh warehouse and state, at each
   concurrency, as a subprocess, whole-process wall time (write-audit-publish, checks,
   ledger and state store included).
All in one run so the figures compare. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "run"
LABEL = "2026-06-01"


def pipe(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("pipe")), *args]


TARGETS = {"postgres": ("pg", 'pg: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}'),
           "spark": ("spark", 'spark: {adapter: spark, remote: "${PIPE_SPARK_REMOTE}"}')}


def generate(models: int, engine: str, dsn: str | None) -> Path:
    root = OUT / f"{engine}-{models}"
    if root.exists():
        shutil.rmtree(root)
    subprocess.run([sys.executable, str(HERE / "gen_project.py"), str(root), "--models",
                    str(models)], check=True, stdout=subprocess.DEVNULL)
    if engine in TARGETS:
        yml = (root / "pipe.yml").read_text()
        yml = yml.replace("targets:\n", f"targets:\n  {TARGETS[engine][1]}\n", 1)
        (root / "pipe.yml").write_text(yml)
    args = ["compile", "--project", str(root), "--interval", LABEL]
    if engine in TARGETS:
        args += ["--target", TARGETS[engine][0]]
    subprocess.run(pipe(*args), check=True, stdout=subprocess.DEVNULL,
                   env=_env(dsn))
    return root


def _env(dsn: str | None) -> dict:
    import os

    env = dict(os.environ)
    if dsn:
        env["PIPE_PG_DSN"] = env["PIPE_SPARK_REMOTE"] = dsn
    return env


def plan_tasks(root: Path, target: str) -> list[dict]:
    return json.loads((root / "plans" / target / f"{LABEL}.json").read_text())["tasks"]


def floor_duckdb(root: Path, tasks: list[dict]) -> float:
    path = OUT / "floor.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    for schema in sorted({t["table"].split(".")[0] for t in tasks}):
        con.execute(f"CREATE SCHEMA {schema}")
    for t in tasks:
        if t["kind"] == "seed":
            con.execute(f"CREATE TABLE {t['table']} AS SELECT * FROM read_csv("
                        f"'{root / t['seed_path']}', header = true)")
        else:
            con.execute(f"CREATE TABLE {t['table']} AS\n" + "\n".join(t["sql"]))
    con.close()  # the checkpoint that writes the WAL into the file: pipe run pays it too
    return time.perf_counter() - t0


def _reset_pg(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        for (schema,) in con.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
                "AND nspname NOT IN ('information_schema', 'public')").fetchall():
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        # the generated models round doubles, as DuckDB allows; Postgres rounds numerics
        # only. A shim in the bench database (not in pipe) lets the same models run.
        con.execute("CREATE OR REPLACE FUNCTION public.round(double precision, integer) "
                    "RETURNS numeric LANGUAGE sql IMMUTABLE AS "
                    "'SELECT round($1::numeric, $2)'")


def floor_postgres(root: Path, tasks: list[dict], dsn: str) -> float:
    import psycopg

    from pipe.adapters.postgres import PostgresAdapter
    from pipe.config import Target

    _reset_pg(dsn)
    # seeds are typed as pipe types them (DuckDB's inference), then COPY: the same work
    seeder = PostgresAdapter(Target("pg", "postgres", "postgres", (("dsn", dsn),)), root, dsn)
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as con:
        for schema in sorted({t["table"].split(".")[0] for t in tasks}):
            con.execute(f"CREATE SCHEMA {schema}")
        for t in tasks:
            if t["kind"] == "seed":
                seeder.load_seed(t["table"], root / t["seed_path"],
                                 dict(t.get("column_types", {})))
            else:
                con.execute((f"CREATE TABLE {t['table']} AS\n" + "\n".join(t["sql"])).encode())
    seconds = time.perf_counter() - t0
    seeder.close()
    return seconds


def _spark_session(remote: str):
    from pyspark.sql.connect.session import SparkSession

    s = SparkSession.builder.remote(remote).create()
    s.conf.set("spark.sql.session.timeZone", "UTC")
    return s


def _reset_spark(remote: str) -> None:
    s = _spark_session(remote)
    for (db,) in [tuple(r) for r in s.sql("SHOW DATABASES").collect()]:
        if db != "default":
            s.sql(f"DROP DATABASE `{db}` CASCADE")
    s.stop()


def floor_spark(root: Path, tasks: list[dict], remote: str) -> float:
    """The same statements through one Spark Connect session: CREATE TABLE AS each
    model's plan SQL (Parquet, as pipe writes), seeds loaded the way pipe loads them."""
    from pipe.adapters.spark import SparkAdapter
    from pipe.config import Target

    _reset_spark(remote)
    seeder = SparkAdapter(Target("spark", "spark", "spark", (("remote", remote),)), root)
    s = seeder.spark
    t0 = time.perf_counter()
    for schema in sorted({t["table"].split(".")[0] for t in tasks} | {"_pipe"}):
        s.sql(f"CREATE SCHEMA {schema}")
    for t in tasks:
        if t["kind"] == "seed":
            seeder.load_seed(t["table"] + "__pipe_tmp_x", root / t["seed_path"],
                             dict(t.get("column_types", {})))
        else:
            s.sql(f"CREATE TABLE {t['table']} USING parquet AS\n" + "\n".join(t["sql"]))
    seconds = time.perf_counter() - t0
    seeder.close()
    return seconds


def run_pipe(root: Path, concurrency: int, engine: str, dsn: str | None) -> float:
    shutil.rmtree(root / ".pipe" / "state.db", ignore_errors=True)
    for p in (root / ".pipe").glob("state.db*"):
        p.unlink()
    (root / ".pipe" / "lock").unlink(missing_ok=True)
    (root / "warehouse.duckdb").unlink(missing_ok=True)
    args = ["run", "--project", str(root), "--interval", LABEL, "--concurrency",
            str(concurrency)]
    if engine == "postgres":
        _reset_pg(dsn)
    if engine == "spark":
        _reset_spark(dsn)
    if engine in TARGETS:
        args += ["--target", TARGETS[engine][0]]
    t0 = time.perf_counter()
    subprocess.run(pipe(*args), check=True, stdout=subprocess.DEVNULL, env=_env(dsn))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--engine", choices=["duckdb", "postgres", "spark"], default="duckdb")
    ap.add_argument("--dsn", help="postgres: a database this benchmark may wipe")
    ap.add_argument("--remote", help="spark: a Spark Connect server this benchmark may wipe")
    args = ap.parse_args()
    if args.engine == "postgres" and not args.dsn:
        ap.error("--engine postgres needs --dsn")
    if args.engine == "spark":
        if not args.remote:
            ap.error("--engine spark needs --remote")
        args.dsn = args.remote
    OUT.mkdir(parents=True, exist_ok=True)
    root = generate(args.models, args.engine, args.dsn)
    target = TARGETS.get(args.engine, ("dev",))[0]
    tasks = plan_tasks(root, target)
    if args.engine == "postgres":
        f = floor_postgres(root, tasks, args.dsn)
    elif args.engine == "spark":
        f = floor_spark(root, tasks, args.dsn)
    else:
        f = floor_duckdb(root, tasks)
    result = {"engine": args.engine, "models": args.models, "tasks": len(tasks),
              "floor_seconds": round(f, 2)}
    print(f"{args.engine}, {len(tasks)} tasks: floor {f:.2f}s "
          f"({f / len(tasks) * 1000:.1f} ms a task)", flush=True)
    for c in args.concurrency:
        s = run_pipe(root, c, args.engine, args.dsn)
        result[f"pipe_c{c}_seconds"] = round(s, 2)
        result[f"pipe_c{c}_vs_floor"] = round(s / f, 2)
        print(f"pipe run --concurrency {c}: {s:.2f}s = {s / f:.2f}x the floor", flush=True)
    (OUT / f"result-{args.engine}-{args.models}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
