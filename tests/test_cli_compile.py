"""The compile-side commands: `pipe list` (SPEC §4 fields, selection), `pipe compile` output
and options, `pipe init`, and the real console script."""

from __future__ import annotations

import json

import pytest

from conftest import files_under, run_cli, run_cli_json, run_pipe

EXAMPLE_GRAPH = {
    # name: (kind, grain, depends_on)
    "marts.customer_orders": ("full", "daily", ["staging.customers", "staging.orders"]),
    "marts.daily_revenue": ("incremental", "daily", ["staging.orders"]),
    "raw.customers": ("seed", None, []),
    "raw.orders": ("seed", None, []),
    "raw.page_views": ("seed", None, []),
    "raw.products": ("seed", None, []),
    "reports.traffic_by_page": ("full", "daily", ["staging.page_views"]),
    "reports.vip_customers": ("view", "daily", ["marts.customer_orders"]),
    "staging.customers": ("full", "daily", ["raw.customers"]),
    # staging.customers: its relationships check reads the published table
    "staging.orders": (
        "incremental",
        "daily",
        ["raw.orders", "staging.customers", "staging.products"],
    ),
    "staging.page_views": ("incremental", "hourly", ["raw.page_views"]),
    "staging.products": ("full", "daily", ["raw.products"]),
}


def names(rows) -> list[str]:
    return [r["name"] for r in rows]


# ---------------------------------------------------------------- pipe list


def test_list_json_fields(example_project):
    rows = run_cli_json(["list", "--json", "--project", example_project])
    assert names(rows) == sorted(EXAMPLE_GRAPH)
    for row in rows:
        assert {"name", "kind", "grain", "depends_on"} <= set(row)
        assert (row["kind"], row["grain"], row["depends_on"]) == EXAMPLE_GRAPH[row["name"]]
        assert row["depends_on"] == sorted(row["depends_on"])
    by_name = {r["name"]: r for r in rows}
    assert by_name["staging.orders"]["path"] == "models/staging/orders.sql"
    assert by_name["marts.customer_orders"]["tags"] == ["finance"]
    assert len(by_name["staging.orders"]["fingerprint"]) == 16


def test_list_json_includes_sources(write_project):
    root = write_project(
        {
            "sources.yml": "sources:\n  - name: ext.events\n",
            "models/a/b.sql": "select * from ext.events\n",
        }
    )
    rows = run_cli_json(["list", "--json", "--project", root])
    assert [(r["name"], r["kind"], r["depends_on"]) for r in rows] == [
        ("a.b", "full", ["ext.events"]),
        ("ext.events", "source", []),
    ]


def test_list_table(example_project):
    code, out = run_cli(["list"], cwd=example_project)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["name", "kind", "grain", "depends_on"]
    assert len(lines) == 1 + len(EXAMPLE_GRAPH)
    assert lines[1].split()[:3] == ["marts.customer_orders", "full", "daily"]
    [hourly] = [line for line in lines if line.startswith("staging.page_views ")]
    assert hourly.split() == ["staging.page_views", "incremental", "hourly", "raw.page_views"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("marts.customer_orders", ["marts.customer_orders"]),
        ("customer_orders", ["marts.customer_orders"]),  # the schema may be omitted
        (
            "+marts.daily_revenue",
            [
                "marts.daily_revenue",
                "raw.customers",
                "raw.orders",
                "raw.products",
                "staging.customers",
                "staging.orders",
                "staging.products",
            ],
        ),
        (
            "staging.orders+",
            [
                "marts.customer_orders",
                "marts.daily_revenue",
                "reports.vip_customers",
                "staging.orders",
            ],
        ),
        (
            "+staging.page_views+",
            ["raw.page_views", "reports.traffic_by_page", "staging.page_views"],
        ),
        ("tag:finance", ["marts.customer_orders", "reports.vip_customers"]),
        (
            "tag:core+",
            [
                "marts.customer_orders",
                "marts.daily_revenue",
                "reports.vip_customers",
                "staging.customers",
                "staging.orders",
            ],
        ),
        ("staging.products raw.page_views", ["raw.page_views", "staging.products"]),
        (
            "tag:finance  traffic_by_page",
            ["marts.customer_orders", "reports.traffic_by_page", "reports.vip_customers"],
        ),
        (
            "vip_customers +vip_customers",
            [
                "marts.customer_orders",
                "raw.customers",
                "raw.orders",
                "raw.products",
                "reports.vip_customers",
                "staging.customers",
                "staging.orders",
                "staging.products",
            ],
        ),
    ],
)
def test_select(example_project, selector, expected):
    rows = run_cli_json(["list", "--json", "--select", selector, "--project", example_project])
    assert names(rows) == expected


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        ("marts.customer_order", "did you mean 'marts.customer_orders'?"),
        ("nothing_like_it", "--select matches nothing: 'nothing_like_it'"),
        ("orders", "'orders' is ambiguous"),
        ("tag:nope", "no model has tag 'nope'"),
        ("staging.orders +staging.custmers", "did you mean 'staging.customers'?"),
    ],
)
def test_select_errors(example_project, selector, fragment):
    code, out = run_cli(["list", "--select", selector, "--project", example_project])
    assert code == 2, out
    assert fragment in out
    assert out.startswith("error: ") and "Traceback" not in out


# ---------------------------------------------------------------- pipe compile


def test_project_and_target_anywhere_among_the_options(example_project, tmp_path):
    for args in (
        ["compile", "--project", example_project, "--interval", "2026-06-02", "--target", "dev"],
        ["compile", "--target", "dev", "--interval", "2026-06-02", "--project", example_project],
        ["list", "--json", "--project", example_project, "--target", "dev"],
        ["list", "--target", "dev", "--project", example_project, "--json"],
    ):
        code, out = run_cli(args, cwd=tmp_path)
        assert code == 0, (args, out)
    assert sorted(files_under(example_project / "plans")) == ["dev/2026-06-02.json"]


def test_compile_summary(example_project):
    code, out = run_cli(["compile", "--interval", "2026-06-02"], cwd=example_project)
    assert code == 0, out
    assert out.splitlines() == [
        "compiled shop: 4 full, 3 incremental, 1 view, 4 seed",
        "  written   plans/dev/2026-06-02.json (35 tasks)",
    ]
    code, out = run_cli(["compile", "--interval", "2026-06-02"], cwd=example_project)
    assert "  unchanged plans/dev/2026-06-02.json (35 tasks)" in out.splitlines()


def test_compile_json(example_project):
    report = run_cli_json(
        [
            "compile",
            "--json",
            "--start",
            "2026-06-01",
            "--end",
            "2026-06-03",
            "--project",
            example_project,
        ]
    )
    assert report == {
        "models": 12,
        "plans": [
            {"path": "plans/dev/2026-06-01.json", "status": "written", "tasks": 35},
            {"path": "plans/dev/2026-06-02.json", "status": "written", "tasks": 35},
        ],
    }


def test_compile_without_interval_validates_only(example_project):
    code, out = run_cli(["compile", "--project", example_project])
    assert code == 0, out
    assert out.startswith("compiled shop:")
    assert not (example_project / "plans").exists()


def test_compile_a_month(example_project):
    report = run_cli_json(
        ["compile", "--json", "--interval", "2026-06", "--project", example_project]
    )
    [plan] = report["plans"]
    # 4 seeds, 4 full and 1 view once, 30 days of 2 daily incrementals, 720 hours
    assert plan == {
        "path": "plans/dev/2026-06.json",
        "status": "written",
        "tasks": 4 + 5 + 30 * 2 + 30 * 24,
    }


def test_the_real_console_script(example_project):
    proc = run_pipe(["list", "--json"], cwd=example_project)
    assert proc.returncode == 0, proc.stderr
    assert names(json.loads(proc.stdout)) == sorted(EXAMPLE_GRAPH)
    proc = run_pipe(["--help"], cwd=example_project)
    assert proc.returncode == 0
    for command in ("compile", "list", "init"):
        assert command in proc.stdout


def test_version_and_help():
    code, out = run_cli(["--version"])
    assert code == 0 and out.startswith("pipe, version ")
    for command in ("compile", "list", "init"):
        code, out = run_cli([command, "--help"])
        assert code == 0, out
        if command != "init":
            assert "--project" in out and "--target" in out


# ---------------------------------------------------------------- pipe init


def test_init_creates_a_project_that_compiles(tmp_path):
    code, out = run_cli(["init", "new"], cwd=tmp_path)
    assert code == 0, out
    root = tmp_path / "new"
    assert (root / "pipe.yml").is_file()
    assert list((root / "models").rglob("*.sql")), "the scaffold has no model"
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    assert files_under(root / "plans")
    rows = run_cli_json(["list", "--json", "--project", root])
    assert rows and all(
        r["kind"] in ("full", "incremental", "view", "seed", "source") for r in rows
    )


def test_init_refuses_an_existing_project(example_project):
    before = files_under(example_project)
    code, out = run_cli(["init", str(example_project)])
    assert code == 2, out
    assert "already exists" in out and "Traceback" not in out
    assert files_under(example_project) == before
