"""What one COMMIT per task costs on DuckDB: a 1,000-model plan's own SQL replayed through
one connection, without pipe, four ways (docs/benchmarks.md, issue 14's group commit).

    python bench/bench_run.py --models 1000 --concurrency 1   # makes the project and plan
    python bench/bench_commits.py [--rounds 3] [--project bench/out/run/duckdb-1000-after]

- floor: each model as an autocommit `CREATE TABLE ... AS` (bench_run.py's floor);
- wap: pipe's statements a task, `BEGIN; CREATE TABLE <temp> AS ...` then `ALTER TABLE
  <temp> RENAME ...; INSERT INTO <ledger> ...; COMMIT`;
- wap without the ledger row;
- group N: the same statements, one COMMIT per N tasks.
Prints the median wall and CPU seconds (this process, DuckDB's threads included) of each.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
ENTRY = "x" * 300  # about a ledger row's length


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _setup(path: Path, root: Path, plan: dict) -> duckdb.DuckDBPyConnection:
    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    for schema in sorted({t["table"].split(".")[0] for t in plan["tasks"]}):
        con.execute(f"CREATE SCHEMA {schema}")
    for t in plan["tasks"]:
        if t["kind"] == "seed":
            csv = (root / t["seed_path"]).as_posix()
            con.execute(f"CREATE TABLE {t['table']} AS SELECT * FROM read_csv('{csv}')")
    con.execute("CREATE TABLE _ledger (entry VARCHAR)")
    return con


def _task(con, t: dict, mode: str, i: int, group: int, last: bool) -> None:
    sql = "\n".join(t["sql"])
    temp, name = t["table"] + "__pipe_tmp_x", t["table"].split(".")[1]
    ledger = f"INSERT INTO _ledger VALUES ('{ENTRY}');"
    if mode == "floor":
        con.execute(f"CREATE TABLE {t['table']} AS\n{sql}")
    elif mode in ("wap", "wap without the ledger row"):
        con.execute(f"BEGIN; CREATE TABLE {temp} AS\n{sql}")
        row = ledger if mode == "wap" else ""
        con.execute(f"ALTER TABLE {temp} RENAME TO {name}; {row} COMMIT")
    else:
        if i % group == 0:
            con.execute("BEGIN")
        con.execute(f"CREATE TABLE {temp} AS\n{sql}")
        con.execute(f"ALTER TABLE {temp} RENAME TO {name}; {ledger}")
        if i % group == group - 1 or last:
            con.execute("COMMIT")


def measure(root: Path, plan: dict, mode: str, group: int) -> tuple[float, float]:
    con = _setup(HERE / "out" / "commits.duckdb", root, plan)
    tasks = [t for t in plan["tasks"] if t["kind"] != "seed"]
    c0, t0 = _cpu(), time.perf_counter()
    for i, t in enumerate(tasks):
        _task(con, t, mode, i, group, i == len(tasks) - 1)
    con.close()
    return time.perf_counter() - t0, _cpu() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=HERE / "out/run/duckdb-1000-after")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    plan_file = sorted((args.project / "plans" / "dev").glob("*.json"))[0]
    plan = json.loads(plan_file.read_text())
    ways = [("floor", 0), ("wap", 0), ("wap without the ledger row", 0)]
    ways += [("group", 10), ("group", 50)]
    got: dict[tuple, list] = {w: [] for w in ways}
    for _ in range(args.rounds):
        for w in ways:
            got[w].append(measure(args.project, plan, *w))
    floor_cpu = statistics.median(c for _, c in got[ways[0]])
    for (mode, group), runs in got.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        label = f"{mode} {group}" if group else mode
        print(
            f"{label:28s} wall {wall:6.2f} s  cpu {cpu:6.2f} s = {cpu / floor_cpu:.2f}x", flush=True
        )
    print(f"(load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
