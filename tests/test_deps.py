"""Dependency inference, one case per block of tests/fixtures/deps.sql (cases as data).

Each case becomes the model `cases.subject` of a tiny project; `pipe list --json` must
report exactly the expected depends_on for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli_json

FIXTURE = Path(__file__).parent / "fixtures" / "deps.sql"

AROUND = {
    "seeds/raw/orders.csv": "id,amount\n1,10\n",
    "seeds/raw/people.csv": "id,name\n1,ann\n",
    "sources.yml": "sources:\n  - name: ext.events\n",
    "models/staging/orders.sql": "select id, amount from raw.orders\n",
    "models/staging/customers.sql": "select id, name from raw.people\n",
    "models/marts/orders.sql": "select * from staging.orders\n",
}


def read_cases(path: Path) -> list[tuple[str, str, str | None, list[str]]]:
    """(title, sql, sidecar yaml or None, expected names) per case."""
    cases = []
    title = None
    lines: list[str] = []
    sidecar = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-- title:"):
            assert title is None, f"case {title!r} has no '-- expect:' line"
            title, lines, sidecar = line.removeprefix("-- title:").strip(), [], None
        elif title is None:
            continue  # the file's header
        elif line.startswith("-- sidecar:"):
            sidecar = line.removeprefix("-- sidecar:").strip() + "\n"
        elif line.startswith("-- expect:"):
            names = [n.strip() for n in line.removeprefix("-- expect:").split(",")]
            cases.append((title, "\n".join(lines).strip() + "\n", sidecar, [n for n in names if n]))
            title = None
        else:
            lines.append(line)
    assert title is None, f"case {title!r} has no '-- expect:' line"
    return cases


CASES = read_cases(FIXTURE)


def test_fixture_file_is_well_formed():
    titles = [c[0] for c in CASES]
    assert len(CASES) >= 30
    assert len(set(titles)) == len(titles), "two cases share a title"
    for title, sql, _, expect in CASES:
        assert sql.strip(), title
        assert expect == sorted(expect), f"{title}: keep '-- expect:' sorted"


@pytest.mark.parametrize(
    ("sql", "sidecar", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_depends_on(write_project, sql, sidecar, expect):
    files = {**AROUND, "models/cases/subject.sql": sql}
    if sidecar:
        files["models/cases/subject.yml"] = sidecar
    root = write_project(files)
    rows = run_cli_json(["list", "--json", "--project", root])
    by_name = {r["name"]: r for r in rows}
    assert by_name["cases.subject"]["depends_on"] == expect


def test_surrounding_project_edges(write_project):
    rows = run_cli_json(["list", "--json", "--project", write_project(AROUND)])
    assert {r["name"]: r["depends_on"] for r in rows} == {
        "ext.events": [],
        "marts.orders": ["staging.orders"],
        "raw.orders": [],
        "raw.people": [],
        "staging.customers": ["raw.people"],
        "staging.orders": ["raw.orders"],
    }


def test_ref_and_plain_name_give_the_same_plan_sql(write_project):
    """Both spellings end up as the same qualified table in the plan."""
    import json

    from conftest import run_cli

    plain = write_project(
        {**AROUND, "models/cases/subject.sql": "select * from customers\n"}, name="plain"
    )
    ref = write_project(
        {**AROUND, "models/cases/subject.sql": "select * from {{ ref('customers') }}\n"}, name="ref"
    )
    sqls = []
    for root in (plain, ref):
        code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
        assert code == 0, out
        plan = json.loads((root / "plans/dev/2026-06-01.json").read_text())
        [task] = [t for t in plan["tasks"] if t["model"] == "cases.subject"]
        sqls.append(task["sql"])
    assert sqls[0] == sqls[1] == ["select * from staging.customers"]
