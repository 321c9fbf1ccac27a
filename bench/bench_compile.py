"""Compile benchmark: pipe against sqlglot alone, on generated projects, in one run.

    python bench/bench_compile.py [--models 1000,10000] [--repeat 3] [--seed 0]
                                  [--kind full|incremental] [--wait-idle SECONDS]
                                  [--pure-sqlglot DIR] [--serial] [--breakdown N]
                                  [--profile N] [--out bench/out]

Run it with the Python of the venv pipe is installed in (`pipe` is taken from beside
sys.executable). For each project size N it generates bench/out/projects/pN with
bench/gen_project.py, compiles it once untimed (so the OS file cache holds every file),
then, `--repeat` times, interleaved so drift hits all alike:

  sqlglot  a fresh interpreter reads every model file, parses it with sqlglot (dialect
           duckdb) and collects the tables of every scope with traverse_scope, CTE names
           excluded. Jinja models get a plain textual substitution first (ref('x') -> x,
           interval values -> literals), which costs nothing measurable: this is the parse
           cost pipe cannot avoid with the same sqlglot build.
  cold     `pipe compile --interval 2026-06-01` after deleting .pipe/ and plans/.
  warm     the same command again, nothing changed.
  serial   (--serial) cold again, with pipe's worker pool turned off: every model is
           rendered and parsed in the one process, as on a single core.

Every figure is whole-process wall time, interpreter start included, measured by a small
wrapper process; peak memory is the wrapper's getrusage(RUSAGE_CHILDREN).ru_maxrss, i.e.
the peak RSS of that one command (the largest of its processes: a cold compile forks
worker processes, which share the parent's memory pages), and CPU time its ru_utime +
ru_stime, workers included. The median of the repeats is reported. Prints a markdown
table and writes bench/out/compile.json.

--wait-idle S   before each measurement wait up to S seconds until other processes leave
                the cores 90% idle (the machine is shared); the JSON records how busy.
--pure-sqlglot  also time the sqlglot-only script with a pure-Python sqlglot from DIR.
--serial        also time a cold compile without the worker pool.
--breakdown N   time the phases of one cold and one warm compile of N models in process,
                with no profiler (a profiler slows pure-Python loops several times over).
--profile N     one cold compile of N models under cProfile: bench/out/compile-N.prof, the
                hotspots inside src/pipe by cumulative time and the top functions overall
                by own time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_project  # noqa: E402 - found through the sys.path entry above

INTERVAL = "2026-06-01"
PYTHON = sys.executable
PIPE = str(Path(sys.executable).with_name("pipe"))

# Runs one command, reports its wall time and peak RSS (KiB on Linux) as JSON on stdout.
WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rc": p.returncode,
                  "stderr": p.stderr.decode()[-2000:], "maxrss_kib": ru.ru_maxrss}))
"""

# The sqlglot-only baseline: parse every model and collect the tables it reads.
SQLGLOT_ONLY = r"""
import pathlib, re, sys
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

JINJA = re.compile(r"\{\{\s*(.*?)\s*\}\}")
VALUES = {"interval_start": "TIMESTAMP '2026-06-01 00:00:00'",
          "interval_end": "TIMESTAMP '2026-06-02 00:00:00'", "ds": "DATE '2026-06-01'"}

def unjinja(m):
    expr = m.group(1)
    if expr in VALUES:
        return VALUES[expr]
    call = re.fullmatch(r"(\w+)\('([^']*)'\)", expr)
    if call and call.group(1) == "ref":
        return call.group(2)
    if call and call.group(1) == "var":
        return "0"
    if call and call.group(1) == "cents_to_dollars":
        return f"round({call.group(2)} / 100.0, 2)"
    raise SystemExit(f"unexpected Jinja: {expr}")

root = pathlib.Path(sys.argv[1])
edges = 0
for path in sorted((root / "models").rglob("*.sql")):
    text = path.read_text(encoding="utf-8")
    if "{" in text:
        text = JINJA.sub(unjinja, text)
    tree = sqlglot.parse_one(text, read="duckdb")
    tables = set()
    for scope in traverse_scope(tree):
        ctes = {name.lower() for name in scope.cte_sources}
        for table in scope.tables:
            if not isinstance(table.this, exp.Identifier) or not table.name:
                continue
            if not table.db and table.name.lower() in ctes:
                continue
            tables.add(".".join(p for p in (table.catalog, table.db, table.name) if p))
    edges += len(tables)
print(edges)
"""

PROFILE = r"""
import cProfile, sys
from pipe.cli import main
prof = cProfile.Profile()
prof.enable()
try:
    main(["compile", "--project", sys.argv[1], "--interval", sys.argv[2]],
         standalone_mode=False)
finally:
    prof.disable()
    prof.dump_stats(sys.argv[3])
"""

# A cold compile with pipe's worker pool turned off (every model parsed in process).
SERIAL = r"""
import sys
import pipe.compiler
try:  # where the worker pool's threshold lives after issue 9
    import pipe.sqlprefetch as _where
except ImportError:
    try:
        import pipe.modelsql as _where
    except ImportError:
        _where = pipe.compiler
_where.PARALLEL_MIN = float("inf")
from pipe.cli import main
main(sys.argv[1:], prog_name="pipe")
"""

# Unprofiled breakdown of one compile, in process: the phases of `pipe compile` timed with
# perf_counter, and chosen functions wrapped with time accumulators (under a profiler
# CPython 3.11 runs every instruction on its unspecialised tracing path, which makes
# pure-Python loops look several times more expensive than they are).
# Functions that no longer exist are skipped: pipe's internals may move. Functions that
# run in pipe's worker processes (parsing, in a cold compile) are not counted here: the
# phase that waits for them is, and "worker CPU" is their CPU time.
BREAKDOWN = r"""
import collections, functools, json, resource, shutil, sys, time
t0 = time.perf_counter()
from pathlib import Path
from pipe import checks, compiler, intervals, loader, templating, yamlio
from pipe import plan as planmod, sql as sqlmod
try:  # the layout after issue 9; before it plan.py held all three
    from pipe import planfile, planner, workspace
except ImportError:
    planfile = planner = workspace = planmod
try:
    from pipe import modelsql
except ImportError:
    modelsql = compiler
try:
    from pipe import sqlprefetch
except ImportError:
    sqlprefetch = None
t_import = time.perf_counter() - t0
acc, calls = collections.defaultdict(float), collections.Counter()

def wrap(owner, name, label):
    f = getattr(owner, name, None)
    if f is None:
        return
    @functools.wraps(f)
    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            acc[label] += time.perf_counter() - t
            calls[label] += 1
    setattr(owner, name, timed)

for owner, name, label in [
        (sqlmod, "parse_select", "sql.parse_select (sqlglot parse)"),
        (sqlmod, "table_refs", "sql.table_refs (traverse_scope)"),
        (templating.Renderer, "render", "Renderer.render (Jinja)"),
        (getattr(compiler, "SqlBuilder", None) or modelsql.SqlBuilder, "prefetch",
         "SqlBuilder.prefetch (worker pool: render, parse)"),
        (sqlprefetch, "prefetch", "sqlprefetch.prefetch (worker pool: render, parse)"),
        (compiler.CompiledProject, "model_sql", "CompiledProject.model_sql (re-render)"),
        (getattr(modelsql, "ModelSql", None), "sql", "ModelSql.sql (a model's SQL, one interval)"),
        (planmod, "_sidecar", "plan._sidecar"),
        (planner, "_checks_of", "planner._checks_of"),
        (checks, "check_sql", "checks.check_sql"),
        (yamlio, "load", "yamlio.load (YAML)"),
        (compiler, "_hash", "compiler._hash (fingerprints)"),
        (planfile, "to_json", "plan.to_json")]:
    wrap(owner, name, label)
root, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "cold":
    shutil.rmtree(root / ".pipe", ignore_errors=True)
    shutil.rmtree(root / "plans", ignore_errors=True)
phases = {"import pipe": t_import}
def phase(label, fn):
    t = time.perf_counter()
    out = fn()
    phases[label] = time.perf_counter() - t
    return out
def load():  # as `pipe compile` loads: through the file cache where pipe has one
    try:
        return loader.load_project(root, use_cache=True, write_cache=True)
    except TypeError:
        return loader.load_project(root)
raw = phase("load_project", load)
cp = phase("compile_project", lambda: compiler.compile_project(raw))
iv = intervals.parse_label(sys.argv[3])
known = None
if hasattr(workspace, "known_unchanged"):
    known = phase("plan up to date (known_unchanged)", lambda: workspace.known_unchanged(cp, iv))
if known is None:
    plan = phase("build_plan", lambda: planner.build_plan(cp, iv))
    write = getattr(workspace, "write_recorded", None)
    phase("plan.write (JSON)", (lambda: write(cp, plan)) if write else
          (lambda: planfile.write(root, plan)))
phase("save caches", cp.save_cache)
phases["total"] = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
phases["CPU, this process"] = me.ru_utime + me.ru_stime
phases["CPU, worker processes"] = kids.ru_utime + kids.ru_stime
print(json.dumps({"phases": phases, "functions": {k: [acc[k], calls[k]] for k in acc}}))
"""


def cpu_busy(seconds: float = 0.5) -> float:
    """Share of all cores busy over `seconds` (from /proc/stat; 0.0 where unavailable)."""

    def sample():
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        values = [int(v) for v in fields]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    a = sample()
    time.sleep(seconds)
    b = sample()
    if not a or not b or b[0] == a[0]:
        return 0.0
    return 1 - (b[1] - a[1]) / (b[0] - a[0])


WAIT_IDLE = {"busy": 1.0, "timeout": 0.0}  # set from --wait-idle


def wait_idle() -> float:
    """Wait (up to the timeout) until other processes leave the cores idle; return busy."""
    deadline = time.monotonic() + WAIT_IDLE["timeout"]
    busy = cpu_busy()
    while busy > WAIT_IDLE["busy"] and time.monotonic() < deadline:
        time.sleep(2)
        busy = cpu_busy()
    return busy


def measure(cmd: list[str], env: dict | None = None) -> dict:
    busy = wait_idle()
    load = os.getloadavg()[0]
    out = subprocess.run(
        [PYTHON, "-c", WRAPPER, *cmd], check=True, capture_output=True, text=True, env=env
    ).stdout
    result = json.loads(out)
    if result["rc"] != 0:
        raise SystemExit(f"command failed ({result['rc']}): {' '.join(cmd)}\n{result['stderr']}")
    result["load"] = load
    result["busy_before"] = busy
    return result


def clean(project: Path) -> None:
    shutil.rmtree(project / ".pipe", ignore_errors=True)
    shutil.rmtree(project / "plans", ignore_errors=True)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    probe = subprocess.run(
        [
            PYTHON,
            "-c",
            (
                "import sys, sqlglot, sqlglot.parser as p; "
                "print(sqlglot.__version__); print(p.__file__.endswith('.so')); "
                "print(sys.version.split()[0])"
            ),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    git = subprocess.run(
        ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": probe[2],
        "git": git or "unknown",
        "sqlglot": probe[0],
        "sqlglot_build": "mypyc (sqlglot[c])" if probe[1] == "True" else "pure Python",
        "platform": platform.platform(),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def pure_env(path: Path | None) -> dict | None:
    """The environment that makes the sqlglot-only script import a pure-Python sqlglot."""
    if path is None:
        return None
    return {**os.environ, "PYTHONPATH": str(path.resolve())}


def bench_size(
    n: int,
    repeat: int,
    seed: int,
    kind: str,
    out: Path,
    pure: Path | None = None,
    serial: bool = False,
) -> dict:
    project = out / "projects" / f"p{n}" if kind == "full" else out / "projects" / f"p{n}-{kind}"
    files, summary = gen_project.generate(n, seed, kind)
    project.mkdir(parents=True, exist_ok=True)
    gen_project.write_project(project, files, force=True)
    pipe_cmd = [PIPE, "compile", "--project", str(project), "--interval", INTERVAL]
    runs: dict[str, list[dict]] = {"sqlglot": [], "cold": [], "warm": []}
    if pure:
        runs["sqlglot_pure"] = []
    if serial:
        runs["serial"] = []
    # one untimed compile first: the OS file cache then holds every file for all three
    clean(project)
    measure(pipe_cmd)
    for i in range(repeat):
        runs["sqlglot"].append(measure([PYTHON, "-c", SQLGLOT_ONLY, str(project)]))
        if pure:
            runs["sqlglot_pure"].append(
                measure([PYTHON, "-c", SQLGLOT_ONLY, str(project)], env=pure_env(pure))
            )
        clean(project)
        runs["cold"].append(measure(pipe_cmd))
        runs["warm"].append(measure(pipe_cmd))
        if serial:
            clean(project)
            runs["serial"].append(measure([PYTHON, "-c", SERIAL, *pipe_cmd[1:]]))
        print(
            f"  N={n} run {i + 1}/{repeat}: "
            + ", ".join(f"{k} {v[-1]['wall']:.2f}s" for k, v in runs.items())
            + f" (load {os.getloadavg()[0]:.1f})",
            file=sys.stderr,
        )
    plan = project / "plans" / "dev" / f"{INTERVAL}.json"
    med = {k: statistics.median(r["wall"] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in runs.items()}
    rss = {k: max(r["maxrss_kib"] for r in v) / 1024 for k, v in runs.items()}
    return {
        "models": n,
        "project": summary,
        "seconds": {k: round(v, 3) for k, v in med.items()},
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "all_seconds": {k: [round(r["wall"], 3) for r in v] for k, v in runs.items()},
        "load_average_1m": {k: [round(r["load"], 2) for r in v] for k, v in runs.items()},
        "cpu_busy_before": {k: [round(r["busy_before"], 2) for r in v] for k, v in runs.items()},
        "peak_rss_mib": {k: round(v, 1) for k, v in rss.items()},
        "cold_over_sqlglot": round(med["cold"] / med["sqlglot"], 2),
        "cold_over_sqlglot_cpu": round(cpu["cold"] / cpu["sqlglot"], 2),
        "warm_over_sqlglot": round(med["warm"] / med["sqlglot"], 2),
        "plan_bytes": plan.stat().st_size,
        "parse_cache_bytes": sum(
            p.stat().st_size for p in (project / ".pipe").rglob("*") if p.is_file()
        ),
    }


def table(results: list[dict]) -> str:
    pure = all("sqlglot_pure" in r["seconds"] for r in results)
    serial = all("serial" in r["seconds"] for r in results)
    rows = [
        (
            "| models | sqlglot only | pipe cold | pipe warm | cold / sqlglot | "
            "cold / sqlglot (CPU) | peak RSS cold |"
            + (" cold, no pool | no pool / sqlglot |" if serial else "")
            + (" sqlglot only, pure Python |" if pure else "")
        ),
        "|---:|---:|---:|---:|---:|---:|---:|"
        + ("---:|---:|" if serial else "")
        + ("---:|" if pure else ""),
    ]
    for r in results:
        s = r["seconds"]
        rows.append(
            f"| {r['models']:,} | {s['sqlglot']:.2f} s | {s['cold']:.2f} s | "
            f"{s['warm']:.2f} s | {r['cold_over_sqlglot']:.2f}x | "
            f"{r['cold_over_sqlglot_cpu']:.2f}x | "
            f"{r['peak_rss_mib']['cold']:.0f} MiB |"
            + (f" {s['serial']:.2f} s | {s['serial'] / s['sqlglot']:.2f}x |" if serial else "")
            + (f" {s['sqlglot_pure']:.2f} s |" if pure else "")
        )
    return "\n".join(rows)


def breakdown(n: int, seed: int, out: Path) -> tuple[dict, str]:
    """Unprofiled phase and function times of one cold and one warm compile of pN."""
    project = out / "projects" / f"p{n}"
    if not (project / "pipe.yml").is_file():
        files, _ = gen_project.generate(n, seed, "full")
        gen_project.write_project(project, files, force=True)
    found = {}
    for mode in ("cold", "warm"):
        wait_idle()
        text = subprocess.run(
            [PYTHON, "-c", BREAKDOWN, str(project), mode, INTERVAL],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        found[mode] = json.loads(text.strip().splitlines()[-1])
    lines = [
        f"Unprofiled breakdown, {n:,} models (in process, interpreter start excluded):",
        "",
        "| phase | cold | warm |",
        "|---|---:|---:|",
    ]
    for key in found["cold"]["phases"]:
        lines.append(
            f"| {key} | {found['cold']['phases'][key]:.2f} s | "
            f"{found['warm']['phases'].get(key, 0):.2f} s |"
        )
    lines += ["", "| function (inclusive) | calls | cold | warm |", "|---|---:|---:|---:|"]
    funcs = found["cold"]["functions"]
    for key, (sec, count) in sorted(funcs.items(), key=lambda kv: -kv[1][0]):
        warm = found["warm"]["functions"].get(key, [0, 0])[0]
        lines.append(f"| {key} | {count:,} | {sec:.2f} s | {warm:.2f} s |")
    return found, "\n".join(lines)


def targets(results: list[dict]) -> list[str]:
    out = []
    for r in results:
        out.append(
            f"N={r['models']}: cold <= 1.5x sqlglot: "
            f"{'yes' if r['cold_over_sqlglot'] <= 1.5 else 'NO'} "
            f"({r['cold_over_sqlglot']}x)"
        )
        if r["models"] == 10000:
            s, rss = r["seconds"], r["peak_rss_mib"]["cold"]
            out.append(
                f"N=10000: cold < 5 s: {'yes' if s['cold'] < 5 else 'NO'} ({s['cold']:.2f} s)"
            )
            out.append(
                f"N=10000: warm < 1 s: {'yes' if s['warm'] < 1 else 'NO'} ({s['warm']:.2f} s)"
            )
            out.append(
                f"N=10000: peak RSS < 1 GiB: {'yes' if rss < 1024 else 'NO'} ({rss:.0f} MiB)"
            )
    return out


def profile(n: int, seed: int, out: Path, top: int = 25) -> str:
    import pstats

    project = out / "projects" / f"p{n}"
    if not (project / "pipe.yml").is_file():
        files, _ = gen_project.generate(n, seed, "full")
        gen_project.write_project(project, files, force=True)
    clean(project)
    prof_path = out / f"compile-{n}.prof"
    subprocess.run(
        [PYTHON, "-c", PROFILE, str(project), INTERVAL, str(prof_path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stats = pstats.Stats(str(prof_path))
    total = stats.total_tt
    lines = [
        f"cProfile of a cold compile, {n:,} models: {total:.2f} s under the profiler",
        "",
        "In src/pipe, by cumulative time:",
        "",
        "| cumulative | share | calls | function |",
        "|---:|---:|---:|---|",
    ]
    src = str((HERE.parent / "src" / "pipe").resolve())
    rows = []
    for (file, line, func), (_cc, nc, _tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        if file.startswith(src):
            rows.append((ct, nc, f"{Path(file).name}:{line} {func}"))
    for ct, nc, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"| {ct:.2f} s | {100 * ct / total:.0f}% | {nc:,} | {name} |")
    lines += [
        "",
        "Everywhere, by own time:",
        "",
        "| own | share | calls | function |",
        "|---:|---:|---:|---|",
    ]
    own = sorted(
        (
            (tt, nc, f"{Path(file).name}:{line} {func}")
            for (file, line, func), (cc, nc, tt, ct, _) in stats.stats.items()
        ),
        reverse=True,
    )  # type: ignore[attr-defined]
    for tt, nc, name in own[:top]:
        lines.append(f"| {tt:.2f} s | {100 * tt / total:.0f}% | {nc:,} | {name} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models", default="1000,10000", help="comma-separated project sizes (default 1000,10000)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed")
    ap.add_argument(
        "--kind",
        choices=("full", "incremental"),
        default="full",
        help="generator --kind (default full)",
    )
    ap.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="also profile one cold compile of N models with cProfile",
    )
    ap.add_argument(
        "--breakdown",
        type=int,
        metavar="N",
        help="also time the phases of one cold and one warm compile of N models "
        "in process, without a profiler",
    )
    ap.add_argument(
        "--pure-sqlglot",
        type=Path,
        metavar="DIR",
        help="also time the sqlglot-only script with a pure-Python sqlglot "
        "installed in DIR (pip install --no-deps --target DIR sqlglot==VERSION)",
    )
    ap.add_argument(
        "--serial",
        action="store_true",
        help="also time a cold compile with pipe's worker pool turned off",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement, wait up to SECONDS until other processes "
        "use under 10%% of the cores (a shared machine); default: don't wait",
    )
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args(argv)
    WAIT_IDLE.update(busy=0.10, timeout=args.wait_idle)
    if not Path(PIPE).exists():
        raise SystemExit(f"no pipe beside {PYTHON}: run this with the venv's python")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    results = []
    started = time.perf_counter()
    for n in (int(x) for x in args.models.split(",") if x):
        print(f"N={n}: generating and measuring", file=sys.stderr)
        results.append(
            bench_size(n, args.repeat, args.seed, args.kind, out, args.pure_sqlglot, args.serial)
        )
    report = {
        "machine": info,
        "interval": INTERVAL,
        "repeat": args.repeat,
        "wait_idle": args.wait_idle,
        "seed": args.seed,
        "kind": args.kind,
        "results": results,
        "bench_seconds": round(time.perf_counter() - started, 1),
    }
    print(
        f"\n{info['cpu']}, {info['nproc']} cores, Python {info['python']}, sqlglot "
        f"{info['sqlglot']} ({info['sqlglot_build']}), pipe {info['git']}, "
        f"{info['date_utc']}, median of {args.repeat}, --kind {args.kind}\n"
    )
    print(table(results))
    print()
    for line in targets(results):
        print(line)
    if args.breakdown:
        report["breakdown"], text = breakdown(args.breakdown, args.seed, out)
        print()
        print(text)
    if args.profile:
        text = profile(args.profile, args.seed, out)
        report["profile"] = text
        print()
        print(text)
    (out / "compile.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out / 'compile.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
