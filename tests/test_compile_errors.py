"""User errors of a compile, each through the CLI: exit 2, one message that names the file
and line (`path:line: ...`), a suggestion where one exists, no traceback, no plan written."""

from __future__ import annotations

import re

import pytest

from conftest import PIPE_YML, files_under, run_cli, run_pipe

SEEDS = {
    "seeds/raw/orders.csv": "id,customer_id,amount,ts\n1,1,10,2026-06-01 10:00:00\n",
    "seeds/raw/customers.csv": "id,name\n1,ann\n",
}
OK_MODEL = {"models/staging/orders.sql": "select id, customer_id, amount, ts\nfrom raw.orders\n"}


def compile_fails(root, *extra: str) -> str:
    """Compile one interval of `root`; assert it is a clean user error and return the output."""
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root, *extra])
    assert code == 2, out
    assert "Traceback" not in out
    assert "internal error" not in out
    assert out.startswith("error: "), out
    assert files_under(root / "plans") == {}, "a failed compile wrote a plan"
    return out


def one_message(out: str) -> str:
    """The single message of `out` (one line, no 'N errors' footer)."""
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return lines[0].removeprefix("error: ")


# (id, files beside the seeds, `path:line` the message starts with, fragments it contains)
CASES = [
    (
        "unknown table with suggestion",
        {
            "models/marts/totals.sql": "select customer_id, sum(amount) as total\n"
            "from raw.ordrs\ngroup by 1\n"
        },
        "models/marts/totals.sql:2:6",
        ["unknown table 'raw.ordrs'", "did you mean 'raw.orders'?"],
    ),
    (
        "unknown unqualified table with suggestion",
        {**OK_MODEL, "models/marts/totals.sql": "select *\nfrom stg_orders\n"},
        "models/marts/totals.sql:2:6",
        ["unknown table 'stg_orders'", "did you mean 'staging.orders'?"],
    ),
    (
        # one quoted part holding a dot names a table called "raw.orders", never raw.orders
        "quoted name with a dot is not schema.table",
        {"models/marts/totals.sql": 'select *\nfrom "raw.orders"\n'},
        "models/marts/totals.sql:2:6",
        ["unknown table '\"raw.orders\"'", "did you mean 'raw.orders'?"],
    ),
    (
        "quoted schema with a dot",
        {"models/marts/totals.sql": 'select * from "raw.x".orders\n'},
        "models/marts/totals.sql:1:15",
        ["unknown table '\"raw.x\".orders'"],
    ),
    (
        "unknown table without any close name",
        {"models/marts/totals.sql": "select * from zzz.qqq\n"},
        "models/marts/totals.sql:1:15",
        ["unknown table 'zzz.qqq'", "sources.yml"],
    ),
    (
        "unknown table inside a CTE and a subquery",
        {
            "models/marts/totals.sql": "with a as (\n  select * from raw.orders\n)\n"
            "select * from a\nwhere id in (select id from raw.custmers)\n"
        },
        "models/marts/totals.sql:5:29",
        ["unknown table 'raw.custmers'", "did you mean 'raw.customers'?"],
    ),
    (
        "ambiguous unqualified name",
        {**OK_MODEL, "models/marts/totals.sql": "select * from orders\n"},
        "models/marts/totals.sql:1:15",
        ["'orders' is ambiguous", "raw.orders, staging.orders"],
    ),
    (
        "unknown ref()",
        {"models/marts/totals.sql": "select *\nfrom {{ ref('raw.order') }}\n"},
        "models/marts/totals.sql:2",
        ["ref('raw.order')", "did you mean 'raw.orders'?"],
    ),
    (
        "unknown source()",
        {
            "sources.yml": "sources:\n  - name: ext.events\n",
            "models/marts/totals.sql": "select *\nfrom {{ source('ext.event') }}\n",
        },
        "models/marts/totals.sql:2",
        ["source('ext.event')", "did you mean 'ext.events'?"],
    ),
    (
        "unknown depends_on in a sidecar",
        {
            **OK_MODEL,
            "models/marts/totals.sql": "select 1 as x\n",
            "models/marts/totals.yml": "description: x\ndepends_on: [staging.order]\n",
        },
        "models/marts/totals.yml:2",
        ["unknown table 'staging.order'", "did you mean 'staging.orders'?"],
    ),
    (
        "relationships check to an unknown table",
        {
            **OK_MODEL,
            "models/staging/orders.yml": (
                "checks:\n  - relationships: {column: customer_id, to: raw.customer.id}\n"
            ),
        },
        "models/staging/orders.yml:2",
        ["unknown table 'raw.customer'", "did you mean 'raw.customers'?"],
    ),
    (
        "cycle",
        {
            "models/a/x.sql": "select * from a.z\n",
            "models/a/y.sql": "select * from a.x\n",
            "models/a/z.sql": "select * from a.y\n",
        },
        "models/a/x.sql:1",
        ["dependency cycle: a.x -> a.y -> a.z -> a.x"],
    ),
    (
        "cycle of two through a bare name and ref()",
        {"models/a/p.sql": "select * from {{ ref('q') }}\n", "models/a/q.sql": "select * from p\n"},
        "models/a/p.sql:1",
        ["dependency cycle: a.p -> a.q -> a.p"],
    ),
    (
        "cycle through a sidecar's depends_on",
        {
            "models/a/p.sql": "select * from a.q\n",
            "models/a/q.sql": "select 1 as x\n",
            "models/a/q.yml": "depends_on: [a.p]\n",
        },
        "models/a/p.sql:1",
        ["dependency cycle: a.p -> a.q -> a.p"],
    ),
    (
        "duplicate name: model and seed",
        {"models/raw/orders.sql": "select 1 as id\n"},
        "seeds/raw/orders.csv:1",
        ["duplicate name 'raw.orders'", "models/raw/orders.sql"],
    ),
    (
        "duplicate name: model and source",
        {**OK_MODEL, "sources.yml": "sources:\n  - name: ext.events\n  - name: staging.orders\n"},
        "sources.yml:3",
        ["duplicate name 'staging.orders'", "models/staging/orders.sql"],
    ),
    (
        "duplicate name: seed and source",
        {"sources.yml": "sources:\n  - name: raw.customers\n"},
        "sources.yml:2",
        ["duplicate name 'raw.customers'", "seeds/raw/customers.csv"],
    ),
    (
        "SQL syntax error",
        {"models/marts/totals.sql": "select\n  id,\n  amount +\nfrom raw.orders\n"},
        "models/marts/totals.sql:4:1",
        ["SQL syntax error: incomplete ADD near 'from'"],
    ),
    (
        "SQL syntax error: unexpected token",
        {"models/marts/totals.sql": "select id\nfrom raw.orders\nwhere id >> in (1)\n"},
        "models/marts/totals.sql:3",
        ["SQL syntax error"],
    ),
    (
        "SQL syntax error: unclosed quote",
        {"models/marts/totals.sql": "select id,\n  'abc as name\nfrom raw.orders\n"},
        "models/marts/totals.sql:",
        ["SQL syntax error", "unclosed quote"],
    ),
    (
        "SQL syntax error after Jinja",
        {
            "models/marts/totals.sql": "select id\nfrom raw.orders\n"
            "where ts >= {{ interval_start }} and and\n"
        },
        "models/marts/totals.sql:3: ",
        ["SQL syntax error: incomplete AND near 'and'"],
    ),
    (
        "unknown table on a line Jinja changed: no column",
        {"models/marts/totals.sql": "select id\nfrom {{ ref('raw.orders') }} join raw.custmers\n"},
        "models/marts/totals.sql:2: ",
        ["unknown table 'raw.custmers'"],
    ),
    (
        "not a SELECT",
        {"models/marts/totals.sql": "delete from raw.orders\n"},
        "models/marts/totals.sql:1",
        ["one SELECT statement"],
    ),
    (
        "two statements",
        {"models/marts/totals.sql": "select 1 as x;\nselect 2 as y;\n"},
        "models/marts/totals.sql:1",
        ["one SELECT statement", "2 statements"],
    ),
    (
        "Jinja syntax error",
        {"models/marts/totals.sql": "select id\nfrom raw.orders\n{% if true %}\nwhere id > 0\n"},
        "models/marts/totals.sql:",
        ["Jinja syntax error"],
    ),
    (
        "Jinja unclosed expression",
        {"models/marts/totals.sql": "select id\nfrom {{ ref('raw.orders')\n"},
        "models/marts/totals.sql:",
        ["Jinja syntax error"],
    ),
    (
        "undefined Jinja name",
        {
            "models/marts/totals.sql": (
                "select id\nfrom raw.orders\nwhere ts >= {{ intervl_start }}\n"
            )
        },
        "models/marts/totals.sql:3",
        ["undefined", "intervl_start"],
    ),
    (
        "undefined var()",
        {
            "models/marts/totals.sql": "select id\nfrom raw.orders\n"
            "where amount > {{ var('min_amout') }}\n"
        },
        "models/marts/totals.sql:3",
        ["var('min_amout')"],
    ),
    (
        "undefined name in a macro",
        {
            "macros/m.sql": "{% macro cents(c) %}\n{{ c }} / {{ hundred }}\n{% endmacro %}\n",
            "models/marts/totals.sql": "select {{ cents('amount') }} as amount\nfrom raw.orders\n",
        },
        "macros/m.sql:2",
        ["undefined", "hundred", "called from models/marts/totals.sql:1"],
    ),
    (
        "a Python error inside a Jinja expression",
        {"models/marts/totals.sql": "select id\nfrom raw.orders\nwhere id > {{ 1 / 0 }}\n"},
        "models/marts/totals.sql:3",
        ["Jinja error", "ZeroDivisionError"],
    ),
    (
        "ref() without a name",
        {"models/marts/totals.sql": "select id\nfrom {{ ref() }}\n"},
        "models/marts/totals.sql:2",
        ["ref() takes one table name"],
    ),
    (
        "Jinja syntax error in a macro",
        {
            "macros/m.sql": "{% macro cents(c) %}\n{{ c }} / 100\n",
            "models/marts/totals.sql": "select {{ cents('amount') }} as amount\nfrom raw.orders\n",
        },
        "macros/m.sql:",
        ["Jinja syntax error"],
    ),
    (
        "invalid YAML in a sidecar",
        {**OK_MODEL, "models/staging/orders.yml": "kind: incremental\ntime_column: [ts\n"},
        "models/staging/orders.yml:",
        ["invalid YAML"],
    ),
    (
        "invalid YAML in sources.yml",
        {"sources.yml": "sources:\n  - name: ext.events\n   wait_for: x\n"},
        "sources.yml:",
        ["invalid YAML"],
    ),
    (
        "duplicate key in a sidecar",
        {**OK_MODEL, "models/staging/orders.yml": "kind: full\ntags: [a]\nkind: view\n"},
        "models/staging/orders.yml:3",
        ["duplicate key 'kind'"],
    ),
    (
        "unknown key in a sidecar",
        {**OK_MODEL, "models/staging/orders.yml": "tags: [core]\nkinds: incremental\n"},
        "models/staging/orders.yml:2",
        ["unknown key 'kinds'", "did you mean 'kind'?"],
    ),
    (
        "unknown key in a check",
        {
            **OK_MODEL,
            "models/staging/orders.yml": (
                "checks:\n  - accepted_values: {column: id, valuez: [1]}\n"
            ),
        },
        "models/staging/orders.yml:2",
        ["unknown key 'valuez'", "did you mean 'values'?"],
    ),
    (
        "unknown key in sources.yml",
        {"sources.yml": "sources:\n  - name: ext.events\n    wait_fr: select 1\n"},
        "sources.yml:3",
        ["unknown key 'wait_fr'", "did you mean 'wait_for'?"],
    ),
    (
        "unknown key in a seed sidecar",
        {"seeds/raw/orders.yml": "column_type: {ts: TIMESTAMP}\n"},
        "seeds/raw/orders.yml:1",
        ["unknown key 'column_type'", "did you mean 'column_types'?"],
    ),
    (
        "wrong type in a sidecar",
        {**OK_MODEL, "models/staging/orders.yml": "description: x\nretries: lots\n"},
        "models/staging/orders.yml:2",
        ["'retries' must be a whole number"],
    ),
    (
        "wrong type: a boolean that is text",
        {**OK_MODEL, "models/staging/orders.yml": "depends_on_past: yes please\n"},
        "models/staging/orders.yml:1",
        ["'depends_on_past' must be true or false"],
    ),
    (
        "wrong value: unknown kind",
        {**OK_MODEL, "models/staging/orders.yml": "kind: incremantal\ntime_column: ts\n"},
        "models/staging/orders.yml:1",
        ["'kind' must be one of", "did you mean 'incremental'?"],
    ),
    (
        "wrong value: unknown grain",
        {**OK_MODEL, "models/staging/orders.yml": "grain: weekly\n"},
        "models/staging/orders.yml:1",
        ["'grain' must be one of hourly, daily, monthly"],
    ),
    (
        "a duration that is not one",
        {**OK_MODEL, "models/staging/orders.yml": "timeout: soon\n"},
        "models/staging/orders.yml:1",
        ["'timeout' must be a duration"],
    ),
    (
        "unknown pool",
        {**OK_MODEL, "models/staging/orders.yml": "pool: warehous\n"},
        "models/staging/orders.yml:1",
        ["unknown pool 'warehous'"],
    ),
    (
        "incremental without time_column",
        {**OK_MODEL, "models/staging/orders.yml": "description: x\nkind: incremental\n"},
        "models/staging/orders.yml:2",
        ["incremental model needs 'time_column'"],
    ),
    (
        "unknown check type",
        {**OK_MODEL, "models/staging/orders.yml": "checks:\n  - unique: [id]\n  - not_nul: [id]\n"},
        "models/staging/orders.yml:3",
        ["unknown check type 'not_nul'", "did you mean 'not_null'?"],
    ),
    (
        "a check with two types",
        {**OK_MODEL, "models/staging/orders.yml": "checks:\n  - {unique: [id], not_null: [id]}\n"},
        "models/staging/orders.yml:2",
        ["exactly one check type"],
    ),
    (
        "a check expression that does not parse",
        {**OK_MODEL, "models/staging/orders.yml": "checks:\n  - expression: 'amount >= >= 0'\n"},
        "models/staging/orders.yml:2",
        ["check expression does not parse: 'amount >= >= 0'"],
    ),
    (
        "an sql check that does not parse",
        {
            **OK_MODEL,
            "models/staging/orders.yml": (
                "checks:\n  - expression: 'amount >= 0'\n"
                "  - sql: 'select * from {{ this }} where'\n"
            ),
        },
        "models/staging/orders.yml:3",
        ["SQL does not parse: incomplete WHERE"],
    ),
    (
        "sidecar without a model",
        {**OK_MODEL, "models/staging/order.yml": "kind: full\n"},
        "models/staging/order.yml",
        ["sidecar without a model"],
    ),
    (
        "sidecar without a seed",
        {"seeds/raw/order.yml": "column_types: {id: INTEGER}\n"},
        "seeds/raw/order.yml",
        ["sidecar without a seed"],
    ),
    (
        "a sidecar named .yaml",
        {**OK_MODEL, "models/staging/orders.yaml": "kind: view\n"},
        "models/staging/orders.yaml",
        ["not .yaml", "rename it to orders.yml"],
    ),
    (
        "duplicate name: two files that differ in case",
        {**OK_MODEL, "models/staging/Orders.sql": "select 1 as id\n"},
        "models/staging/orders.sql:1",
        ["duplicate name 'staging.orders'", "models/staging/Orders.sql"],
    ),
    (
        "a model outside models/<schema>/",
        {"models/totals.sql": "select 1 as x\n"},
        "models/totals.sql",
        ["models/<schema>/<name>.sql"],
    ),
    (
        "a model name that is not a name",
        {"models/marts/daily-totals.sql": "select 1 as x\n"},
        "models/marts/daily-totals.sql",
        ["'daily-totals' is not a valid name"],
    ),
]


@pytest.mark.parametrize(
    ("files", "where", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_compile_error(write_project, files, where, fragments):
    root = write_project({**SEEDS, **files})
    message = one_message(compile_fails(root))
    assert message.startswith(where), message
    assert re.match(r"^[\w./-]+(:\d+){1,2}: ", message), message
    for fragment in fragments:
        assert fragment in message


PROJECT_CASES = [
    (
        "unknown key in pipe.yml",
        PIPE_YML + "schedul: hourly\n",
        "pipe.yml:7",
        ["unknown key 'schedul'", "did you mean 'schedule'?"],
    ),
    (
        "wrong type in pipe.yml",
        PIPE_YML + "concurrency: many\n",
        "pipe.yml:7",
        ["'concurrency' must be a whole number"],
    ),
    (
        "unknown schedule",
        PIPE_YML.replace("schedule: daily", "schedule: dayly"),
        "pipe.yml:3",
        ["'schedule' must be one of", "did you mean 'daily'?"],
    ),
    (
        "invalid start date",
        PIPE_YML.replace("start: 2026-06-01", "start: June"),
        "pipe.yml:2",
        ["'start' must be a date"],
    ),
    (
        "unknown key in a target",
        PIPE_YML.replace("path: warehouse.duckdb", "pth: x.duckdb"),
        "pipe.yml:6",
        ["unknown key 'pth'", "did you mean 'path'?"],
    ),
    (
        "unknown adapter",
        PIPE_YML.replace("adapter: duckdb", "adapter: duckdbb"),
        "pipe.yml:6",
        ["'adapter' must be one of", "did you mean 'duckdb'?"],
    ),
    (
        "postgres target without dsn",
        PIPE_YML + "  pg: {adapter: postgres}\n",
        "pipe.yml:7",
        ["needs 'dsn'"],
    ),
    (
        "spark target with neither remote nor master",
        PIPE_YML + "  sp: {adapter: spark}\n",
        "pipe.yml:7",
        ["target 'sp' (spark) needs either 'remote'", "'master'"],
    ),
    (
        "unknown project dialect",
        PIPE_YML + "dialect: duckdbb\n",
        "pipe.yml:7",
        ["unknown dialect 'duckdbb'", "did you mean 'duckdb'?"],
    ),
    (
        "unknown target dialect",
        PIPE_YML.replace("path: warehouse.duckdb", "path: w.duckdb, dialect: postgress"),
        "pipe.yml:6",
        ["unknown dialect 'postgress'", "did you mean 'postgres'?"],
    ),
    (
        "a dialect no engine speaks and sqlglot does not know",
        PIPE_YML + "dialect: Snowflake\n",
        "pipe.yml:7",
        ["unknown dialect 'Snowflake'", "did you mean 'snowflake'?"],
    ),
    (
        "missing name",
        PIPE_YML.replace("name: t\n", ""),
        "pipe.yml:1",
        ["missing required key 'name'"],
    ),
    ("invalid YAML in pipe.yml", PIPE_YML + "vars: {a: 1\n", "pipe.yml:", ["invalid YAML"]),
    ("pipe.yml that is not a mapping", "- name: t\n", "pipe.yml:1", ["must be a mapping"]),
    ("empty pipe.yml", "", "pipe.yml:1", ["pipe.yml is empty"]),
]


@pytest.mark.parametrize(
    ("pipe_yml", "where", "fragments"),
    [c[1:] for c in PROJECT_CASES],
    ids=[c[0] for c in PROJECT_CASES],
)
def test_project_config_error(write_project, pipe_yml, where, fragments):
    root = write_project({**SEEDS, **OK_MODEL}, pipe_yml=pipe_yml)
    message = one_message(compile_fails(root))
    assert message.startswith(where), message
    for fragment in fragments:
        assert fragment in message


def test_several_config_errors_are_reported_together(write_project):
    """Every YAML file is validated before any SQL is rendered; all its errors at once."""
    root = write_project(
        {
            **SEEDS,
            **OK_MODEL,
            "models/staging/orders.yml": "kind: nope\ncheks: []\n",
            "seeds/raw/orders.yml": "column_types: [ts]\n",
            "sources.yml": "sources:\n  - {name: events}\n",
        },
        pipe_yml=PIPE_YML + "concurency: 2\n",
    )
    out = compile_fails(root)
    lines = out.strip().splitlines()
    assert lines[-1] == "5 errors", out
    places = [line.removeprefix("error: ").split(": ", 1)[0] for line in lines[:-1]]
    assert places == [
        "models/staging/orders.yml:1",
        "models/staging/orders.yml:2",
        "pipe.yml:7",
        "seeds/raw/orders.yml:1",
        "sources.yml:2",
    ]
    assert "did you mean 'concurrency'?" in out
    assert "did you mean 'checks'?" in out


def test_several_sql_errors_are_reported_together(write_project):
    """Unknown tables, SQL and Jinja errors of every model come in one report."""
    root = write_project(
        {
            **SEEDS,
            "models/a/one.sql": "select * from raw.ordrs\n",
            "models/a/two.sql": "select * from\n",
            "models/a/three.sql": "select * from {{ ref('nope') }}\n",
            "models/a/four.sql": "select {{ oops }} as x\n",
            "models/a/five.sql": "select 1 as x\n",
        }
    )
    out = compile_fails(root)
    lines = out.strip().splitlines()
    assert lines[-1] == "4 errors", out
    places = [line.removeprefix("error: ").split(": ", 1)[0] for line in lines[:-1]]
    assert [p.split(":")[0] for p in places] == [
        "models/a/four.sql",
        "models/a/one.sql",
        "models/a/three.sql",
        "models/a/two.sql",
    ]
    assert "did you mean 'raw.orders'?" in out


def test_unknown_tables_of_several_models_are_all_reported(write_project):
    root = write_project(
        {
            **SEEDS,
            "models/a/one.sql": "select * from raw.ordrs join raw.custmers using (id)\n",
            "models/a/two.sql": "select * from b.nope\n",
        }
    )
    out = compile_fails(root)
    assert out.strip().splitlines()[-1] == "3 errors"
    for name in ("raw.ordrs", "raw.custmers", "b.nope"):
        assert f"unknown table '{name}'" in out


@pytest.mark.parametrize(
    "label",
    [
        "2026-13-01",
        "yesterday",
        "2026-06-31",
        "2026-06-01T24",
        "2026-06-03T00:00/2026-06-01T00:00",
        "2026-6-1",
    ],
)
def test_invalid_interval_label(example_project, label):
    code, out = run_cli(["compile", "--interval", label, "--project", example_project])
    assert code == 2, out
    assert "Traceback" not in out
    assert "interval" in out
    assert files_under(example_project / "plans") == {}


def test_invalid_range(example_project):
    code, out = run_cli(
        ["compile", "--start", "2026-06-05", "--end", "2026-06-01", "--project", example_project]
    )
    assert code == 2 and "must come after" in out and "Traceback" not in out
    code, out = run_cli(["compile", "--start", "2026-06-05", "--project", example_project])
    assert code == 2 and "--start and --end go together" in out
    code, out = run_cli(
        [
            "compile",
            "--interval",
            "2026-06-01",
            "--start",
            "2026-06-01",
            "--end",
            "2026-06-02",
            "--project",
            example_project,
        ]
    )
    assert code == 2 and "either --interval or --start/--end" in out
    assert files_under(example_project / "plans") == {}


def test_unknown_target(example_project):
    out = one_message(compile_fails(example_project, "--target", "prd"))
    assert out.startswith("pipe.yml")
    assert "unknown target 'prd'" in out and "dev, pg" in out


def test_no_project_here(tmp_path):
    code, out = run_cli(["compile", "--interval", "2026-06-01"], cwd=tmp_path)
    assert code == 2
    assert "no pipe.yml" in out and "pipe init" in out and "Traceback" not in out


def test_error_through_the_real_console_script(write_project):
    """The installed `pipe` script: stderr carries the message, stdout nothing, exit 2."""
    root = write_project({**SEEDS, "models/marts/totals.sql": "select *\nfrom raw.ordrs\n"})
    proc = run_pipe(["compile", "--interval", "2026-06-01"], cwd=root)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: models/marts/totals.sql:2:6: unknown table")
    assert "Traceback" not in proc.stderr
    assert not (root / "plans").exists()
