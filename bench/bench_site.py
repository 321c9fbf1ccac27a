"""`pipe docs` speed: building the site, and the DAG page's first render in headless chromium.

    python bench/bench_site.py [--models 1000] [--run] [--repeat 5]
    python bench/bench_site.py --before OTHER/src [--after THIS/src] [--pairs 5] [--run]

Generates a synthetic project (gen_project.py), compiles one interval's plan, optionally
runs it (so the site has a run with 1,000 tasks and a published row per model), then:

- compile: `pipe list --json` after the compile (warm parse cache), the part of `pipe docs`
  that is compile, timed as a subprocess (best of --repeat);
- pipe docs: the whole command as a subprocess, cold (the site's and lineage's caches in
  .pipe/cache removed first, so every model's SQL is read again for its columns and their
  lineage), cold with --no-lineage, and warm; minus compile, what the site costs;
- build: `site.build` in-process (the first call pays for importing and warming sqlglot);
- first render: chromium opens index.html from file://; the time from navigation start to
  the first animation frame after every DAG node is in the page (median of --repeat
  fresh pages), with chromium's own first-contentful-paint beside it.

With --before, only first builds (`pipe docs` beyond compile, cold, with lineage) of the
pipe in OTHER/src and of this one (or of the one in --after's src/, a frozen copy), in
paired alternating runs (a loaded machine makes a lone figure meaningless), with the CPU
seconds each used (its workers included).

Needs chromium (apt-get install chromium) and playwright (the test extra). Prints JSON;
figures worth keeping go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIPE = str(Path(sys.executable).with_name("pipe"))


def sh(args: list[str], cwd: Path, env: dict | None = None) -> float:
    began = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - began


def cpu_sh(args: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and the processes it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = sh(args, cwd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _forget(root: Path) -> None:
    """Remove the site's and lineage's caches: the next `pipe docs` is a first build."""
    for cached in (root / ".pipe" / "cache").glob("*"):
        if cached.name.startswith("site-") or cached.name == "lineage.pickle":
            cached.unlink()


def _generate(root: Path, models: int, env: dict | None = None, run: bool = False) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(HERE / "gen_project.py"), str(root), "--models", str(models)],
        check=True,
        capture_output=True,
    )
    sh([PIPE, "compile", "--interval", "2026-06-01"], root, env)
    if run:
        sh([PIPE, "run", "--interval", "2026-06-01"], root, env)


def paired(args) -> None:
    """--before SRC: a first `pipe docs` with the pipe in SRC (a checkout's src/) and with
    this one, alternating (the order swapped every pair), each in its own copy of the
    project (its compile cache is warm for its own pipe)."""
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    sides = {
        "before": {**plain, "PYTHONPATH": str(args.before.resolve())},
        "after": {**plain, "PYTHONPATH": str(args.after.resolve())} if args.after else plain,
    }
    roots = {side: args.out / f"p{args.models}-{side}" for side in sides}
    for side, env in sides.items():
        _generate(roots[side], args.models, env, args.run)
    rows: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
    for i in range(args.pairs):
        for side in sides if i % 2 == 0 else reversed(list(sides)):
            env, root = sides[side], roots[side]
            compile_s = min(sh([PIPE, "list", "--json"], root, env) for _ in range(2))
            _forget(root)
            wall, cpu = cpu_sh([PIPE, "docs"], root, env)
            rows[side].append((round(wall - compile_s, 3), round(cpu, 3), round(compile_s, 3)))
            print(side, rows[side][-1], "load", os.getloadavg()[0], file=sys.stderr, flush=True)
    out: dict = {"models": args.models, "pairs": args.pairs}
    for side, got in rows.items():
        out[side] = {
            "beyond_compile_median": round(statistics.median(r[0] for r in got), 3),
            "beyond_compile_range": [min(r[0] for r in got), max(r[0] for r in got)],
            "cpu_seconds_median": round(statistics.median(r[1] for r in got), 3),
            "runs": got,
        }
    out["after_minus_before_per_pair"] = [
        round(a[0] - b[0], 3) for a, b in zip(rows["after"], rows["before"], strict=True)
    ]
    out["load_average_1min"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--run", action="store_true", help="run the interval before building")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "site")
    ap.add_argument("--before", type=Path, help="src/ of another pipe: compare first builds")
    ap.add_argument("--after", type=Path, help="with --before: src/ to compare, not this one")
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    if args.before:
        paired(args)
        return

    root = args.out / f"p{args.models}"
    _generate(root, args.models)
    ran = sh([PIPE, "run", "--interval", "2026-06-01"], root) if args.run else None
    compile_s = min(sh([PIPE, "list", "--json"], root) for _ in range(args.repeat))
    cold_s = []
    for _ in range(args.repeat):  # no site cache: every model's SQL parsed again
        _forget(root)
        cold_s.append(sh([PIPE, "docs"], root))
    plain_s = []
    for _ in range(args.repeat):  # the same, without lineage
        for cached in (root / ".pipe" / "cache").glob("site-*.json"):
            cached.unlink()
        plain_s.append(sh([PIPE, "docs", "--no-lineage"], root))
    docs_s = [sh([PIPE, "docs"], root) for _ in range(args.repeat)]

    from pipe import site
    from pipe.compiler import compile_project
    from pipe.loader import load_project

    cp = compile_project(
        load_project(root, use_cache=True, write_cache=False), None, write_cache=False
    )
    out = root / ".pipe" / "site"
    builds = [site.build(cp, out).seconds for _ in range(args.repeat)]
    size = (out / "data.js").stat().st_size
    nodes = len(cp.graph.order)

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    renders, paints = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        for _ in range(args.repeat):
            page = browser.new_page(viewport={"width": 1366, "height": 800})
            page.goto((out / "index.html").as_uri(), wait_until="commit")
            page.wait_for_function(f"document.querySelectorAll('#dag .node').length === {nodes}")
            renders.append(
                page.evaluate("new Promise(r => requestAnimationFrame(() => r(performance.now())))")
                / 1000
            )
            paints.append(
                page.evaluate(
                    "(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
                )
                / 1000
            )
            page.close()
        version = browser.version
        browser.close()
    print(
        json.dumps(
            {
                "models": args.models,
                "nodes": nodes,
                "run_seconds": ran,
                "compile_seconds_warm": round(compile_s, 3),
                "load_average_1min": os.getloadavg()[0],
                "pipe_docs_cold_seconds_median": round(statistics.median(cold_s), 3),
                "pipe_docs_cold_beyond_compile_median": round(
                    statistics.median(cold_s) - compile_s, 3
                ),
                "pipe_docs_cold_no_lineage_beyond_compile_median": round(
                    statistics.median(plain_s) - compile_s, 3
                ),
                "pipe_docs_seconds_median": round(statistics.median(docs_s), 3),
                "pipe_docs_beyond_compile_median": round(statistics.median(docs_s) - compile_s, 3),
                "build_seconds_first_in_process": round(builds[0], 3),
                "build_seconds_best": round(min(builds), 3),
                "build_seconds_median": round(statistics.median(builds), 3),
                "data_js_bytes": size,
                "chromium": version,
                "dag_first_render_seconds_median": round(statistics.median(renders), 3),
                "dag_first_render_seconds_max": round(max(renders), 3),
                "first_contentful_paint_seconds_median": round(statistics.median(paints), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
