"""Engine rules (pipe/engines.py): each adapter class is its engine's rules, and compile
reads them without importing the engine's driver."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipe.adapters.base import Adapter
from pipe.engines import ENGINES

COMPILE_FOR = """\
import sys
from pipe.cli import main

for target in ("dev", "pg", "sp"):
    main(["compile", "--target", target, "--interval", "2026-06-01", "--project", sys.argv[1]],
         standalone_mode=False)
drivers = ("psycopg", "duckdb", "_duckdb", "pyspark")
print(sorted(m for m in sys.modules if m.split(".")[0] in drivers))
"""


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_each_adapter_class_is_its_engines_rules(engine):
    import importlib

    rules = ENGINES[engine]
    module, name = rules.adapter_class.split(":")
    adapter = getattr(importlib.import_module(module), name)
    assert issubclass(adapter, rules) and issubclass(adapter, Adapter)
    assert (adapter.name, adapter.dialect) == (engine, rules.dialect)
    assert adapter.max_identifier == rules.max_identifier


def test_compiling_for_every_engine_imports_no_driver(write_project):
    """Names checked, SQL transpiled and validated for Postgres and Spark: no driver."""
    root = write_project(
        {"models/a/b.sql": "select 1 as x"},
        pipe_yml="name: t\nstart: 2026-06-01\ntargets:\n"
        "  dev: {adapter: duckdb}\n"
        "  pg: {adapter: postgres, dsn: 'postgresql:///unused'}\n"
        "  sp: {adapter: spark, remote: 'sc://localhost:1'}\n",
    )
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_FOR, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
    for target in ("dev", "pg", "sp"):
        assert (root / "plans" / target / "2026-06-01.json").exists()
