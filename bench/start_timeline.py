"""A timeline of `pipe run`'s start, from process start to the first task.

    python bench/start_timeline.py PROJECT [--runs 5] [--before SRC] [-- extra pipe args]

Spawns `python -c <harness> run --project PROJECT --interval 2026-06-01 --force --select
raw.customers` (the one-seed run of `bench_run.py --first-task`; the project's plan must be
compiled and published already: run `bench_run.py --first-task` once first). The harness
stamps, with wall time since the parent spawned it and the process's CPU time (all
threads):

- the interpreter ready (site, the editable install's finder),
- the first import of each of pipe's modules and of the big outside ones (click, sqlite3,
  _duckdb), by the thread that imported it,
- the entry and exit of the functions named in WATCH (wrapped when their module is
  imported, so a renamed one is reported missing, not silently skipped),
- the first task handed to a worker (the scheduler's `_submit`).

Prints the run with the smallest time to its first task (and the medians), one line a
stamp. Not a test; a wrapper's own cost (about 1 ms) is included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LABEL = "2026-06-01"

# module -> functions (qualified names) whose entry and exit are stamped, when present
WATCH = {
    "pipe.cli": ["main", "fast_run"],
    "pipe.runview": ["recorded", "Found.plan"],
    "pipe.commands.running": ["run", "_RunSource.of", "_RunSource.recorded_plan"],
    "pipe.runner": ["run_tasks", "_Session.run", "_Session._execute"],
    "pipe.state": [
        "StateStore.__init__",
        "StateStore.recover",
        "StateStore.published_entries",
        "StateStore.reconcile",
        "StateStore.start_run",
    ],
    "pipe.adapters.duckdb": [
        "DuckDBAdapter.__init__",
        "DuckDBAdapter.relations",
        "DuckDBAdapter.close",
    ],
    "pipe.adapters.ledgertext": ["TextLedger.read_ledger"],
    "pipe.scheduler": ["Scheduler.run", "Scheduler._submit"],
    "pipe.decide": ["decide"],
    "pipe.runearly": ["start", "take", "Early._open", "Early.close"],
    "pipe.runstart": [
        "Opening.__init__",
        "Opening.adapter",
        "Opening._open",
        "prepare",
        "_FromEarly.adapter",
        "Opening.of",
    ],
}

HARNESS = r"""
import sys, time, os, threading
_T0 = float(os.environ["PIPE_T0"]); _log = []
def _stamp(what):
    _log.append((time.time() - _T0, time.process_time(), threading.current_thread().name, what,
                 time.thread_time()))
_stamp("interpreter ready")
_WATCH = __WATCH__
import importlib.abc, importlib.machinery
def _wrap(mod):
    for qual in _WATCH.get(mod.__name__, ()):
        owner, name = mod, qual
        if "." in qual:
            cls, name = qual.split(".")
            owner = getattr(mod, cls, None)
        fn = getattr(owner, name, None) if owner is not None else None
        if fn is None:
            continue
        if hasattr(fn, "callback") and callable(fn.callback):  # a click command
            owner, name, fn = fn, "callback", fn.callback
        elif not callable(fn) or isinstance(fn, type):
            continue
        def wrapped(*a, __fn=fn, __q=mod.__name__ + ":" + qual, **k):
            _stamp("> " + __q)
            try:
                return __fn(*a, **k)
            finally:
                _stamp("< " + __q)
        if isinstance(owner, type) and isinstance(owner.__dict__.get(name), classmethod):
            def wrapped(cls, *a, __fn=fn.__func__, __q=mod.__name__ + ":" + qual, **k):
                _stamp("> " + __q)
                try:
                    return __fn(cls, *a, **k)
                finally:
                    _stamp("< " + __q)
            wrapped = classmethod(wrapped)
        setattr(owner, name, wrapped)
class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if not (name.startswith("pipe") or name in ("click", "sqlite3", "_duckdb", "json",
                                                    "dataclasses", "pickle", "hashlib")):
            return None
        for f in sys.meta_path:
            if f is self or not hasattr(f, "find_spec"):
                continue
            spec = f.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module") or spec.submodule_search_locations:
            return spec  # a package keeps its loader (its resources are read through it)
        class _L(importlib.abc.Loader):
            def create_module(self, spec, __l=loader):
                return __l.create_module(spec)
            def exec_module(self, module, __l=loader, __n=name):
                _stamp("import " + __n)
                __l.exec_module(module)
                _stamp("imported " + __n)
                _wrap(module)
        spec.loader = _L()
        return spec
sys.meta_path.insert(0, _Finder())
import atexit, json
atexit.register(lambda: open(os.environ["PIPE_TIMELINE"], "w").write(json.dumps(_log)))
sys.argv = ["pipe", *sys.argv[1:]]
from pipe.cli import main
main()
"""


def once(project: Path, src: str | None, extra: list[str]) -> list:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env["PIPE_TIMELINE"] = out
    code = HARNESS.replace("__WATCH__", repr(WATCH))
    args = ["run", "--project", str(project), "--interval", LABEL, "--force"]
    args += ["--select", "raw.customers", *extra]
    env["PIPE_T0"] = repr(time.time())
    subprocess.run(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.DEVNULL, check=True
    )
    log = json.loads(Path(out).read_text())
    os.unlink(out)
    return log


def first_task(log: list) -> float:
    return next(x[0] for x in log if x[3] == "> pipe.scheduler:Scheduler._submit")


def show(log: list) -> None:
    pipe_only = [
        x
        for x in log
        if not x[3].startswith(("import ", "imported "))
        or "pipe" in x[3]
        or x[3].split()[1] in ("click", "sqlite3", "_duckdb")
    ]
    last = 0.0
    for t, cpu, thread, what, thread_cpu in pipe_only:
        if t > first_task(log) + 0.0005:
            break
        print(
            f"{t * 1000:7.1f} ms  (+{(t - last) * 1000:5.1f})  cpu {cpu * 1000:6.1f}  "
            f"thread cpu {thread_cpu * 1000:6.1f}  {thread[:12]:12s} {what}"
        )
        last = t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before", metavar="SRC", help="src/ of another version to time instead")
    ap.add_argument("--all", action="store_true", help="print every run's timeline")
    ap.add_argument("extra", nargs="*", help="more pipe run arguments (after --)")
    args = ap.parse_args()
    src = str(Path(args.before).resolve()) if args.before else None
    warm = dict(os.environ, PYTHONPATH=src or os.environ.get("PYTHONPATH", ""))
    warm.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(  # untimed: records the run (a changed pipe loads the project once)
        [
            str(Path(sys.executable).with_name("pipe")),
            "run",
            "--project",
            str(args.project),
            "--interval",
            LABEL,
            "--force",
            "--select",
            "raw.customers",
            *args.extra,
        ],
        env=warm,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    logs = [once(args.project.resolve(), src, args.extra) for _ in range(args.runs)]
    firsts = [first_task(log) * 1000 for log in logs]
    cpus = [
        next(x[1] for x in log if x[3] == "> pipe.scheduler:Scheduler._submit") * 1000
        for log in logs
    ]
    for log in logs if args.all else [min(logs, key=first_task)]:
        show(log)
        print()
    print(
        f"first task: median {statistics.median(firsts):.0f} ms "
        f"({', '.join(f'{x:.0f}' for x in firsts)}); CPU at it: median "
        f"{statistics.median(cpus):.0f} ms"
    )


if __name__ == "__main__":
    main()
