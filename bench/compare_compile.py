"""`pipe compile` of two or more versions of pipe, in paired alternating runs (CPU time).

    python bench/compare_compile.py --before dabf0ea=/tmp/dabf0ea/src
                                    [--before main=/tmp/main/src] [--after SRC]
                                    [--models 1000] [--pairs 9] [--mode cold|warm|interval]

For a busy, shared machine, where one version's median against another's, taken minutes
apart, says little. Each version is run from its own `src/` folder on PYTHONPATH (make
one with `git archive REV src | tar -x -C /tmp/REV` and `python -m compileall -q`
it, with PYTHONDONTWRITEBYTECODE unset), on its own copy of the generated project (their
caches differ). After one untimed run of each version (and for `warm` a second one), a
round runs every version once, the order reversed every other round, so drift hits all
alike. `--after` defaults to the `src/` beside this script.

Modes: `cold` is plain `pipe compile` (no --interval) after deleting .pipe/ and plans/;
`interval` the same with `--interval 2026-06-01`; `warm` plain `pipe compile` again,
nothing changed. CPU time is user + system of the command and its worker processes
(getrusage of the wrapper's children). Prints each round, then, for the last version
against each other one, the median and range of the per-round CPU ratios and the median
wall ratio; writes bench/out/compare-<mode>-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_project  # noqa: E402 - found through the sys.path entry above
from bench_compile import INTERVAL, WRAPPER, clean, machine  # noqa: E402

CLI = "import sys; from pipe.cli import main; main(sys.argv[1:], prog_name='pipe')"


def run(src: str, project: Path, mode: str) -> dict:
    if mode != "warm":
        clean(project)
    env = {**os.environ, "PYTHONPATH": src}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [sys.executable, "-c", CLI, "compile", "--project", str(project)]
    if mode == "interval":
        cmd += ["--interval", INTERVAL]
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, *cmd], check=True, capture_output=True, text=True, env=env
    ).stdout
    result = json.loads(out)
    if result["rc"] != 0:
        raise SystemExit(f"pipe compile failed ({src}): {result['stderr']}")
    result["load"] = os.getloadavg()[0]
    return result


def projects(n: int, seed: int, names: list[str], out: Path) -> dict[str, Path]:
    """One copy of the generated project of n models per version."""
    files, _ = gen_project.generate(n, seed, "full")
    found = {}
    for name in names:
        project = out / "projects" / f"compare-{name}-p{n}"
        project.mkdir(parents=True, exist_ok=True)
        gen_project.write_project(project, files, force=True)
        found[name] = project
    return found


def ratios(runs: dict[str, list[dict]], last: str, other: str) -> dict:
    cpu = [a["cpu"] / b["cpu"] for a, b in zip(runs[last], runs[other], strict=True)]
    wall = [a["wall"] / b["wall"] for a, b in zip(runs[last], runs[other], strict=True)]
    return {
        "cpu_median": round(statistics.median(cpu), 3),
        "cpu_min": round(min(cpu), 3),
        "cpu_max": round(max(cpu), 3),
        "wall_median": round(statistics.median(wall), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", action="append", required=True, metavar="NAME=SRC")
    ap.add_argument("--after", default=str(HERE.parent / "src"), metavar="SRC")
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=9, help="rounds (default 9)")
    ap.add_argument("--mode", choices=("cold", "warm", "interval"), default="cold")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args(argv)
    versions = dict(b.split("=", 1) for b in args.before)
    versions["after"] = args.after
    versions = {k: str(Path(v).resolve()) for k, v in versions.items()}
    names = list(versions)
    out = args.out.resolve()
    where = projects(args.models, args.seed, names, out)
    for name in names:  # untimed: the OS file cache, and for warm the caches
        for _ in range(2 if args.mode == "warm" else 1):
            run(versions[name], where[name], args.mode)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for i in range(args.pairs):
        for name in names if i % 2 == 0 else names[::-1]:
            runs[name].append(run(versions[name], where[name], args.mode))
        cpus = " ".join(f"{name} {runs[name][-1]['cpu']:.2f} s" for name in names)
        print(f"round {i + 1}: CPU {cpus} (load {os.getloadavg()[0]:.1f})", flush=True)
    summary = {other: ratios(runs, "after", other) for other in names[:-1]}
    for other, r in summary.items():
        print(
            f"after / {other}, CPU: median {r['cpu_median']:.3f} "
            f"({r['cpu_min']:.3f}-{r['cpu_max']:.3f}), wall median {r['wall_median']:.3f}"
        )
    for name in names:
        cpu = statistics.median(r["cpu"] for r in runs[name])
        rss = max(r["maxrss_kib"] for r in runs[name]) / 1024
        print(f"{name}: CPU median {cpu:.2f} s, peak RSS {rss:.1f} MiB")
    report = {
        "machine": machine(),
        "mode": args.mode,
        "models": args.models,
        "versions": versions,
        "ratios": summary,
        "runs": runs,
    }
    path = out / f"compare-{args.mode}-{args.models}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
