"""pipe.yml, sidecars, sources.yml and seed sidecars: values, defaults and validation.

Through the loader on real files where the file layout matters; through the parse functions
(with yamlio, so line numbers are real) for the many small validation cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PIPE_YML, run_cli_json
from pipe import config as cfg
from pipe import yamlio
from pipe.errors import ConfigError, ErrorGroup, UserError
from pipe.intervals import parse_label
from pipe.loader import load_project


def sidecar(text: str, pools=(("warehouse", 2),)) -> tuple[cfg.ModelConfig, list[UserError]]:
    errors: list[UserError] = []
    path = "models/a/b.yml"
    model = cfg.parse_model_config(yamlio.load(text, path), path, errors, pools)
    return model, errors


def messages(errors: list[UserError]) -> list[str]:
    return [str(e) for e in errors]


# ---------------------------------------------------------------- yamlio


def test_yaml_keeps_the_line_of_every_key():
    data = yamlio.load("a: 1\nb:\n  c: 2\n\n  d: [1, 2]\nlist:\n  - {x: 1}\n", "f.yml")
    assert data.line_of("a") == 1 and data.line_of("b") == 2
    assert data["b"].line_of("c") == 3 and data["b"].line_of("d") == 5
    assert data["list"][0].line == 7
    assert data == {"a": 1, "b": {"c": 2, "d": [1, 2]}, "list": [{"x": 1}]}


def test_yaml_duplicate_key_is_an_error_with_its_line():
    with pytest.raises(ConfigError) as info:
        yamlio.load("a: 1\nb: 2\na: 3\n", "f.yml")
    assert str(info.value) == "f.yml:3: duplicate key 'a'"


def test_yaml_syntax_error_has_line_and_column():
    with pytest.raises(ConfigError) as info:
        yamlio.load("a: 1\nb: [1, 2\nc: 3\n", "f.yml")
    assert str(info.value).startswith("f.yml:3:")
    assert "invalid YAML" in str(info.value)


def test_yaml_is_safe():
    with pytest.raises(ConfigError):
        yamlio.load("a: !!python/object/apply:os.system ['true']\n", "f.yml")


# ---------------------------------------------------------------- pipe.yml


def test_minimal_project_defaults(write_project):
    raw = load_project(write_project({}, pipe_yml="name: shop\n"))
    c = raw.config
    assert (c.name, c.dialect, c.schedule, c.concurrency, c.start) == (
        "shop",
        "duckdb",
        "daily",
        4,
        None,
    )
    assert c.default_target == "dev"
    assert c.target(None) == cfg.Target("dev", "duckdb", "duckdb", (("path", "warehouse.duckdb"),))
    assert (raw.models, raw.seeds, raw.sources, raw.macros) == ((), (), (), ())


def test_full_project_config(write_project):
    root = write_project(
        {},
        pipe_yml="""\
name: shop
dialect: duckdb
start: 2026-06-01
schedule: hourly
concurrency: 8
pools: {warehouse: 2, api: 1}
default_target: prod
targets:
  dev: {adapter: duckdb, path: dev.duckdb}
  prod: {adapter: postgres, dsn: "${PIPE_PG_DSN}", schema: analytics}
vars: {min_amount: 0, region: eu}
backfill: {concurrency: 2}
""",
    )
    c = load_project(root).config
    assert c.start == parse_label("2026-06-01").start
    assert c.schedule == "hourly" and c.concurrency == 8
    assert c.pools == (("api", 1), ("warehouse", 2))
    assert c.vars == (("min_amount", 0), ("region", "eu"))
    assert c.backfill_concurrency == 2
    prod = c.target(None)
    assert (prod.name, prod.adapter, prod.dialect) == ("prod", "postgres", "postgres")
    # secrets stay as written until a run connects
    assert prod.option("dsn") == "${PIPE_PG_DSN}"
    assert prod.option("schema") == "analytics"
    assert c.target("dev").option("path") == "dev.duckdb"
    with pytest.raises(ConfigError) as info:
        c.target("staging")
    assert "unknown target 'staging'" in str(info.value) and "dev, prod" in str(info.value)


def test_any_dialect_sqlglot_knows_is_accepted(write_project):
    """A dialect no engine speaks is checked against sqlglot's, in any spelling it takes."""
    root = write_project(
        {},
        pipe_yml="name: t\ndialect: snowflake\ntargets:\n"
        "  dev: {adapter: duckdb, dialect: 'duckdb, normalization_strategy = lowercase'}\n",
    )
    c = load_project(root).config
    assert (c.dialect, c.target(None).dialect) == (
        "snowflake",
        "duckdb, normalization_strategy = lowercase",
    )


def test_environment_is_not_read_at_load(write_project, monkeypatch):
    monkeypatch.setenv("PIPE_PG_DSN", "postgresql://u:secret@h/db")
    pg = '  pg: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}\n'
    root = write_project({}, pipe_yml=PIPE_YML + pg)
    assert "secret" not in repr(load_project(root))


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("pools: {warehouse: 0}\n", "pool 'warehouse' must be a whole number of slots"),
        ("pools: [a]\n", "'pools' must be a mapping"),
        ("vars: [a]\n", "'vars' must be a mapping"),
        ("concurrency: 0\n", "'concurrency' must be at least 1"),
        ("concurrency: true\n", "'concurrency' must be a whole number"),
        ("name2: x\n", "unknown key 'name2'"),
        ("backfill: {concurency: 2}\n", "did you mean 'concurrency'?"),
        ("default_target: prod\n", "default_target 'prod' is not one of the targets"),
    ],
)
def test_project_validation(write_project, extra, fragment):
    pipe_yml = PIPE_YML.replace("default_target: dev\n", "") + extra
    with pytest.raises(UserError) as info:
        load_project(write_project({}, pipe_yml=pipe_yml))
    assert fragment in str(info.value)
    assert str(info.value).startswith("pipe.yml:")


def test_project_name_must_be_a_name(write_project):
    with pytest.raises(ConfigError) as info:
        load_project(write_project({}, pipe_yml="name: my shop\n"))
    assert str(info.value).startswith("pipe.yml:1: 'name' must be letters")


# ---------------------------------------------------------------- model sidecars


def test_sidecar_defaults():
    model, errors = sidecar("description: nothing else\n")
    assert errors == []
    assert model == cfg.ModelConfig(description="nothing else")
    assert (model.kind, model.grain, model.retries, model.timeout) == ("full", None, 0, None)


def test_sidecar_every_key():
    model, errors = sidecar("""\
kind: incremental
time_column: order_ts
grain: hourly
depends_on_past: true
depends_on: [raw.events, customers]
pool: warehouse
max_concurrency: 1
retries: 2
retry_delay: 5s
timeout: 10m
tags: [core, finance]
description: Orders.
columns: {order_id: Primary key, amount: 12}
checks:
  - not_null: [order_id, customer_id]
  - unique: [order_id, [customer_id, order_ts]]
  - accepted_values: {column: status, values: [placed, shipped]}
  - relationships: {column: customer_id, to: staging.customers.customer_id}
  - row_count: {min: 1, max: 100}
  - expression: "amount >= 0"
    severity: warn
  - sql: "select * from {{ this }} where amount > 1e6"
    warn_if: "> 10"
    error_if: "=100"
    name: huge_amounts
""")
    assert errors == []
    assert model.kind == "incremental" and model.time_column == "order_ts"
    assert model.grain == "hourly" and model.depends_on_past is True
    assert model.depends_on == ("raw.events", "customers")
    assert model.depends_on_lines == (5, 5)
    assert (model.pool, model.max_concurrency, model.retries) == ("warehouse", 1, 2)
    assert (model.retry_delay, model.timeout) == (5.0, 600.0)
    assert model.tags == ("core", "finance")
    assert model.columns == (("amount", "12"), ("order_id", "Primary key"))
    assert [(c.type, c.name, c.severity, c.line) for c in model.checks] == [
        ("not_null", "not_null(order_id)", "error", 15),
        ("not_null", "not_null(customer_id)", "error", 15),
        ("unique", "unique(order_id)", "error", 16),
        ("unique", "unique(customer_id, order_ts)", "error", 16),
        ("accepted_values", "accepted_values(status)", "error", 17),
        ("relationships", "relationships(customer_id)", "error", 18),
        ("row_count", "row_count", "error", 19),
        ("expression", "expression(amount >= 0)", "warn", 20),
        ("sql", "huge_amounts", "error", 22),
    ]
    unique_pair = model.checks[3]
    assert unique_pair.args == ("customer_id", "order_ts")
    assert dict(model.checks[4].args) == {"column": "status", "values": ("placed", "shipped")}
    assert dict(model.checks[6].args) == {"min": 1, "max": 100}
    huge = model.checks[-1]
    assert (huge.warn_if, huge.error_if) == ("> 10", "== 100")


def test_a_single_string_is_a_list_of_one():
    model, errors = sidecar("tags: core\ndepends_on: raw.events\nchecks:\n  - not_null: id\n")
    assert errors == []
    assert model.tags == ("core",) and model.depends_on == ("raw.events",)
    assert model.checks[0].args == "id"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("kind: table\n", 1, "'kind' must be one of full, incremental, view"),
        ("kind: incremental\n", 1, "needs 'time_column'"),
        ("grain: weekly\n", 1, "'grain' must be one of hourly, daily, monthly"),
        ("depends_on_past: 1\n", 1, "'depends_on_past' must be true or false"),
        ("depends_on: {a: b}\n", 1, "'depends_on' must be a list of names"),
        ("pool: other\n", 1, "unknown pool 'other'"),
        ("max_concurrency: 0\n", 1, "'max_concurrency' must be at least 1"),
        ("retries: -1\n", 1, "'retries' must be at least 0"),
        ("retries: 1.5\n", 1, "'retries' must be a whole number"),
        ("timeout: forever\n", 1, "'timeout' must be a duration"),
        ("tags: [1, 2]\n", 1, "'tags' must be a list of names"),
        ("columns: [a]\n", 1, "'columns' must be a mapping"),
        ("columns:\n  a: {b: c}\n", 2, "'columns.a' must be text"),
        ("description: [a]\n", 1, "'description' must be text"),
        ("time_column: 3\n", 1, "'time_column' must be text"),
        ("checks: {not_null: [a]}\n", 1, "'checks' must be a list"),
        ("checks:\n  - not_null\n", 1, "each check must be a mapping"),  # the list's line
        ("checks:\n  - {severity: warn}\n", 2, "exactly one check type"),
        ("checks:\n  - nonnull: [a]\n", 2, "unknown check type 'nonnull'"),
        ("checks:\n  - not_null: []\n", 2, "'not_null' takes a list of columns"),
        ("checks:\n  - unique: {a: 1}\n", 2, "'unique' takes a list"),
        ("checks:\n  - accepted_values: [a]\n", 2, "'accepted_values' takes"),
        ("checks:\n  - accepted_values: {column: a, values: []}\n", 2, "non-empty list of values"),
        ("checks:\n  - accepted_values: {column: a}\n", 2, "missing required key 'values'"),
        ("checks:\n  - relationships: {column: a, to: customers}\n", 2, "must be table.column"),
        ("checks:\n  - row_count: {minimum: 1}\n", 2, "unknown key 'minimum'"),
        ("checks:\n  - row_count: {min: many}\n", 2, "'row_count' needs 'min' or 'max'"),
        ("checks:\n  - expression: ''\n", 2, "'expression' takes SQL text"),
        ("checks:\n  - sql: 3\n", 2, "'sql' takes SQL text"),
        ("checks:\n  - not_null: [a]\n    severity: fatal\n", 3, "'severity' must be one of"),
        ("checks:\n  - not_null: [a]\n    warn_if: lots\n", 3, "'warn_if' must be a comparison"),
        ("checks:\n  - not_null: [a]\n  - not_null: [a]\n", 3, "two checks are named"),
        ("- kind: full\n", 1, "must be a mapping"),
    ],
)
def test_sidecar_validation(text, line, fragment):
    _, errors = sidecar(text)
    assert len(errors) == 1, messages(errors)
    [error] = errors
    assert error.at.path == "models/a/b.yml" and error.at.line == line, str(error)
    assert fragment in error.message, str(error)


def test_sidecar_collects_every_error():
    _, errors = sidecar("kind: table\nretries: x\ngrian: daily\ntimeout: never\n")
    assert sorted(e.at.line for e in errors) == [1, 2, 3, 4]
    assert "did you mean 'grain'?" in " ".join(messages(errors))


def test_pools_are_unchecked_when_pipe_yml_is_unreadable(write_project):
    """Invalid YAML in pipe.yml is one error, not one per model that names a pool."""
    root = write_project(
        {"models/a/b.sql": "select 1 as x\n", "models/a/b.yml": "pool: big\n"},
        pipe_yml=PIPE_YML + "pools: {big: 1\n",
    )
    with pytest.raises(ConfigError) as info:
        load_project(root)
    assert str(info.value).startswith("pipe.yml:")
    assert "invalid YAML" in str(info.value)


# ---------------------------------------------------------------- sources.yml and seeds


def test_sources(write_project):
    root = write_project(
        {
            "sources.yml": """\
sources:
  - name: raw.events
    description: Clickstream.
    wait_for: "select count(*) > 0 from raw.events where ts >= {{ interval_end }}"
    poke_every: 1m
    wait_timeout: 2h
  - name: raw.users
"""
        }
    )
    events, users = load_project(root).sources
    assert events == cfg.SourceConfig(
        "raw.events",
        "select count(*) > 0 from raw.events where ts >= {{ interval_end }}",
        60.0,
        7200.0,
        "Clickstream.",
        2,
    )
    assert (users.name, users.wait_for, users.poke_every, users.line) == (
        "raw.users",
        None,
        30.0,
        7,
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sources:\n  - name: events\n", "must be schema.table"),
        ("sources:\n  - wait_for: x\n", "missing required key 'name'"),
        ("sources:\n  - name: a.b\n    poke_every: often\n", "'poke_every' must be a duration"),
        ("sources: {name: a.b}\n", "'sources' must be a list"),
        ("tables: []\n", "unknown key 'tables'"),
    ],
)
def test_sources_validation(write_project, text, fragment):
    with pytest.raises(ConfigError) as info:
        load_project(write_project({"sources.yml": text}))
    assert str(info.value).startswith("sources.yml:")
    assert fragment in str(info.value)


def test_seed_config_and_digest(write_project):
    root = write_project(
        {
            "seeds/raw/orders.csv": "id,ts\n1,2026-06-01\n",
            "seeds/raw/orders.yml": "column_types: {ts: TIMESTAMP, id: BIGINT}\ndescription: x\n",
            "seeds/raw/plain.csv": "a\n1\n",
        }
    )
    orders, plain = load_project(root).seeds
    assert orders.name == "raw.orders" and orders.path == "seeds/raw/orders.csv"
    assert orders.config.column_types == (("id", "BIGINT"), ("ts", "TIMESTAMP"))
    assert plain.config == cfg.SeedConfig()
    assert len(orders.sha256) == 64 and orders.sha256 != plain.sha256


# ---------------------------------------------------------------- the loader


def test_loader_keeps_relative_paths_and_sorts(write_project):
    root = write_project(
        {
            "models/b/z.sql": "select 1 as x\n",
            "models/a/y.sql": "select 1 as x\n",
            "models/a/y.yml": "kind: view\n",
            "macros/z.sql": "{% macro z() %}1{% endmacro %}\n",
            "macros/a.sql": "{% macro a() %}1{% endmacro %}\n",
        }
    )
    raw = load_project(root)
    assert [(m.name, m.path, m.sidecar) for m in raw.models] == [
        ("a.y", "models/a/y.sql", "models/a/y.yml"),
        ("b.z", "models/b/z.sql", None),
    ]
    assert raw.models[0].config.kind == "view"
    assert [p for p, _ in raw.macros] == ["macros/a.sql", "macros/z.sql"]
    assert raw.root == root


def test_loader_reports_every_file_at_once(write_project):
    root = write_project(
        {
            "models/a/b.sql": "select 1 as x\n",
            "models/a/b.yml": "kind: table\n",
            "models/a/c.sql": "select 1 as x\n",
            "models/a/c.yml": "retries: many\n",
            "models/deep/er/d.sql": "select 1 as x\n",
        }
    )
    with pytest.raises(ErrorGroup) as info:
        load_project(root)
    assert [e.at.path for e in info.value.errors] == [
        "models/a/b.yml",
        "models/a/c.yml",
        "models/deep/er/d.sql",
    ]


def test_names_are_case_insensitive(write_project):
    """models/Marts/Daily.sql is the table marts.daily, however a query spells it."""
    root = write_project(
        {
            "seeds/Raw/Orders.csv": "id\n1\n",
            "sources.yml": "sources:\n  - name: Ext.Events\n",
            "models/Marts/Daily.sql": "select * from RAW.orders join ext.EVENTS using (id)\n",
            "models/marts/report.sql": "select * from Marts.DAILY\n",
        }
    )
    rows = run_cli_json(["list", "--json", "--select", "+MARTS.report", "--project", root])
    assert [(r["name"], r["depends_on"]) for r in rows] == [
        ("ext.events", []),
        ("marts.daily", ["ext.events", "raw.orders"]),
        ("marts.report", ["marts.daily"]),
        ("raw.orders", []),
    ]


def test_hidden_files_are_not_part_of_the_project(write_project):
    root = write_project(
        {
            "models/a/b.sql": "select 1 as x\n",
            "models/a/.#b.sql": "an editor's lock file\n",
            "models/.ipynb_checkpoints/c.sql": "select nonsense from nowhere\n",
            "seeds/raw/.~lock.x.csv#": "x\n",
            "seeds/.cache/a/b.csv": "x\n1\n",
        }
    )
    raw = load_project(root)
    assert [m.name for m in raw.models] == ["a.b"] and raw.seeds == ()


def test_yaml_booleans_are_only_true_and_false():
    """YAML 1.1 would read NO (Norway), yes, on and off as booleans."""
    model, errors = sidecar(
        "checks:\n  - accepted_values: {column: country, "
        "values: [NL, NO, yes, off]}\ndepends_on_past: true\n"
    )
    assert errors == []
    assert dict(model.checks[0].args)["values"] == ("NL", "NO", "yes", "off")
    _, errors = sidecar("depends_on_past: yes\n")
    assert messages(errors) == [
        "models/a/b.yml:1: 'depends_on_past' must be true or false, got 'yes'"
    ]


def test_pipe_yaml_is_named(tmp_path: Path):
    (tmp_path / "pipe.yaml").write_text("name: t\n")
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path)
    assert str(info.value) == "pipe.yaml:1: pipe reads pipe.yml, not pipe.yaml (rename it)"


def test_no_pipe_yml(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path)
    assert "no pipe.yml" in str(info.value) and "pipe init" in str(info.value)
