"""Plain `pipe compile` validates the first interval's SQL without building it twice: what
the compile built for a model's reference interval is what a plan of that interval uses
(modelsql.ModelSql), and only the other intervals are built again."""

from __future__ import annotations

import pytest

from conftest import run_cli

JINJA = "select {{ interval_start }} as ts, x from {{ ref('a.b') }}\n"

# an hourly incremental model whose SQL is broken in one hour of the first day only
BROKEN_AT_TWO = """\
select ts, 1 as n from a.e
where ts >= {{ interval_start }} and ts < {{ interval_end }}
{% if interval_start == "TIMESTAMP '2026-06-01 02:00:00'" %} and and {% endif %}
"""


@pytest.fixture
def renders(monkeypatch):
    """The (path, interval label) of every model rendering, in order."""
    from pipe.templating import Renderer

    seen: list[tuple[str, str]] = []
    real = Renderer.render

    def counting(self, path, text, interval, *rest, **kw):
        seen.append((path, interval.label))
        return real(self, path, text, interval, *rest, **kw)

    monkeypatch.setattr(Renderer, "render", counting)
    return seen


def test_plain_compile_renders_each_model_once(write_project, renders):
    root = write_project({"models/a/b.sql": "select 1 as x", "models/a/c.sql": JINJA})
    code, out = run_cli(["compile", "--project", root])
    assert code == 0, out
    assert sorted(renders) == [("models/a/b.sql", "2026-06-01"), ("models/a/c.sql", "2026-06-01")]


def test_a_plan_of_the_first_interval_renders_nothing_again(write_project, renders):
    root = write_project({"models/a/b.sql": "select 1 as x", "models/a/c.sql": JINJA})
    code, out = run_cli(["compile", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    assert sorted(renders) == [("models/a/b.sql", "2026-06-01"), ("models/a/c.sql", "2026-06-01")]
    assert "TIMESTAMP '2026-06-01 00:00:00'" in (root / "plans/dev/2026-06-01.json").read_text()


def test_plain_compile_still_checks_the_intervals_the_compile_did_not_build(write_project):
    root = write_project(
        {
            "sources.yml": "sources:\n  - name: a.e\n",
            "models/a/h.sql": BROKEN_AT_TWO,
            "models/a/h.yml": "kind: incremental\ntime_column: ts\ngrain: hourly\n",
        }
    )
    code, out = run_cli(["compile", "--project", root])
    assert code == 2, out
    assert "models/a/h.sql:3" in out, out
    assert "Traceback" not in out, out


def test_plain_compile_builds_only_the_check_sql_that_can_fail(write_project, monkeypatch):
    from pipe import checks

    built = []
    real = checks.check_sql
    monkeypatch.setattr(
        checks, "check_sql", lambda check, *a, **k: built.append(check.type) or real(check, *a, **k)
    )
    root = write_project(
        {
            "models/a/b.sql": "select 1 as x",
            "models/a/b.yml": "checks:\n  - not_null: x\n  - expression: x > 0\n",
        }
    )
    code, out = run_cli(["compile", "--project", root])
    assert code == 0, out
    assert built == ["expression"]  # a filled-in template cannot fail
    code, out = run_cli(["compile", "--project", root, "--interval", "2026-06-01"])
    assert code == 0, out
    assert sorted(built) == ["expression", "expression", "not_null"]
