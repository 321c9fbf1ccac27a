"""Hostile projects get a clear, located compile error (exit 2), never a traceback and
never access to the machine (issue 10, compile side)."""

from __future__ import annotations

import os

import pytest

from conftest import PIPE_YML, run_cli


def compile_(root, *args):
    return run_cli(["compile", "--project", root, "--interval", "2026-06-01", *args])


def assert_located(code, out, where, said):
    assert code == 2, out
    assert "Traceback" not in out, out
    assert where in out and said in out, out


# -- 1. the sandbox -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr",
    [
        "''.__class__.__mro__[1].__subclasses__()",
        "cycler.__init__.__globals__.os.environ",
        "self._TemplateReference__context.parent",
        "lipsum.__globals__['os'].popen('id').read()",
        "ref.__globals__",
        "var.__func__.__globals__['os'].environ",
    ],
)
def test_model_jinja_cannot_reach_python(write_project, expr):
    root = write_project({"models/a/b.sql": f"select 1 as x\n-- {{{{ {expr} }}}}\n"})
    code, out = compile_(root)
    assert_located(code, out, "models/a/b.sql:2", "")
    assert "unsafe" in out or "undefined" in out, out
    assert "uid=" not in out and "PATH" not in out


def test_macro_jinja_cannot_reach_python(write_project):
    root = write_project(
        {
            "macros/m.sql": "{% macro leak() %}{{ ''.__class__.__base__.__subclasses__() }}"
            "{% endmacro %}\n",
            "models/a/b.sql": "select 1 as x -- {{ leak() }}\n",
        }
    )
    code, out = compile_(root)
    assert_located(code, out, "macros/m.sql:1", "unsafe")
    assert "models/a/b.sql:1" in out, out


# -- 2. macros ------------------------------------------------------------------------------
def test_a_macro_file_with_a_syntax_error_is_a_compile_error(write_project):
    """Even when no model uses Jinja: the file is checked, not only what a model calls."""
    root = write_project(
        {
            "macros/good.sql": "{% macro one() %}1{% endmacro %}\n",
            "macros/bad.sql": "{% macro two() %}\n  2\n{% endmacr %}\n",
            "models/a/b.sql": "select 1 as x\n",
        }
    )
    code, out = compile_(root)
    assert_located(code, out, "macros/bad.sql:3:", "Jinja syntax error")
    assert "endmacr" in out, out
    assert out.count("macros/bad.sql") == 1, out


def test_two_macros_with_one_name_are_a_compile_error(write_project):
    root = write_project(
        {
            "macros/a.sql": "{% macro cents(x) %}{{ x }} * 100{% endmacro %}\n",
            "macros/b.sql": "-- money\n\n{% macro cents(x) %}{{ x }} * 100.0{% endmacro %}\n",
            "models/a/b.sql": "select {{ cents('1') }} as x\n",
        }
    )
    code, out = compile_(root)
    assert_located(
        code, out, "macros/b.sql:3:", "macro 'cents' is defined twice: here and at macros/a.sql:1"
    )


# -- 3. error text --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql, where, said",
    [
        ("select 1 as x from a.", "models/a/b.sql:1:", "Expected table name but the SQL ends"),
        (
            "select 1 as x\nfrom a.b\njoin on 1 = 1\n",
            "models/a/b.sql:3:",
            "Expected table name but got 'on'",
        ),
    ],
)
def test_a_sql_syntax_error_is_told_in_words(write_project, sql, where, said):
    root = write_project({"models/a/b.sql": sql})
    code, out = compile_(root)
    assert_located(code, out, where, said)
    assert "Token" not in out and "SENTINEL" not in out, out


def test_a_line_inside_a_jinja_loop_points_at_the_template_line(write_project):
    loop = (
        "select 1 as x\n"
        "{% for i in range(5) %}\n"
        "union all\n"
        "select {{ i }} as x\n"
        "{% endfor %}\n"
        "union all\n"
        "select 2 as x from a.nope\n"
    )
    root = write_project({"models/a/b.sql": loop, "models/a/c.sql": loop.replace("a.nope", "(")})
    code, out = compile_(root)
    assert_located(code, out, "models/a/b.sql:7:20: unknown table 'a.nope'", "")
    assert_located(code, out, "models/a/c.sql:7:", "SQL syntax error")


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
@pytest.mark.parametrize(
    "sql, where",
    [
        ("select " + "(" * 600 + "1" + ")" * 600 + " as x", "models/a/b.sql:1:8"),
        ("select {{ '(' * 600 }}1" + ")" * 600 + " as x", "models/a/b.sql:1"),
        ("select x from (" * 600 + "select 1 as x" + ") t" * 600, "models/a/b.sql:1"),
    ],
)
def test_deep_nesting_is_a_compile_error(write_project, sql, where, target):
    pipe_yml = None
    if target == "postgres":  # compiling for Postgres connects to nothing
        from conftest import PIPE_YML

        pipe_yml = PIPE_YML.replace(
            "adapter: duckdb, path: warehouse.duckdb", 'adapter: postgres, dsn: "postgresql:///x"'
        )
    root = write_project({"models/a/b.sql": sql}, **({"pipe_yml": pipe_yml} if pipe_yml else {}))
    code, out = compile_(root)
    assert "RecursionError" not in out and "Traceback" not in out, out
    assert_located(code, out, where, "the SQL is nested too deeply to parse (600 parentheses deep)")


def test_the_nesting_limit_is_pipes_not_the_parsers(write_project):
    """One limit on every machine: the compiled sqlglot build parses 257 levels that the
    pure-Python build cannot, and CI once compiled 600 levels that a laptop refused."""
    from pipe.sql import MAX_NESTING

    deep = "select " + "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1) + " as x"
    code, out = compile_(write_project({"models/a/b.sql": deep}))
    assert_located(code, out, "models/a/b.sql:1:8", f"({MAX_NESTING + 1} parentheses deep)")
    ok = "select " + "(" * 40 + "1" + ")" * 40 + " as x"
    code, out = compile_(write_project({"models/a/b.sql": ok}))
    assert code == 0, out


# -- 4. names -------------------------------------------------------------------------------
PG_YML = PIPE_YML.replace(
    "dev: {adapter: duckdb, path: warehouse.duckdb}",
    'dev: {adapter: postgres, dsn: "${PIPE_PG_DSN}"}',
)


@pytest.fixture(params=["duckdb", "postgres"])
def target(request, monkeypatch):
    """The pipe.yml of a project on each engine (Postgres: a fresh database)."""
    if request.param == "duckdb":
        return PIPE_YML
    monkeypatch.setenv("PIPE_PG_DSN", request.getfixturevalue("pg_dsn"))
    return PG_YML


def _rows(root, pipe_yml, table):
    if "postgres" in pipe_yml:
        import psycopg

        with psycopg.connect(os.environ["PIPE_PG_DSN"]) as con:
            return con.execute(f"select * from {table} order by 1").fetchall()
    import duckdb

    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(f"select * from {table} order by 1").fetchall()


def test_quoted_and_mixed_case_names_resolve_and_run(write_project, target):
    root = write_project(
        {
            "models/s/orders.sql": "select 1 as x",
            "models/a/quoted.sql": 'select x + 1 as x from "s"."ORDERS"',
            "models/a/mixed.sql": "select x + 2 as x from S.Orders",
            "models/a/bare.sql": 'select x + 3 as x from "ORDERS"',
        },
        pipe_yml=target,
    )
    code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    plan = (root / "plans" / "dev" / "2026-06-01.json").read_text()
    assert '"s".s.orders' not in plan and '\\"s\\".s.orders' not in plan, plan
    for table, x in (("a.quoted", 2), ("a.mixed", 3), ("a.bare", 4)):
        assert _rows(root, target, table) == [(x,)], table


@pytest.mark.parametrize("word", ["user", "order", "all", "select", "full"])
def test_reserved_words_cannot_name_a_table_or_schema(write_project, target, word):
    """pipe writes names unquoted (`create schema s`, `alter table ... rename to t`), so a
    reserved word would fail at run time on one engine or the other: refused up front."""
    root = write_project(
        {
            f"models/a/{word}.sql": "select 1 as x",
            f"models/{word}/b.sql": "select 1 as x",
            f"seeds/{word}/c.csv": "x\n1\n",
        },
        pipe_yml=target,
    )
    code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01"])
    assert_located(
        code,
        out,
        f"models/a/{word}.sql:1: 'a.{word}': '{word}' is a reserved word in SQL and cannot"
        " name a table",
        "",
    )
    assert f"models/{word}/b.sql:1: '{word}.b': '{word}' is a reserved word in SQL and" in out
    assert f"seeds/{word}/c.csv:1: '{word}.c': '{word}' is a reserved word" in out, out
    assert "cannot name a schema" in out, out
    assert not (root / "plans").exists()


def test_words_only_duckdb_functions_use_work_as_table_names(write_project, target):
    words = sorted({"semi", "map", "columns", "struct", "anti"})
    files = {f"models/a/{w}.sql": f"select {i} as x" for i, w in enumerate(words)}
    files[f"models/a/{words[0]}.yml"] = "checks:\n  - not_null: x\n"
    files["models/b/reader.sql"] = "\nunion all\n".join(f"select x from a.{w}" for w in words)
    root = write_project(files, pipe_yml=target)
    for force in ([], ["--force"]):  # a republish too
        code, out = run_cli(["run", "--project", root, "--interval", "2026-06-01", *force])
        assert code == 0, out
    assert _rows(root, target, "b.reader") == [(i,) for i in range(len(words))]


def test_the_reserved_words_are_what_postgres_and_duckdb_reserve():
    import duckdb
    import pglast.keywords

    from pipe.engines import DuckDBRules, PostgresRules

    def duck(*categories):
        listed = ", ".join(f"'{c}'" for c in categories)
        return {
            w
            for (w,) in duckdb.sql(
                f"select keyword_name from duckdb_keywords() where keyword_category in ({listed})"
            ).fetchall()
        }

    pg = set(pglast.keywords.RESERVED_KEYWORDS) | set(pglast.keywords.TYPE_FUNC_NAME_KEYWORDS)
    assert PostgresRules.reserved_words == pg
    assert PostgresRules.table_name_words == set()
    assert DuckDBRules.reserved_words == duck("reserved", "type_function")
    # a type_function keyword names a table after its schema (`raw.semi`); a reserved one not
    assert DuckDBRules.table_name_words == duck("type_function") - duck("reserved")


def test_a_name_longer_than_the_target_keeps_is_a_compile_error(write_project, monkeypatch):
    from pipe.plan import temp_name

    monkeypatch.setenv("PIPE_PG_DSN", "postgresql:///unused")
    long = "t" * 64
    files = {f"models/a/{long}.sql": "select 1 as x", f"models/a/{'u' * 63}.sql": "select 1 as x"}
    root = write_project(files, pipe_yml=PG_YML)
    code, out = compile_(root)
    assert_located(
        code,
        out,
        f"models/a/{long}.sql:1: '{long}' is 64 characters long; postgres keeps 63",
        "shorten it to at most 63",
    )
    assert "u" * 63 + ".sql" not in out
    # what pipe derives from a name fits too: temp tables cut the name short
    assert len(temp_name("a." + "u" * 63, "f" * 64).split(".")[1]) <= 63
    # DuckDB has no such limit
    root = write_project(files, name="duck")
    assert compile_(root)[0] == 0


def test_pipes_own_schema_is_refused_for_models_seeds_and_sources(write_project):
    root = write_project(
        {
            "models/_pipe/ledger.sql": "select 1 as x",
            "seeds/_pipe/s.csv": "x\n1\n",
            "sources.yml": "sources:\n  - name: _pipe.runs\n",
            "models/a/b.sql": "select 1 as x",
        }
    )
    code, out = compile_(root)
    assert_located(
        code, out, "models/_pipe/ledger.sql:1: '_pipe.ledger': schema '_pipe' is pipe's own", ""
    )
    assert "seeds/_pipe/s.csv:1: '_pipe.s': schema '_pipe'" in out, out
    assert "sources.yml:2: '_pipe.runs': schema '_pipe'" in out, out


@pytest.mark.parametrize(
    "sql, where",
    [
        ("select x\nfrom a.b", "models/a/b.sql:2:6"),
        ("select x from b", "models/a/b.sql:1:15"),
        ("select x from {{ ref('a.b') }}", "models/a/b.sql:1"),
    ],
)
def test_a_model_that_reads_itself_is_a_cycle(write_project, sql, where):
    root = write_project({"models/a/b.sql": sql})
    code, out = compile_(root)
    assert_located(code, out, where, "dependency cycle: a.b -> a.b (the model reads its own table)")


def test_a_model_that_reads_itself_through_this_is_no_cycle(write_project):
    root = write_project(
        {"models/a/b.sql": "select 1 as x", "models/a/b.yml": "depends_on_past: true\n"}
    )
    (root / "models/a/b.sql").write_text(
        "select 1 as x\n{% if false %}union all select x from {{ this }}{% endif %}\n"
    )
    assert compile_(root)[0] == 0


# -- 5. running totals -----------------------------------------------------------------------
RUNNING_TOTAL = """\
with sales as (
    select * from (values (timestamp '2026-06-01 10:00', 5), (timestamp '2026-06-02 10:00', 7),
                          (timestamp '2026-06-03 10:00', 11)) as t (day, amount)
)
select {{ interval_start }} as ts,
       coalesce(sum(amount), 0)
{%- if is_incremental() %}
       + (select total from {{ this }} where ts = {{ interval_start }} - interval '1 day')
{%- endif %} as total
from sales
where day >= {{ interval_start }} and day < {{ interval_end }}
"""


def test_a_running_total_starts_at_the_first_interval_with_is_incremental(write_project, target):
    root = write_project(
        {
            "models/m/total.sql": RUNNING_TOTAL,
            "models/m/total.yml": "kind: incremental\ntime_column: ts\ndepends_on_past: true\n",
        },
        pipe_yml=target,
    )
    code, out = run_cli(
        ["compile", "--project", root, "--start", "2026-06-01", "--end", "2026-06-04"]
    )
    assert code == 0, out
    first = (root / "plans/dev/2026-06-01.json").read_text().lower()
    second = (root / "plans/dev/2026-06-02.json").read_text().lower()
    assert "m.total" not in first.split('"sql"')[1].split("from sales")[0], first
    assert "from m.total" in second, second
    for day in ("2026-06-01", "2026-06-02", "2026-06-03"):
        code, out = run_cli(["run", "--project", root, "--interval", day])
        assert code == 0, out
    assert [r[1] for r in _rows(root, target, "m.total")] == [5, 12, 23]


def test_is_incremental_needs_depends_on_past(write_project):
    root = write_project(
        {
            "models/m/total.sql": "select 1 as x\n{% if is_incremental() %}, 2 as y{% endif %}\n",
        }
    )
    code, out = compile_(root)
    assert_located(
        code,
        out,
        "models/m/total.sql:2:",
        "is_incremental() needs 'kind: incremental' and 'depends_on_past: true'",
    )


# -- 6. plain compile validates -----------------------------------------------------------------
@pytest.mark.parametrize(
    "files, where, said",
    [
        (
            {"models/a/b.yml": 'checks:\n  - sql: "drop table a.b"\n'},
            "models/a/b.yml:2:",
            "a check's sql must be one read-only SELECT, not DROP",
        ),
        (
            {"models/a/b.yml": 'checks:\n  - expression: "x >"\n'},
            "models/a/b.yml:2:",
            "check expression does not parse",
        ),
        (
            {"sources.yml": 'sources:\n  - name: raw.e\n    wait_for: "delete from raw.e"\n'},
            "sources.yml:2:",
            "must be one read-only SELECT, not DELETE",
        ),
    ],
)
def test_plain_compile_validates_what_interval_validates(write_project, files, where, said):
    root = write_project({"models/a/b.sql": "select 1 as x", **files})
    for _ in range(2):  # a second, warm compile says it again
        code, out = run_cli(["compile", "--project", root])
        assert_located(code, out, where, said)
    assert not (root / "plans").exists()


def test_plain_compile_of_a_valid_project_writes_no_plan(write_project):
    root = write_project(
        {"models/a/b.sql": "select 1 as x", "models/a/b.yml": "checks:\n  - not_null: x\n"}
    )
    for _ in range(2):
        code, out = run_cli(["compile", "--project", root])
        assert code == 0, out
    assert not (root / "plans").exists()
