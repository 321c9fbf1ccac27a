"""A plan file spliced from the last one (plansplice.py) is byte for byte the file a full
build writes, after every kind of edit; and an edit of one model builds only its tasks
and those whose shape it changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipe import planfile, workspace
from pipe.compiler import compile_project
from pipe.intervals import parse_label
from pipe.loader import load_project
from pipe.planner import build_plan
from pipe.plansplice import write

INTERVALS = ("2026-06-03", "2026-06")


def _append(rel: str, text: str):
    def edit(root: Path) -> None:
        with open(root / rel, "a", encoding="utf-8") as f:
            f.write(text)

    return edit


def _replace(rel: str, old: str, new: str):
    def edit(root: Path) -> None:
        path = root / rel
        before = path.read_text(encoding="utf-8")
        assert old in before
        path.write_text(before.replace(old, new), encoding="utf-8")

    return edit


def _write(rel: str, text: str):
    def edit(root: Path) -> None:
        (root / rel).write_text(text, encoding="utf-8")

    return edit


def _delete(rel: str):
    def edit(root: Path) -> None:
        (root / rel).unlink()

    return edit


# (what the edit is, the edit, the models built again: None for the whole plan). In
# order: each edit applies to the project as the ones before left it.
EDITS = [
    ("a comment", _append("models/staging/orders.sql", "-- a comment\n"), {"staging.orders"}),
    (
        "an SQL change",
        _replace("models/marts/daily_revenue.sql", "count(*) as orders", "count(*) + 0 as orders"),
        {"marts.daily_revenue"},
    ),
    (
        "a change that reaches downstream fingerprints",
        _append("models/staging/customers.sql", "\nlimit 1000000\n"),
        {
            "staging.customers",
            "marts.customer_orders",
            "reports.vip_customers",
            "staging.orders",  # its relationships check reads staging.customers
            "marts.daily_revenue",
        },
    ),
    (
        "a sidecar setting",
        _replace("models/staging/orders.yml", "retries: 1", "retries: 2"),
        {"staging.orders"},
    ),
    (
        "a check added",
        _append("models/marts/daily_revenue.yml", "  - not_null: [order_date]\n"),
        {"marts.daily_revenue"},
    ),
    (
        "a sidecar created",
        _write("models/staging/products.yml", "retries: 3\n"),
        {"staging.products"},
    ),
    (
        "a lookback, which reshapes what reads it",
        _append("models/staging/orders.yml", "lookback: 2\n"),
        {"staging.orders", "marts.daily_revenue", "marts.customer_orders", "reports.vip_customers"},
    ),
    (
        "a dependency",
        _replace(
            "models/reports/vip_customers.sql",
            "from customer_orders",
            "from customer_orders join staging.customers using (full_name)",
        ),
        {"reports.vip_customers"},
    ),
    ("a new model", _write("models/reports/extra.sql", "select 1 as x\n"), None),
    ("a deleted model", _delete("models/reports/extra.sql"), None),
]


def _full_build(root: Path, label: str) -> bytes:
    """The plan file a compile without any cache writes."""
    cp = compile_project(load_project(root), use_cache=False, write_cache=False)
    return planfile.dumps(build_plan(cp, parse_label(label)))


def _compile(root: Path, label: str):
    cp = workspace.load(root)
    made = write(cp, parse_label(label))
    cp.save_cache()
    return made


@pytest.mark.parametrize("label", INTERVALS)
def test_a_spliced_plan_is_the_full_build_after_every_kind_of_edit(example_project, label):
    first = _compile(example_project, label)
    assert first.rebuilt is None  # nothing to splice from
    assert first.data == _full_build(example_project, label)
    seen = {}
    for what, edit, _ in EDITS:
        edit(example_project)
        made = _compile(example_project, label)
        seen[what] = made.rebuilt
        assert made.data == _full_build(example_project, label), what
        assert made.data == made.path.read_bytes()
    assert seen == {what: rebuilt for what, _, rebuilt in EDITS}


def test_a_plan_file_changed_by_hand_is_built_whole(example_project):
    _compile(example_project, "2026-06-03")
    path = example_project / "plans/dev/2026-06-03.json"
    path.write_bytes(path.read_bytes().replace(b'"retries": 1', b'"retries": 5'))
    _append("models/staging/orders.sql", "-- a comment\n")(example_project)
    made = _compile(example_project, "2026-06-03")
    assert made.rebuilt is None
    assert made.data == _full_build(example_project, "2026-06-03") == path.read_bytes()


def test_a_plan_a_run_wrote_is_spliced_by_the_next_compile(example_project):
    cp = workspace.load(example_project)
    (written,) = workspace.ensure_plans(cp, [parse_label("2026-06-03")], hint="compile")
    cp.save_cache()
    assert written.status == "written"
    _append("models/staging/orders.sql", "-- a comment\n")(example_project)
    made = _compile(example_project, "2026-06-03")
    assert made.rebuilt == {"staging.orders"}  # not the whole plan again
    assert made.data == _full_build(example_project, "2026-06-03")
