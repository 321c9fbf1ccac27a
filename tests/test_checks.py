"""The check registry: what a check reads becomes the plan's edges, an unknown table or
column in a check is a compile error, and every type is documented and templated."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import duckdb
import pytest

from conftest import files_under, run_cli
from pipe.checks import REGISTRY

DAY = "2026-06-02"
SEEDS = {
    "seeds/raw/orders.csv": "id,customer_id,amount\n1,1,10\n2,2,20\n",
    "seeds/raw/customers.csv": "id,name\n1,ann\n2,bob\n",
}
ORDERS = "select id, customer_id, amount from raw.orders\n"
CUSTOMERS = "select id as customer_id, name from raw.customers\n"


def plan_of(root: Path) -> dict:
    code, out = run_cli(["compile", "--project", root, "--interval", DAY])
    assert code == 0, out
    [(_, data)] = files_under(root / "plans").items()
    return json.loads(data)


def task(plan: dict, model: str) -> dict:
    [found] = [t for t in plan["tasks"] if t["model"] == model]
    return found


def compile_fails(root: Path, *args: str) -> str:
    """A compile that ends in one clean, located user error; its message."""
    code, out = run_cli(["compile", "--project", root, *args])
    assert code == 2, out
    assert "Traceback" not in out and "internal error" not in out, out
    assert files_under(root / "plans") == {}, "a failed compile wrote a plan"
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return lines[0].removeprefix("error: ")


# ---------------------------------------------------------------- tables a check reads


@pytest.mark.parametrize(
    "check",
    [
        "sql: select * from {{ this }} where customer_id not in (select customer_id"
        " from staging.customers)",
        'expression: "customer_id in (select customer_id from staging.customers)"',
    ],
    ids=["sql", "expression with a subquery"],
)
def test_a_check_that_reads_another_table_waits_for_it(write_project, check):
    root = write_project(
        {
            **SEEDS,
            "models/staging/orders.sql": ORDERS,
            "models/staging/orders.yml": f"checks:\n  - {check}\n",
            "models/staging/customers.sql": CUSTOMERS,
        }
    )
    plan = plan_of(root)
    orders, customers = task(plan, "staging.orders"), task(plan, "staging.customers")
    assert customers["id"] in orders["upstream"]


def test_a_bare_table_name_in_an_sql_check_reads_the_table_it_resolves_to(write_project):
    root = write_project(
        {
            **SEEDS,
            "models/staging/orders.sql": ORDERS,
            "models/staging/orders.yml": (
                "checks:\n  - sql: |\n      select o.* from {{ this }} as o\n"
                "      where not exists (select 1 from clients as c\n"
                "                        where c.customer_id = o.customer_id)\n"
            ),
            "models/staging/clients.sql": CUSTOMERS,
        }
    )
    plan = plan_of(root)
    orders = task(plan, "staging.orders")
    assert task(plan, "staging.clients")["id"] in orders["upstream"]
    sql = "\n".join(orders["checks"][0]["sql"])
    assert "FROM staging.clients AS c" in sql, sql


def test_a_check_that_reads_another_model_runs_after_it(write_project):
    """On DuckDB with one worker: the model under check sorts first by name, so without
    the edge its check reads a table that does not exist yet."""
    root = write_project(
        {
            **SEEDS,
            "models/a/orders.sql": ORDERS,
            "models/a/orders.yml": (
                "checks:\n  - sql: select * from {{ this }} where customer_id not in"
                " (select customer_id from b.customers)\n"
            ),
            "models/b/customers.sql": CUSTOMERS,
        },
        pipe_yml=(
            "name: t\nstart: 2026-06-01\nschedule: daily\nconcurrency: 1\n"
            "targets:\n  dev: {adapter: duckdb, path: warehouse.duckdb}\n"
        ),
    )
    code, out = run_cli(["run", "--project", root, "--interval", DAY])
    assert code == 0, out
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select id from a.orders order by id").fetchall() == [(1,), (2,)]


def test_a_check_that_reads_its_own_table_is_no_cycle(write_project):
    root = write_project(
        {
            **SEEDS,
            "models/staging/orders.sql": ORDERS,
            "models/staging/orders.yml": (
                "checks:\n  - sql: select * from {{ this }} where id in"
                " (select id from staging.orders where amount < 0)\n"
            ),
        }
    )
    plan = plan_of(root)
    assert task(plan, "staging.orders")["upstream"] == [task(plan, "raw.orders")["id"]]


# ---------------------------------------------------------------- compile errors


# (id, the sidecar of staging.orders (beside ORDERS and CUSTOMERS), its line, fragments)
ERRORS = [
    (
        "unknown table in an sql check",
        "checks:\n  - not_null: [id]\n  - sql: select * from {{ this }} where customer_id"
        " not in (select customer_id from staging.customer)\n",
        3,
        [
            "check sql: unknown table 'staging.customer'",
            "did you mean 'staging.customers'?",
        ],
    ),
    (
        "unknown table in an expression's subquery",
        'checks:\n  - expression: "customer_id in (select customer_id from stging.customers)"\n',
        2,
        ["unknown table 'stging.customers'", "did you mean 'staging.customers'?"],
    ),
    (
        "unknown bare table in an sql check",
        "checks:\n  - sql: select * from {{ this }} where id not in (select id from ordrs)\n",
        2,
        ["unknown table 'ordrs'", "did you mean 'raw.orders'?"],
    ),
    (
        "not_null on a column the model lacks",
        "checks:\n  - not_null: [id, custmer_id]\n",
        2,
        [
            "check not_null(custmer_id): staging.orders has no column 'custmer_id'",
            "did you mean 'customer_id'?",
        ],
    ),
    (
        "unique on a compound key with a column the model lacks",
        "description: x\nchecks:\n  - unique: [[id, day]]\n",
        3,
        ["check unique(id, day): staging.orders has no column 'day'", "its columns: id,"],
    ),
    (
        "accepted_values on a column the model lacks",
        "checks:\n  - accepted_values: {column: state, values: [a]}\n",
        2,
        ["staging.orders has no column 'state'"],
    ),
    (
        "relationships from a column the model lacks",
        "checks:\n  - relationships: {column: customer, to: staging.customers.customer_id}\n",
        2,
        ["staging.orders has no column 'customer'", "did you mean 'customer_id'?"],
    ),
    (
        "relationships to a column the other model lacks",
        "checks:\n  - relationships: {column: customer_id, to: staging.customers.id}\n",
        2,
        ["check relationships(customer_id): staging.customers has no column 'id'"],
    ),
    (
        "expression on a column the model lacks",
        'checks:\n  - expression: "amount >= 0 and ammount < 100"\n',
        2,
        ["staging.orders has no column 'ammount'", "did you mean 'amount'?"],
    ),
]


@pytest.mark.parametrize("sidecar, line, said", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
@pytest.mark.parametrize("interval", [True, False], ids=["--interval", "plain compile"])
def test_a_check_that_names_what_does_not_exist_is_a_compile_error(
    write_project, sidecar, line, said, interval
):
    root = write_project(
        {
            **SEEDS,
            "models/staging/orders.sql": ORDERS,
            "models/staging/orders.yml": sidecar,
            "models/staging/customers.sql": CUSTOMERS,
        }
    )
    for _ in range(2):  # a second, warm compile says it again
        message = compile_fails(root, *(["--interval", DAY] if interval else []))
        assert message.startswith(f"models/staging/orders.yml:{line}: "), message
        for fragment in said:
            assert fragment in message, message


def test_every_mistake_of_every_check_is_reported_together(write_project):
    root = write_project(
        {
            **SEEDS,
            "models/staging/orders.sql": ORDERS,
            "models/staging/orders.yml": (
                "checks:\n  - not_null: [idd]\n"
                "  - sql: select * from {{ this }} where id in (select id from nope.nope)\n"
            ),
        }
    )
    code, out = run_cli(["compile", "--project", root])
    assert code == 2, out
    assert "orders.yml:2: check not_null(idd): staging.orders has no column 'idd'" in out
    assert "orders.yml:3: check sql: unknown table 'nope.nope'" in out


@pytest.mark.parametrize(
    "files, model",
    [
        ({"models/a/b.sql": "select * from raw.orders\n"}, "a.b"),  # a seed: not read here
        (
            {
                "sources.yml": "sources:\n  - name: ext.events\n",
                "models/a/b.sql": "select * from ext.events\n",
            },
            "a.b",
        ),
        ({"models/a/b.sql": "select count(*) from raw.orders\n"}, "a.b"),  # the engine names it
        (
            {
                "models/a/b.sql": "select o.*, c.name from raw.orders o join raw.customers c"
                " on c.id = o.customer_id\n"
            },
            "a.b",
        ),
        ({"models/a/b.sql": "select * rename (id as nr) from raw.orders\n"}, "a.b"),
        ({"models/a/b.sql": "select id from raw.orders union by name select 1 as nr\n"}, "a.b"),
    ],
    ids=["star over a seed", "star over a bare source", "unnamed", "join", "rename", "by name"],
)
def test_where_the_output_columns_are_not_known_nothing_is_said(write_project, files, model):
    schema, table = model.split(".")
    root = write_project(
        {**SEEDS, **files, f"models/{schema}/{table}.yml": "checks:\n  - not_null: [nr]\n"}
    )
    code, out = run_cli(["compile", "--project", root, "--interval", DAY])
    assert code == 0, out


@pytest.mark.parametrize(
    "files",
    [
        {"models/a/c.sql": "select id, amount from raw.orders\n"},
        {"sources.yml": "sources:\n  - name: a.c\n    columns: {id: key, amount: dollars}\n"},
    ],
    ids=["a model", "a source that declares its columns"],
)
def test_a_star_over_a_table_of_known_columns_is_expanded(write_project, files):
    root = write_project(
        {
            **SEEDS,
            **files,
            "models/a/b.sql": "select *, amount * 2 as twice from c\n",
            "models/a/b.yml": "checks:\n  - not_null: [twice, amount]\n  - unique: [nr]\n",
        }
    )
    message = compile_fails(root, "--interval", DAY)
    assert message == (
        "models/a/b.yml:3: check unique(nr): a.b has no column 'nr' (its columns: id, amount,"
        " twice)"
    )


def test_column_names_compare_as_sql_compares_plain_names(write_project):
    root = write_project(
        {
            **SEEDS,
            "models/a/b.sql": 'select ID, "Amount" from raw.orders\n',
            "models/a/b.yml": "checks:\n  - not_null: [id, amount]\n",
        }
    )
    code, out = run_cli(["compile", "--project", root, "--interval", DAY])
    assert code == 0, out


# ---------------------------------------------------------------- the registry itself


def test_every_check_type_has_its_template():
    folder = resources.files("pipe.templates") / "checks"
    templates = {p.name.removesuffix(".sql") for p in folder.iterdir() if p.name.endswith(".sql")}
    assert templates == {name for name, t in REGISTRY.items() if t.values is not None}


def test_every_check_type_is_documented():
    docs = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| `(\w+)` \| .* \| .* \|$", docs.split("## Checks", 1)[1], re.M)
    assert set(REGISTRY) <= set(table), sorted(set(REGISTRY) - set(table))
