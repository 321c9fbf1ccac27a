"""Hostile projects get a clear, located compile error (exit 2), never a traceback and
never access to the machine (issue 10, compile side)."""

from __future__ import annotations

import pytest

from conftest import run_cli


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
    if code == 0 and "from (" in sql and target == "duckdb":
        return  # same dialect: nothing but the parse, which 600 subqueries pass
    assert_located(code, out, where, "the SQL is nested too deeply to parse")
