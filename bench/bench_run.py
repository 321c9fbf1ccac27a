"""`pipe run` against the floor: the same CREATE TABLE AS statements run one by one.

    python bench/bench_run.py [--models 1000] [--concurrency 1 2] [--before SRC] [--pairs 3]
    python bench/bench_run.py --engine postgres --dsn postgresql://... [--models 200]
    python bench/bench_run.py --first-task [--before SRC] [--pairs 9]

1. Generates a synthetic project of N full models (bench/gen_project.py) and compiles its
   plan for one interval (not timed: `pipe run` finds the plan on disk, as after a
   `pipe compile` in CI).
2. The floor: every task of the plan as a bare `CREATE TABLE ... AS <plan SQL>` (seeds as
   CREATE TABLE AS read_csv on DuckDB, COPY on Postgres), in plan order, through one
   connection, in a fresh warehouse, timed. On Postgres the floor reads each seed CSV
   through the installed pipe's own `PostgresAdapter.load_seed` (DuckDB's CSV reading,
   the seed contract), so it shares pipe's one in-memory DuckDB but not a run's read-ahead.
3. `pipe run --interval` of the same plan in a fresh warehouse and state, at each
   concurrency, as a subprocess, whole-process wall time (write-audit-publish, checks,
   ledger and state store included), and the time from spawning the process to the
   start of its first task (the earliest `attempts.started_at` in .pipe/state.db).

`--before SRC` compares two versions of pipe on a busy machine: SRC is the `src/` folder
of another checkout (e.g. `git archive REV src | tar -x -C /tmp/before`), put first on
PYTHONPATH for the "before" runs. Each version gets its own copy of the project (their
caches differ), and every measurement is taken in pairs, before then after, `--pairs`
times, with the floor measured again in each pair: the ratios come from runs minutes
apart, not from separate sittings. `--after SRC` measures another `src/` than the installed
one (a frozen copy, so that the working tree may change while the benchmark runs).

`--profile`: one `pipe run --concurrency 1` in this process, fresh warehouse, with every
warehouse statement timed around the driver call (grouped by kind), pipe's Python in the
executor and the worker's idle time between tasks: where a c1 run's time goes.

`--first-task`: no floor; on a warehouse where the whole plan is published already,
`pipe run --force --select raw.customers` (one seed task, everything else of the
1,000-model project loaded, checked and decided as usual): process start to the first
task's start, and whole-process wall time.

A benchmark, not a test: it prints and writes bench/out/run/result-*.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import sqlite3
import statistics
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


def _env(dsn: str | None, src: str | None = None) -> dict:
    env = dict(os.environ)
    # an installed pipe runs from .pyc files; without them every module is compiled again
    # at each start, which is not what a user waits for
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if dsn:
        env["PIPE_PG_DSN"] = dsn
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def generate(root: Path, models: int, engine: str, dsn: str | None, src: str | None) -> Path:
    if root.exists():
        shutil.rmtree(root)
    subprocess.run(
        [sys.executable, str(HERE / "gen_project.py"), str(root), "--models", str(models)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if engine == "postgres":
        yml = (root / "pipe.yml").read_text()
        yml = yml.replace(
            "targets:\n", 'targets:\n  pg: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}\n', 1
        )
        (root / "pipe.yml").write_text(yml)
    args = ["compile", "--project", str(root), "--interval", LABEL]
    if engine == "postgres":
        args += ["--target", "pg"]
    subprocess.run(pipe(*args), check=True, stdout=subprocess.DEVNULL, env=_env(dsn, src))
    return root


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
            con.execute(
                f"CREATE TABLE {t['table']} AS SELECT * FROM read_csv("
                f"'{root / t['seed_path']}', header = true)"
            )
        else:
            con.execute(f"CREATE TABLE {t['table']} AS\n" + "\n".join(t["sql"]))
    con.close()  # the checkpoint that writes the WAL into the file: pipe run pays it too
    return time.perf_counter() - t0


def _reset_pg(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        for (schema,) in con.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
            "AND nspname NOT IN ('information_schema', 'public')"
        ).fetchall():
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        # the generated models round doubles, as DuckDB allows; Postgres rounds numerics
        # only. A shim in the bench database (not in pipe) lets the same models run.
        con.execute(
            "CREATE OR REPLACE FUNCTION public.round(double precision, integer) "
            "RETURNS numeric LANGUAGE sql IMMUTABLE AS "
            "'SELECT round($1::numeric, $2)'"
        )


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
                seeder.load_seed(t["table"], root / t["seed_path"], dict(t.get("column_types", {})))
            else:
                con.execute((f"CREATE TABLE {t['table']} AS\n" + "\n".join(t["sql"])).encode())
    seconds = time.perf_counter() - t0
    seeder.close()
    return seconds


def _fresh(root: Path, engine: str, dsn: str | None) -> None:
    """A fresh warehouse and state store (the compile caches and the plan stay)."""
    for p in (root / ".pipe").glob("state.db*"):
        p.unlink()
    (root / ".pipe" / "lock").unlink(missing_ok=True)
    for p in root.glob("warehouse.duckdb*"):
        p.unlink()
    if engine == "postgres":
        _reset_pg(dsn)


def run_pipe(
    root: Path, args: list[str], engine: str, dsn: str | None, src: str | None
) -> tuple[float, float]:
    """(whole-process seconds, seconds from spawning pipe to its first task's start)."""
    args = ["run", "--project", str(root), "--interval", LABEL, *args]
    if engine == "postgres":
        args += ["--target", "pg"]
    env = _env(dsn, src)
    t0 = time.time()
    p0 = time.perf_counter()
    subprocess.run(pipe(*args), check=True, stdout=subprocess.DEVNULL, env=env)
    seconds = time.perf_counter() - p0
    with sqlite3.connect(root / ".pipe" / "state.db") as db:
        (first,) = db.execute(
            "SELECT min(started_at) FROM attempts WHERE run_id = (SELECT max(run_id) FROM runs)"
        ).fetchone()
    return seconds, first - t0


def _kind(sql: str) -> str:
    s = " ".join(sql.split()[:3]).upper()
    if s.startswith("CREATE TABLE") and " AS" in sql.upper()[:300]:
        return "CREATE TABLE AS" if "READ_CSV" not in sql.upper() else "seed CREATE TABLE"
    if s.startswith("INSERT INTO _PIPE.LEDGER"):
        return "ledger INSERT"
    if s.startswith("SELECT COUNT(*)") or s.startswith("SELECT COUNT(*) FROM"):
        return "SELECT count(*) (checks)"
    return " ".join(s.split()[:2])


def profile_c1(root: Path) -> None:
    """A c1 run in this process, its statements, executor and hand-off timed."""
    import pipe.groupcommit as pgroup
    import pipe.runner as prun
    from pipe.adapters import duckdb as pduck
    from pipe.cli import main as pipe_main

    _fresh(root, "duckdb", None)
    stats: dict[str, list[float]] = {}
    run_sql, execute, work = pduck.DuckDBAdapter._run, prun.execute_with_timeout, prun._Session.work
    spans: list[tuple[float, float, float]] = []
    works: list[tuple[float, float]] = []

    def timed_sql(self, sql, params=None):
        # statements sent in one call with this one (BEGIN, the ledger row) name it too
        kind = " + ".join(_kind(x) for x in (*getattr(self, "_ahead", ()), sql) if x)
        t = time.perf_counter()
        try:
            return run_sql(self, sql, params)
        finally:
            stats.setdefault(kind, []).append(time.perf_counter() - t)

    def timed(fn):
        def run(*args, **kwargs):
            t, inside = time.perf_counter(), sum(map(sum, stats.values()))
            try:
                return fn(*args, **kwargs)
            finally:
                spans.append((t, time.perf_counter(), sum(map(sum, stats.values())) - inside))

        return run

    timed_execute = timed(execute)

    def timed_work(self, task, attempt):
        t = time.perf_counter()
        try:
            return work(self, task, attempt)
        finally:
            works.append((t, time.perf_counter()))

    pduck.DuckDBAdapter._run = timed_sql
    prun.execute_with_timeout, prun._Session.work = timed_execute, timed_work
    # a group commit's task (groupcommit.py) runs through Group.run, not the executor's
    # own transaction: time it the same way
    pgroup.Group.run = timed(pgroup.Group.run)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the run's own lines
        try:
            pipe_main(["run", "--project", str(root), "--interval", LABEL, "--concurrency", "1"])
        except SystemExit:
            pass
    wall = time.perf_counter() - t0
    print(f"c1 run in process: {wall:.2f}s wall")
    for name, xs in sorted(stats.items(), key=lambda kv: -sum(kv[1])):
        total = sum(xs)
        print(
            f"  {name:28s} {len(xs):5d} x {total / len(xs) * 1000:7.2f} ms = {total:6.2f}s "
            f"({total / wall:5.1%})"
        )
    in_sql = sum(map(sum, stats.values()))
    python = sum(e - s - inside for s, e, inside in spans)
    gaps = sorted(b[0] - a[1] for a, b in zip(works, works[1:], strict=False))
    print(f"  all statements {in_sql:.2f}s ({in_sql / wall:.1%})")
    print(f"  executor Python {python / len(spans) * 1000:.2f} ms a task ({python / wall:.1%})")
    if gaps:
        print(
            f"  worker idle between tasks: median {gaps[len(gaps) // 2] * 1000:.2f} ms, mean "
            f"{sum(gaps) / len(gaps) * 1000:.2f} ms ({sum(gaps) / wall:.1%})"
        )
    print(f"  first task {works[0][0] - t0:.2f}s after the command started")


def children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (all their threads):
    what a pipe process cost, whatever the machine's load did to its wall time."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--engine", choices=["duckdb", "postgres"], default="duckdb")
    ap.add_argument("--dsn", help="postgres: a database this benchmark may wipe")
    ap.add_argument("--before", metavar="SRC", help="src/ of the version to compare with")
    ap.add_argument("--pairs", type=int, default=1, help="rounds of (before, after)")
    ap.add_argument(
        "--after", metavar="SRC", help="src/ of the version measured (default: the installed one)"
    )
    ap.add_argument(
        "--first-task",
        action="store_true",
        help="only the time to the first task of a one-seed run",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="one c1 run in this process, its statements and hand-offs timed",
    )
    args = ap.parse_args()
    if args.profile:
        OUT.mkdir(parents=True, exist_ok=True)
        profile_c1(
            generate(OUT / f"duckdb-{args.models}-profile", args.models, "duckdb", None, None)
        )
        return
    if args.engine == "postgres" and not args.dsn:
        ap.error("--engine postgres needs --dsn")
    OUT.mkdir(parents=True, exist_ok=True)
    after = str(Path(args.after).resolve()) if args.after else None
    versions = {"after": after}
    if args.before:
        versions = {"before": str(Path(args.before).resolve()), "after": after}
    roots = {
        v: generate(
            OUT / f"{args.engine}-{args.models}-{v}", args.models, args.engine, args.dsn, src
        )
        for v, src in versions.items()
    }
    target = "pg" if args.engine == "postgres" else "dev"
    tasks = plan_tasks(roots["after"], target)
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    if args.first_task:
        for v, root in roots.items():  # publish everything once, untimed
            _fresh(root, args.engine, args.dsn)
            run_pipe(root, ["--concurrency", "2"], args.engine, args.dsn, versions[v])
    for n in range(args.pairs):
        if args.first_task:
            for v, root in roots.items():
                k0 = children_cpu()
                s, first = run_pipe(
                    root,
                    ["--force", "--select", "raw.customers"],
                    args.engine,
                    args.dsn,
                    versions[v],
                )
                add(f"{v} process cpu ms", (children_cpu() - k0) * 1000)
                add(f"{v} first task ms", first * 1000)
                add(f"{v} seconds", s)
                print(
                    f"pair {n + 1} {v}: first task after {first * 1000:.0f} ms, process {s:.2f}s",
                    flush=True,
                )
            continue
        fcpu = time.process_time()
        if args.engine == "postgres":
            f = floor_postgres(roots["after"], tasks, args.dsn)
        else:
            f = floor_duckdb(roots["after"], tasks)
        fcpu = time.process_time() - fcpu  # DuckDB's threads included (not a server's)
        add("floor seconds", f)
        add("floor cpu seconds", fcpu)
        print(
            f"pair {n + 1}: {args.engine}, {len(tasks)} tasks: floor {f:.2f}s "
            f"({f / len(tasks) * 1000:.1f} ms a task)",
            flush=True,
        )
        for c in args.concurrency:
            for v, root in roots.items():
                _fresh(root, args.engine, args.dsn)
                k0 = children_cpu()
                s, first = run_pipe(
                    root, ["--concurrency", str(c)], args.engine, args.dsn, versions[v]
                )
                add(f"{v} c{c} cpu seconds", children_cpu() - k0)
                if args.engine == "duckdb":
                    add(f"{v} c{c} cpu vs floor cpu", figures[f"{v} c{c} cpu seconds"][-1] / fcpu)
                add(f"{v} c{c} seconds", s)
                add(f"{v} c{c} vs floor", s / f)
                add(f"{v} first task ms", first * 1000)
                print(
                    f"  {v} pipe run --concurrency {c}: {s:.2f}s = {s / f:.2f}x the floor, "
                    f"first task after {first * 1000:.0f} ms",
                    flush=True,
                )
            if args.before:
                add(
                    f"c{c} after/before",
                    figures[f"after c{c} seconds"][-1] / figures[f"before c{c} seconds"][-1],
                )
                add(
                    f"c{c} after/before cpu",
                    figures[f"after c{c} cpu seconds"][-1]
                    / figures[f"before c{c} cpu seconds"][-1],
                )
    if args.first_task and args.before:
        figures["first task after/before"] = [
            a / b
            for a, b in zip(
                figures["after first task ms"], figures["before first task ms"], strict=True
            )
        ]
    print("medians:")
    for name, xs in figures.items():
        print(f"  {name}: {_median(xs):.3f}  ({', '.join(f'{x:.3f}' for x in xs)})")
    result = {
        "engine": args.engine,
        "models": args.models,
        "tasks": len(tasks),
        "pairs": args.pairs,
        "figures": figures,
        "medians": {k: round(_median(v), 4) for k, v in figures.items()},
    }
    name = f"result-{args.engine}-{args.models}{'-first' if args.first_task else ''}.json"
    (OUT / name).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
