"""Check that sqlcolumns.column_lineage (pipe's walk over sqlglot's scopes) gives sqlglot's
lineage walk's answer (column_lineage_reference) for every model of a project, each model
qualified with the columns its upstream tables have, as `pipe lineage` qualifies it.

    python bench/check_lineage.py [PROJECT] [--models 1000] [--rounds 1]

Without PROJECT, generates a project of --models models (gen_project.py) in bench/out.
Prints JSON: models compared, how many answers differ (exit 1 when any does, with the
first few), and the CPU seconds each way took (in this process, --rounds times each,
alternating).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def jobs(root: Path) -> list[tuple[str, str, str, dict]]:
    """(model, sql, dialect, schema) of every model, as lineage.compute asks sqlglot."""
    from pipe import lineage
    from pipe.compiler import compile_project
    from pipe.loader import load_project

    cp = compile_project(load_project(root, use_cache=False, write_cache=False), None)
    project = lineage.compute(cp)
    schema: dict = {}
    for name, table in project.tables.items():
        if table.known:
            node = cp.nodes[name]
            schema.setdefault(node.schema, {})[node.table] = dict.fromkeys(
                table.columns, lineage.UNKNOWN_TYPE
            )
    names = [n for n in cp.graph.order if cp.nodes[n].kind not in ("seed", "source")]
    sqls, _, _ = lineage._inputs(cp, names, None)
    return [
        (n, sqls[n], cp.target.dialect, lineage._schema_of(schema, cp.nodes[n].upstream))
        for n in names
    ]


def answer(fn, job) -> object:
    from pipe.errors import SqlError

    _, sql, dialect, schema = job
    try:
        return fn(sql, dialect, schema)
    except SqlError as exc:
        return ("SqlError", exc.message)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project", type=Path, nargs="?")
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1, help="timed rounds each way, alternating")
    args = ap.parse_args()
    root = args.project
    if root is None:
        root = HERE / "out" / "check-lineage" / f"p{args.models}"
        root.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(HERE / "gen_project.py"), str(root), "--models", str(args.models)],
            check=True,
            capture_output=True,
        )
    from pipe import sqlcolumns

    todo = jobs(root)
    sides = {"reference": sqlcolumns.column_lineage_reference, "walk": sqlcolumns.column_lineage}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    answers = {}
    for i in range(args.rounds):  # alternating, the order swapped every round
        for name in sides if i % 2 == 0 else reversed(list(sides)):
            began = time.process_time()
            answers[name] = [answer(sides[name], job) for job in todo]
            seconds[name].append(round(time.process_time() - began, 3))
    differ = [
        {"model": job[0], "reference": repr(a), "walk": repr(b)}
        for job, a, b in zip(todo, answers["reference"], answers["walk"], strict=True)
        if a != b
    ]
    print(
        json.dumps(
            {
                "project": str(root),
                "models": len(todo),
                "differ": len(differ),
                "cpu_seconds": seconds,
                "cpu_median": {k: statistics.median(v) for k, v in seconds.items()},
                "load_average_1min": os.getloadavg()[0],
            }
            | ({"first": differ[:5]} if differ else {}),
            indent=2,
        )
    )
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
