"""Backfill throughput against the write-audit-publish floor, and dry-run memory.

    python bench/bench_backfill.py [--days 365] [--models 100] [--concurrency 1 2 4]
                                   [--dry-run-models 1000]

1. Generates a project of trivial incremental models (each a 24-row SELECT filtered on its
   interval) under bench/out/backfill/.
2. The floor: the bare statements of every task (create temp, delete the interval, insert,
   drop temp, commit) run one after another through one DuckDB connection.
3. `pipe backfill` of the same days x models end to end (a fresh warehouse each time), at
   each concurrency, as a subprocess, wall time.
4. Peak memory (max RSS) of `pipe backfill --dry-run` over the same days for
   --dry-run-models models.
All in one run, so the figures compare. A benchmark, not a test.

`--before SRC` (the `src/` of another checkout, first on PYTHONPATH for its runs) with
`--pairs N` (and `--after SRC`, the measured version's `src/` when it is not the installed
one: a frozen copy, so that the working tree may change meanwhile): each version backfills
its own copy of the project, before then after at each concurrency, N times, with the floor
measured again in each pair, and prints the medians and the after/before ratios (as
bench_run.py does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

OUT = Path(__file__).resolve().parent / "out" / "backfill"
START = datetime(2025, 1, 1)

MODEL = """select
    {{{{ interval_start }}}} + to_hours(h) as ts,
    h as v,
    'm{i}' as model
from range(24) as t(h)
where {{{{ interval_start }}}} + to_hours(h) >= {{{{ interval_start }}}}
  and {{{{ interval_start }}}} + to_hours(h) < {{{{ interval_end }}}}
"""


def generate(root: Path, models: int) -> Path:
    if root.exists():
        shutil.rmtree(root)
    (root / "models" / "bench").mkdir(parents=True)
    (root / "pipe.yml").write_text(
        "name: bench\nstart: 2025-01-01\nschedule: daily\nconcurrency: 4\n"
        "targets:\n  dev: {adapter: duckdb, path: warehouse.duckdb}\n"
    )
    for i in range(models):
        (root / "models" / "bench" / f"m{i:04d}.sql").write_text(MODEL.format(i=i))
        (root / "models" / "bench" / f"m{i:04d}.yml").write_text(
            "kind: incremental\ntime_column: ts\n"
        )
    return root


def floor(days: int, models: int) -> float:
    """Seconds for the bare WAP statements of days x models tasks, one connection."""
    path = OUT / "floor.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("create schema bench")
    for i in range(models):
        con.execute(f"create table bench.m{i:04d} (ts timestamp, v bigint, model varchar)")
    t0 = time.perf_counter()
    for d in range(days):
        s = START + timedelta(days=d)
        e = s + timedelta(days=1)
        lit_s, lit_e = f"TIMESTAMP '{s:%Y-%m-%d %H:%M:%S}'", f"TIMESTAMP '{e:%Y-%m-%d %H:%M:%S}'"
        for i in range(models):
            sql = (
                MODEL.format(i=i)
                .replace("{{ interval_start }}", lit_s)
                .replace("{{ interval_end }}", lit_e)
            )
            con.execute(f"create table bench.m{i:04d}__tmp as {sql}")
            con.execute("begin")
            con.execute(f"delete from bench.m{i:04d} where ts >= {lit_s} and ts < {lit_e}")
            con.execute(f"insert into bench.m{i:04d} select * from bench.m{i:04d}__tmp")
            con.execute(f"drop table bench.m{i:04d}__tmp")
            con.execute("commit")
    con.close()  # the checkpoint that writes the WAL into the file: pipe pays it too
    return time.perf_counter() - t0


def pipe(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("pipe")
    return [str(exe), *args]


def _env(src: str | None) -> dict:
    import os

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed pipe runs from .pyc files
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def backfill(root: Path, days: int, concurrency: int, src: str | None = None) -> float:
    for p in (root / ".pipe", root / "plans"):
        shutil.rmtree(p, ignore_errors=True)
    (root / "warehouse.duckdb").unlink(missing_ok=True)
    end = START + timedelta(days=days)
    t0 = time.perf_counter()
    subprocess.run(
        pipe(
            "backfill",
            "--project",
            str(root),
            "--start",
            "2025-01-01",
            "--end",
            f"{end:%Y-%m-%d}",
            "--concurrency",
            str(concurrency),
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        env=_env(src),
    )
    return time.perf_counter() - t0


def paired(args, tasks: int) -> dict:
    """Before and after, alternating, `--pairs` times; the floor again in each pair."""
    import statistics

    after = str(Path(args.after).resolve()) if args.after else None
    versions = {"before": str(Path(args.before).resolve()), "after": after}
    roots = {v: generate(OUT / f"project-{v}", args.models) for v in versions}
    figures: dict[str, list[float]] = {}
    for n in range(args.pairs):
        fcpu = time.process_time()
        f = floor(args.days, args.models)
        fcpu = time.process_time() - fcpu  # DuckDB's threads included
        figures.setdefault("floor tasks/min", []).append(tasks / f * 60)
        figures.setdefault("floor cpu seconds", []).append(fcpu)
        print(f"pair {n + 1}: floor {f:.1f}s, {tasks / f * 60:,.0f} tasks/min", flush=True)
        for c in args.concurrency:
            got = {}
            for v, root in roots.items():
                k0 = children_cpu()
                s = backfill(root, args.days, c, versions[v])
                cpu = children_cpu() - k0
                got[v] = s
                got[v + " cpu"] = cpu
                # throughput per CPU second, against the floor's: what the load cannot skew
                figures.setdefault(f"{v} c{c} floor cpu / cpu", []).append(fcpu / cpu)
                figures.setdefault(f"{v} c{c} tasks/min", []).append(tasks / s * 60)
                figures.setdefault(f"{v} c{c} vs floor", []).append(f / s)
                print(
                    f"  {v} --concurrency {c}: {s:.1f}s, {tasks / s * 60:,.0f} tasks/min, "
                    f"{f / s:.2f}x the floor's throughput",
                    flush=True,
                )
            figures.setdefault(f"c{c} after/before throughput", []).append(
                got["before"] / got["after"]
            )
            figures.setdefault(f"c{c} after/before cpu", []).append(
                got["after cpu"] / got["before cpu"]
            )
    print("medians:")
    for name, xs in figures.items():
        print(f"  {name}: {statistics.median(xs):.2f}  ({', '.join(f'{x:.2f}' for x in xs)})")
    return {"pairs": args.pairs, "figures": figures}


def children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (all their threads)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def dry_run_rss(root: Path, days: int) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of a dry run, in a fresh process."""
    end = START + timedelta(days=days)
    cmd = pipe(
        "backfill",
        "--project",
        str(root),
        "--start",
        "2025-01-01",
        "--end",
        f"{end:%Y-%m-%d}",
        "--dry-run",
        "--json",
    )
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        f"subprocess.run({cmd!r}, "
        "check=True, stdout=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--dry-run-models", type=int, default=1000)
    ap.add_argument("--dry-run-only", action="store_true", help="Only the dry-run memory.")
    ap.add_argument("--before", metavar="SRC", help="src/ of the version to compare with")
    ap.add_argument("--pairs", type=int, default=3, help="with --before: rounds of pairs")
    ap.add_argument(
        "--after", metavar="SRC", help="src/ of the version measured (default: the installed one)"
    )
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    tasks = args.days * args.models
    result = {"days": args.days, "models": args.models, "tasks": tasks}
    if args.before:
        result.update(paired(args, tasks))
        (OUT / "result-paired.json").write_text(json.dumps(result, indent=2))
        return
    if args.dry_run_only:
        args.concurrency = []
    else:
        root = generate(OUT / "project", args.models)
        f = floor(args.days, args.models)
        result["floor"] = {"seconds": round(f, 2), "tasks_per_minute": round(tasks / f * 60)}
        print(f"floor: {f:.1f}s, {tasks / f * 60:,.0f} tasks/min", flush=True)
    for c in args.concurrency:
        s = backfill(root, args.days, c)
        result[f"pipe_c{c}"] = {
            "seconds": round(s, 2),
            "tasks_per_minute": round(tasks / s * 60),
            "vs_floor": round(f / s, 2),
        }
        print(
            f"pipe backfill --concurrency {c}: {s:.1f}s, {tasks / s * 60:,.0f} tasks/min, "
            f"{f / s:.2f}x the floor's throughput",
            flush=True,
        )
    if args.dry_run_models:
        big = generate(OUT / "dry_run_project", args.dry_run_models)
        s, rss = dry_run_rss(big, args.days)
        result["dry_run"] = {
            "models": args.dry_run_models,
            "tasks": args.days * args.dry_run_models,
            "seconds": round(s, 2),
            "peak_rss_mib": round(rss),
        }
        print(
            f"dry run of {args.days * args.dry_run_models:,} tasks: {s:.1f}s, "
            f"peak RSS {rss:.0f} MiB",
            flush=True,
        )
    (OUT / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
