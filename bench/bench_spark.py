"""`pipe run` and `pipe backfill` on a local Spark Connect server, against the floor.

    python bench/bench_spark.py [--models 100] [--warmup 1] [--rounds 3] [--concurrency 1 4]
                                [--days 30] [--backfill-models 10]
                                [--backfill-concurrency 1 2 4] [--remote sc://HOST:PORT]
                                [--baseline OTHER/src] [--after THIS/src]

1. Starts a local Spark Connect server from the installed pyspark, as the tests do
   (tests/servers.py: `local[2]`, Hive catalog on an embedded Derby metastore, warehouse in
   a temp dir), or uses `--remote` (a server this benchmark may wipe: it drops every
   database but `default`). Stopped at the end.
2. Generates a project of N full models (bench/gen_project.py) with a target
   `{adapter: spark, remote: ...}` and compiles its plan for one interval (not timed).
3. `--warmup` rounds (kept in the JSON, left out of the medians: a fresh server's JVM runs
   the same statements 3x slower until they are compiled), then `--rounds` rounds,
   alternating, each on a fresh warehouse (every database but `default` dropped) and, for
   pipe, a fresh state store:
   - the floor: every task of the plan through one Spark Connect session, in plan order:
     seeds loaded as pipe loads them (`SparkAdapter.load_seed`: typed by DuckDB, sent as
     rows, saved as a Parquet table, a view over it), every model as a bare
     `CREATE TABLE ... USING parquet AS <plan SQL>`;
   - `pipe run --interval` at each `--concurrency`, as a subprocess, whole-process wall
     time, split by pipe's own timestamps (.pipe/state.db) into the start (process spawn
     to the run's start), the run (the run's start to its end) and the exit;
   - with `--baseline DIR` (the `src` directory of another pipe, e.g. `git archive REV
     src | tar -x -C /tmp/base`), the same `pipe run` of that pipe right after each one
     (PYTHONPATH=DIR): before and after, paired, in the same round against the same floor,
     which of the two goes first alternating by round; `--after DIR` runs the pipe measured
     from a frozen `src` too (the worktree's may change while the benchmark runs).
4. A backfill: `--days` x `--backfill-models` trivial incremental models (the models of
   bench/bench_backfill.py, in a form sqlglot turns into Spark SQL), `pipe backfill` at
   each `--backfill-concurrency` on a fresh warehouse and state, tasks a minute (whole
   process).
The machine is shared: every measurement is kept, medians and min/max are printed, and
the load average (`/proc/loadavg`) is recorded before and after each. Results are written
after each measurement to bench/out/spark/result.json. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import bench_backfill  # noqa: E402  (the trivial incremental models)
import bench_run  # noqa: E402
from bench_run import LABEL, _env, pipe, plan_tasks  # noqa: E402
from servers import start_spark_connect  # noqa: E402

OUT = HERE / "out" / "spark"
# bench_backfill.py's trivial model, written so that sqlglot gives Spark SQL for it (its
# `range(24) AS t(h)` and `to_hours(h)` have no Spark form); still valid DuckDB
MODEL = """select
    {{{{ interval_start }}}} + h * interval '1 hour' as ts,
    h as v,
    'm{i}' as model
from (select unnest(range(24)) as h) as t
where {{{{ interval_start }}}} + h * interval '1 hour' >= {{{{ interval_start }}}}
  and {{{{ interval_start }}}} + h * interval '1 hour' < {{{{ interval_end }}}}
"""


def _server_cpu(pid: int | None) -> float:
    """CPU seconds the server's JVM has used (user + system), 0 without its pid: what a
    measurement cost the server, less sensitive to the machine's other load than wall time."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _jvm_pid(url: str) -> int | None:
    """The pid of the local JVM serving `url` (the server's port is in its command line)."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        mark = f"binding.port={port}".encode()
        if cmd and cmd[0].endswith(b"java") and any(arg.endswith(mark) for arg in cmd):
            return int(proc.name)
    return None


def _load() -> str:
    """The load averages over 1, 5 and 15 minutes, as uptime shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def add_target(root: Path, remote: str) -> None:
    yml = (root / "pipe.yml").read_text()
    yml = yml.replace(
        "targets:\n", f'targets:\n  spark: {{adapter: spark, remote: "{remote}"}}\n', 1
    )
    (root / "pipe.yml").write_text(yml)


def generate(root: Path, models: int, remote: str) -> Path:
    bench_run.generate(root, models, "duckdb", None, None)  # and a compile for DuckDB
    add_target(root, remote)
    subprocess.run(
        pipe("compile", "--project", str(root), "--interval", LABEL, "--target", "spark"),
        check=True,
        stdout=subprocess.DEVNULL,
        env=_env(None),
    )
    return root


def session(remote: str):
    from pyspark.sql.connect.session import SparkSession

    spark = SparkSession.builder.remote(remote).create()
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # as pipe's sessions
    return spark


def wipe(spark) -> None:
    """A fresh warehouse: every database but `default` dropped with its tables."""
    for (name,) in spark.sql("SHOW DATABASES").collect():
        if name.lower() != "default":
            spark.sql(f"DROP DATABASE `{name}` CASCADE")


def floor(spark, root: Path, tasks: list[dict]) -> float:
    from pipe.adapters.spark import PHYSICAL, SparkAdapter
    from pipe.config import Target

    wipe(spark)
    seeder = SparkAdapter(Target("spark", "spark", "spark", ()), root, session=spark, owner=False)
    t0 = time.perf_counter()
    for schema in sorted({t["table"].split(".")[0] for t in tasks} | {PHYSICAL}):
        spark.sql(f"CREATE DATABASE {schema}")
    for t in tasks:
        if t["kind"] == "seed":
            seeder.load_seed(t["table"], root / t["seed_path"], dict(t.get("column_types", {})))
        else:
            spark.sql(f"CREATE TABLE {t['table']} USING parquet AS\n" + "\n".join(t["sql"]))
    return time.perf_counter() - t0


def _fresh_state(root: Path) -> None:
    for p in (root / ".pipe").glob("state.db*"):
        p.unlink()
    (root / ".pipe" / "lock").unlink(missing_ok=True)


def _timed(args: list[str], root: Path, src: str | None = None) -> dict:
    """Whole-process seconds of `pipe ARGS` (the pipe of `src`, when given), split by the
    run's own start and end; CPU seconds of the pipe process too."""
    t0, p0 = time.time(), time.perf_counter()
    c0 = os.times()
    subprocess.run(pipe(*args), check=True, stdout=subprocess.DEVNULL, env=_env(None, src))
    c1 = os.times()
    seconds = time.perf_counter() - p0
    t1 = t0 + seconds
    with sqlite3.connect(root / ".pipe" / "state.db") as db:
        started, finished, first = db.execute(
            "SELECT started_at, finished_at, (SELECT min(started_at) FROM attempts AS a "
            "WHERE a.run_id = r.run_id) FROM runs AS r ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
    return {
        "seconds": seconds,
        "cpu": (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system),
        "start": started - t0,
        "first task": first - t0,
        "run": finished - started,
        "exit": t1 - finished,
    }


def run_pipe(spark, root: Path, concurrency: int, src: str | None = None) -> dict:
    wipe(spark)
    _fresh_state(root)
    args = ["run", "--project", str(root), "--interval", LABEL, "--target", "spark"]
    return _timed([*args, "--concurrency", str(concurrency)], root, src)


def backfill(spark, root: Path, days: int, concurrency: int, src: str | None = None) -> dict:
    wipe(spark)
    for p in (root / ".pipe", root / "plans"):
        shutil.rmtree(p, ignore_errors=True)
    (root / ".pipe").mkdir()
    start = bench_backfill.START
    end = start + timedelta(days=days)
    args = ["backfill", "--project", str(root), "--target", "spark"]
    args += ["--start", f"{start:%Y-%m-%d}", "--end", f"{end:%Y-%m-%d}"]
    return _timed([*args, "--concurrency", str(concurrency)], root, src)


def _stats(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "all": xs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="rounds before, not in the medians")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--backfill-models", type=int, default=10)
    ap.add_argument("--backfill-concurrency", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--backfill-after", type=int, default=1, help="rounds before the backfill")
    ap.add_argument("--remote", help="sc://HOST:PORT of a server this benchmark may wipe")
    ap.add_argument("--baseline", help="src directory of another pipe, run after each run")
    ap.add_argument("--after", help="src directory of the pipe measured (default: the installed)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    server = None
    remote = args.remote
    if not remote:
        server, remote = start_spark_connect()
        if server is None:
            sys.exit(f"no Spark Connect server: {remote}")
    rev = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result: dict = {
        "date": datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "revision": rev,
        "machine": f"{platform.node()}, {os.cpu_count()} cores",
        "server": "tests/servers.py start_spark_connect() (local[2], 2g)" if server else remote,
        "models": args.models,
        "measurements": [],
    }

    def record(name: str, value: dict, load0: str) -> None:
        value = {"name": name, **value, "load before": load0, "load after": _load()}
        value["at"] = datetime.utcnow().strftime("%H:%M:%S")
        result["measurements"].append(value)
        summary: dict = {}
        for m in result["measurements"]:
            if m["name"].startswith("warm-up"):
                continue
            for key, x in m.items():
                if isinstance(x, float):
                    summary.setdefault(f"{m['name']} {key}", []).append(x)
        result["summary"] = {k: _stats(v) for k, v in summary.items()}
        (OUT / "result.json").write_text(json.dumps(result, indent=2))

    spark = session(remote)
    jvm = _jvm_pid(remote)  # a server on this machine: its CPU time is measured too
    try:
        root = generate(OUT / f"project-{args.models}", args.models, remote)
        tasks = plan_tasks(root, "spark")
        result["tasks"] = len(tasks)
        bench_backfill.MODEL = MODEL  # its generate() writes this model
        bf_root = bench_backfill.generate(OUT / "backfill", args.backfill_models)
        add_target(bf_root, remote)
        bf_tasks = args.days * args.backfill_models
        for n in range(-args.warmup, args.rounds):
            # a fresh server's JVM is slow until its code is compiled: the floor took 140 s
            # in the first round and 40 s in the next; warm-up rounds are kept apart
            pre = "warm-up " if n < 0 else ""
            load0 = _load()
            cpu0 = _server_cpu(jvm)
            f = floor(spark, root, tasks)
            record(f"{pre}floor", {"seconds": f, "server cpu": _server_cpu(jvm) - cpu0}, load0)
            number = n + 1 if n >= 0 else n + args.warmup + 1
            spent = result["measurements"][-1]["server cpu"]
            print(
                f"{pre}round {number}: floor {f:.1f}s (server cpu {spent:.1f}s), load {load0}",
                flush=True,
            )
            pipes = [("", args.after)] + ([("baseline ", args.baseline)] if args.baseline else [])
            pipes = pipes[::-1] if n % 2 else pipes  # alternate which goes first
            for c in args.concurrency:
                for who, src in pipes:
                    load0 = _load()
                    cpu0 = _server_cpu(jvm)
                    got = run_pipe(spark, root, c, src)
                    got["server cpu"] = _server_cpu(jvm) - cpu0
                    got["vs floor"] = got["seconds"] / f
                    record(f"{pre}{who}pipe c{c}", got, load0)
                    print(
                        f"  {who}pipe run --concurrency {c}: {got['seconds']:.1f}s = "
                        f"{got['vs floor']:.2f}x the floor (start {got['start']:.1f}s, "
                        f"run {got['run']:.1f}s, exit {got['exit']:.1f}s, "
                        f"cpu {got['cpu']:.1f}s, server cpu {got['server cpu']:.1f}s), "
                        f"load {load0}",
                        flush=True,
                    )
            if n + 1 == args.backfill_after:
                for c in args.backfill_concurrency:
                    load0 = _load()
                    cpu0 = _server_cpu(jvm)
                    got = backfill(spark, bf_root, args.days, c, args.after)
                    got["server cpu"] = _server_cpu(jvm) - cpu0
                    got["tasks/min"] = bf_tasks / got["seconds"] * 60
                    record(f"backfill c{c}", got, load0)
                    print(
                        f"  pipe backfill {args.days} days x {args.backfill_models} models "
                        f"--concurrency {c}: {got['seconds']:.1f}s, "
                        f"{got['tasks/min']:.0f} tasks/min (run {got['run']:.1f}s), "
                        f"load {load0}",
                        flush=True,
                    )
    finally:
        try:
            spark.stop()
        finally:
            if server:
                server.stop()
    print("medians (min-max):")
    for name, s in result["summary"].items():
        print(f"  {name}: {s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})")


if __name__ == "__main__":
    main()
