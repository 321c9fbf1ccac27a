"""Seeds load with the same columns, types and NULLs on every target: DuckDB's reading of the
CSV is the contract (its dialect sniffing, type inference and `column_types`)."""

from __future__ import annotations

from conftest import run_cli
from test_contract import engine, pytest_generate_tests  # noqa: F401


def test_a_semicolon_csv_with_quoted_empty_fields_loads_the_same_everywhere(engine):
    root = engine.project(
        {
            "seeds/raw/semi.csv": 'id;name;note;amount\n1;a;"";1.50\n2;;x;2\n3;"c;d";;\n',
            "seeds/raw/semi.yml": "column_types: {amount: 'DECIMAL(10,2)'}\n",
        }
    )
    code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    wh = engine.warehouse(root)
    assert wh.query("select id, name, note, cast(amount as varchar) from raw.semi order by id") == [
        (1, "a", None, "1.50"),
        (2, None, "x", "2.00"),
        (3, "c;d", None, None),
    ]
