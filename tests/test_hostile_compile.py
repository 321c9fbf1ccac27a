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
