"""Postgres seeds are typed without sqlglot (issue 14): its import, about 90 ms, was paid
on the first seed task's path of every Postgres run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from pipe.adapters.postgres import SEED_TYPES, seed_type
from pipe.sqlquote import transpile_type


@pytest.mark.parametrize("duckdb_type", sorted(SEED_TYPES))
def test_each_known_seed_type_is_spelled_as_sqlglot_spells_it(duckdb_type):
    assert seed_type(duckdb_type) == transpile_type(duckdb_type, "duckdb", "postgres")


def test_other_types_go_to_sqlglot():
    assert seed_type("DECIMAL(12,2)") == "DECIMAL(12, 2)"
    assert seed_type("BLOB") == "BYTEA"


def test_loading_a_seed_imports_no_sqlglot(tmp_path, pg_dsn):
    csv = tmp_path / "s.csv"
    csv.write_text(
        "id,name,price,ok,day,at\n1,a,1.5,true,2026-01-02,2026-01-02 03:04:05\n"
        "2,b,2.25,false,2026-01-03,2026-01-03 00:00:00\n"
    )
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from pipe.adapters.postgres import PostgresAdapter
        from pipe.config import Target

        dsn = {pg_dsn!r}
        a = PostgresAdapter(Target("pg", "postgres", "postgres", (("dsn", dsn),)), Path("."), dsn)
        a.execute("CREATE SCHEMA raw")
        n = a.load_seed("raw.s", Path({str(csv)!r}), {{}})
        print(n, a.columns("raw.s"), "sqlglot" in sys.modules)
        a.close()
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(None, 1)[0] == "2"
    assert out.stdout.rstrip().endswith("False"), out.stdout
    assert "('price', 'double precision')" in out.stdout
    assert "('name', 'text')" in out.stdout
