"""Check that a generated project compiles and that every task of its plan runs on DuckDB.

    python bench/check_generated.py PROJECT [--interval 2026-06-01] [--pipe PATH]

Compiles the project with `pipe compile --interval L`, then executes the plan file in its
order in an in-memory DuckDB: seeds loaded from their CSV, each model built into its temp
table, its checks run (zero rows = pass), then renamed to its table. An incremental task's
rows outside its interval are counted. This is what the runner will do, without the
write-audit-publish machinery; it exists so the generator's SQL is known to be valid.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("--interval", default="2026-06-01")
    ap.add_argument("--pipe", default=str(Path(sys.executable).with_name("pipe")))
    args = ap.parse_args(argv)
    root = args.project.resolve()
    subprocess.run(
        [args.pipe, "compile", "--project", str(root), "--interval", args.interval],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    plan = json.loads((root / "plans" / "dev" / f"{args.interval}.json").read_text())
    con = duckdb.connect()
    failures: list[str] = []
    empty: list[str] = []
    outside = 0
    check_failures = 0
    t0 = time.perf_counter()
    for task in plan["tasks"]:
        schema = task["table"].split(".", 1)[0]
        con.execute(f"create schema if not exists {schema}")
        if task["kind"] == "seed":
            types = task.get("column_types") or {}
            opts = f", types = {types!r}" if types else ""
            path = (root / task["seed_path"]).as_posix()
            con.execute(
                f"create table {task['table']} as select * from "
                f"read_csv('{path}', header = true{opts})"
            )
            continue
        sql = "\n".join(task["sql"])
        try:
            con.execute(f"create table {task['temp']} as\n{sql}")
        except duckdb.Error as exc:
            failures.append(f"{task['model']}: {str(exc).splitlines()[0]}")
            continue
        for check in task.get("checks", []):
            n = con.execute(f"select count(*) from ({chr(10).join(check['sql'])})").fetchone()[0]
            if n:
                check_failures += 1
                failures.append(f"{task['model']}: check {check['name']} failed ({n} rows)")
        if task.get("time_column"):
            iv = task["interval"]
            outside += con.execute(
                f"select count(*) from {task['temp']} where not ({task['time_column']} >= "
                f"timestamp '{iv['start']}' and {task['time_column']} < timestamp '{iv['end']}')"
            ).fetchone()[0]
        table = task["table"].split(".", 1)[1]
        con.execute(f"alter table {task['temp']} rename to {table}")
        if con.execute(f"select count(*) from {task['table']}").fetchone()[0] == 0:
            empty.append(task["model"])
    models = sum(1 for t in plan["tasks"] if t["kind"] != "seed")
    print(
        json.dumps(
            {
                "tasks": len(plan["tasks"]),
                "models": models,
                "failed": len(failures),
                "check_failures": check_failures,
                "empty_tables": len(empty),
                "rows_outside_interval": outside,
                "seconds": round(time.perf_counter() - t0, 1),
            },
            indent=2,
        )
    )
    for f in failures[:20]:
        print("FAIL", f)
    shutil.rmtree(root / "plans", ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
