"""Fingerprints follow meaning (SPEC §7): a model's fingerprint hashes its parsed SQL
(comments, whitespace and keyword case do not count), its config, only the vars and macros
it uses, and its upstream fingerprints. An edit that changes none of these reruns nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PIPE_YML, run_cli, write_files
from pipe.compiler import compile_project
from pipe.loader import load_project
from runner_helpers import attempts, run, statuses_by_model

VARS_YML = PIPE_YML + "vars:\n  used: 1\n  through_macro: 'a'\n  unused: 2\n"

MACROS = """\
{# helpers #}
{% macro scaled(c) -%}
{{ c }} * {{ var('through_macro') | length }}
{%- endmacro %}

{% macro outer(c) -%}
{{ inner(c) }} + 0
{%- endmacro %}

{% macro inner(c) -%}
{{ c }} * 2
{%- endmacro %}

{% macro unused_macro(c) -%}
{{ c }} * 3
{%- endmacro %}
"""

PROJECT = {
    "seeds/raw/orders.csv": "id,amount\n1,10\n2,20\n",
    "macros/m.sql": MACROS,
    "models/staging/orders.sql": (
        "-- the orders, cleaned\nselect id, amount from raw.orders where amount >= 0\n"
    ),
    "models/marts/plain.sql": "select id, amount from staging.orders\n",
    "models/marts/uses_var.sql": (
        "select id, amount * {{ var('used') }} as amount from {{ ref('staging.orders') }}\n"
    ),
    "models/marts/uses_macro.sql": (
        "select id, {{ scaled('amount') }} as amount from staging.orders\n"
    ),
    "models/marts/uses_outer.sql": (
        "{% set col = 'amount' %}\nselect id, {{ outer(col) }} as amount from staging.orders\n"
    ),
    "models/reports/top.sql": "select max(amount) as top from marts.plain\n",
}


def fingerprints(root: Path, use_cache: bool = True) -> dict[str, str]:
    raw = load_project(root, use_cache=use_cache, write_cache=use_cache)
    project = compile_project(raw, use_cache=use_cache, write_cache=use_cache)
    project.save_cache()
    return {n: node.fingerprint for n, node in project.nodes.items()}


@pytest.fixture
def project(write_project):
    return write_project(PROJECT, pipe_yml=VARS_YML)


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, (old, text)
    path.write_text(text.replace(old, new), encoding="utf-8")


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    assert before.keys() == after.keys()
    return {n for n in before if before[n] != after[n]}


MODELS = {
    "staging.orders",
    "marts.plain",
    "marts.uses_var",
    "marts.uses_macro",
    "marts.uses_outer",
    "reports.top",
}


# ---------------------------------------------------------------- the SQL's spelling


@pytest.mark.parametrize(
    "old, new",
    [
        ("-- the orders, cleaned\n", ""),  # a comment removed
        ("-- the orders, cleaned\n", "-- the orders\n/* block\ncomment */\n"),  # comments edited
        ("where amount >= 0", "/* why */ where amount >= 0 -- always"),  # comments inside
        (
            "select id, amount from raw.orders where",
            "SELECT   id,\n\tamount\nFROM raw.orders\n\n  WHERE",
        ),  # whitespace and keyword case
        ("where amount >= 0", "wHeRe amount>=0"),
    ],
    ids=["drop-comment", "edit-comment", "inline-comments", "layout-and-case", "mixed-case"],
)
def test_spelling_changes_no_fingerprint(project, old, new):
    before = fingerprints(project)
    edit(project, "models/staging/orders.sql", old, new)
    assert changed(before, fingerprints(project)) == set()


def test_function_name_case_changes_nothing(project):
    before = fingerprints(project)
    edit(project, "models/reports/top.sql", "max(amount)", "MAX( amount )")
    assert changed(before, fingerprints(project)) == set()


def test_a_real_sql_change_changes_the_model_and_everything_downstream(project):
    before = fingerprints(project)
    edit(project, "models/staging/orders.sql", "amount >= 0", "amount > 0")
    assert changed(before, fingerprints(project)) == MODELS


@pytest.mark.parametrize(
    "old, new",
    [
        (
            "select id, amount from staging.orders",
            "select id, amount as Amount from staging.orders",
        ),
        ("select id, amount from staging.orders", "select id, 'amount' from staging.orders"),
        ("select id, amount from staging.orders", 'select id, "amount" from staging.orders'),
    ],
    ids=["identifier-case", "string-not-identifier", "quoted-identifier"],
)
def test_identifiers_and_strings_keep_their_spelling(project, old, new):
    before = fingerprints(project)
    edit(project, "models/marts/plain.sql", old, new)
    assert changed(before, fingerprints(project)) == {"marts.plain", "reports.top"}


def test_a_bare_name_that_resolves_elsewhere_changes_the_fingerprint(write_project):
    """`from orders` reads staging.orders; once that model is renamed and marts.orders
    is the only `orders`, the same tokens read another table."""
    files = {
        "models/staging/orders.sql": "select 1 as id\n",
        "models/marts/report.sql": "select id from orders\n",
    }
    root = write_project(files)
    before = fingerprints(root)
    (root / "models/staging/orders.sql").rename(root / "models/staging/orders_v1.sql")
    write_files(root, {"models/marts/orders.sql": "select 1 as id\n"})
    after = fingerprints(root)
    # marts.orders has the SQL staging.orders had: only the name it is read by differs
    assert after["marts.orders"] == before["staging.orders"]
    assert after["marts.report"] != before["marts.report"]


def test_warm_and_cold_compiles_give_the_same_fingerprints(project):
    cold = fingerprints(project, use_cache=False)
    assert fingerprints(project) == cold  # fills the caches
    edit(project, "models/marts/plain.sql", "select", "select ")  # the compiled cache misses
    assert fingerprints(project) == cold  # from the parse cache


# ---------------------------------------------------------------- vars and macros


def test_a_var_the_model_does_not_use_changes_nothing(project):
    before = fingerprints(project)
    edit(project, "pipe.yml", "unused: 2", "unused: 3")
    assert changed(before, fingerprints(project)) == set()


def test_a_var_the_model_uses_changes_it(project):
    before = fingerprints(project)
    edit(project, "pipe.yml", "used: 1", "used: 5")
    assert changed(before, fingerprints(project)) == {"marts.uses_var"}


def test_a_var_used_through_a_macro_changes_the_model(project):
    before = fingerprints(project)
    edit(project, "pipe.yml", "through_macro: 'a'", "through_macro: 'b'")  # same length
    assert changed(before, fingerprints(project)) == {"marts.uses_macro"}


def test_a_macro_the_model_does_not_use_changes_nothing(project):
    before = fingerprints(project)
    edit(project, "macros/m.sql", "{{ c }} * 3", "{{ c }} * 4")  # same file
    edit(project, "macros/m.sql", "{# helpers #}", "{# helpers, edited #}")
    write_files(project, {"macros/other.sql": "{% macro more() %}1{% endmacro %}\n"})
    assert changed(before, fingerprints(project)) == set()


def test_a_macro_the_model_uses_changes_it(project):
    before = fingerprints(project)
    edit(project, "macros/m.sql", "{{ c }} * {{ var", "{{ c }} + {{ var")
    assert changed(before, fingerprints(project)) == {"marts.uses_macro"}


def test_a_macro_called_by_a_used_macro_changes_the_model(project):
    before = fingerprints(project)
    edit(project, "macros/m.sql", "{{ c }} * 2", "{{ c }} * 7")
    assert changed(before, fingerprints(project)) == {"marts.uses_outer"}


def test_a_var_read_by_a_computed_name_counts_every_var(write_project):
    root = write_project(
        {
            "models/a/b.sql": "{% set k = 'x' %}select {{ var(k) }} as v\n",
            "models/a/c.sql": "select {{ var('x') }} as v\n",
        },
        pipe_yml=PIPE_YML + "vars:\n  x: 1\n  other: 2\n",
    )
    before = fingerprints(root)
    edit(root, "pipe.yml", "other: 2", "other: 3")
    assert changed(before, fingerprints(root)) == {"a.b"}


def test_an_import_counts_every_macro(write_project):
    root = write_project(
        {
            "macros/m.sql": "{% macro one() %}1{% endmacro %}\n{% macro two() %}2{% endmacro %}\n",
            "models/a/b.sql": "{% import 'macros/m.sql' as m %}select {{ m.one() }} as v\n",
            "models/a/c.sql": "select {{ one() }} as v\n",
        }
    )
    before = fingerprints(root)
    edit(root, "macros/m.sql", "2{% endmacro", "22{% endmacro")
    assert changed(before, fingerprints(root)) == {"a.b"}


# ---------------------------------------------------------------- runs


def test_a_comment_only_edit_reruns_nothing(project):
    """After a run, a comment-only edit, `pipe compile` and `pipe run` skip every task."""
    code, out = run(project)
    assert code == 0, out
    edit(
        project,
        "models/staging/orders.sql",
        "-- the orders, cleaned\n",
        "/* the orders,\n   cleaned */\n",
    )
    edit(project, "models/marts/uses_macro.sql", "select id,", "SELECT id, -- scaled\n")
    edit(project, "macros/m.sql", "{{ c }} * 3", "{{ c }} * 4")
    edit(project, "pipe.yml", "unused: 2", "unused: 3")
    code, out = run_cli(["compile", "--project", project, "--interval", "2026-06-01"])
    assert code == 0, out
    code, out = run(project)
    assert code == 0, out
    assert "7 skipped" in out, out  # the seed and six models
    assert all(s == {"skipped"} for s in statuses_by_model(project).values())
    assert attempts(project) == []

    edit(project, "models/staging/orders.sql", "amount >= 0", "amount > 0")
    code, out = run_cli(["compile", "--project", project, "--interval", "2026-06-01"])
    assert code == 0, out
    code, out = run(project)
    assert code == 0, out
    assert {a["model"] for a in attempts(project)} == MODELS


BRANCHED = {
    "models/a/b.sql": (
        "select 1 as id,\n"
        "{% if ds >= \"DATE '2026-07-01'\" %}\n"
        "  2 as later -- from July\n"
        "{% else %}\n"
        "  1 as later\n"
        "{% endif %}\n"
    ),
}


def test_an_edit_in_a_branch_the_reference_interval_does_not_take_counts(write_project):
    """The rendering for the first interval shows one branch; the template's other
    branches count too (they run for other intervals), by their SQL's meaning."""
    root = write_project(BRANCHED)
    before = fingerprints(root)
    edit(root, "models/a/b.sql", "  2 as later -- from July\n", "  2  AS later\n")
    assert changed(before, fingerprints(root)) == set()
    edit(root, "models/a/b.sql", "  2  AS later\n", "  3 as later\n")
    assert changed(before, fingerprints(root)) == {"a.b"}


def test_comments_and_whitespace_inside_a_used_macro_change_nothing(project):
    before = fingerprints(project)
    edit(project, "macros/m.sql", "{{ c }} * 2", "{{ c }}  *  2 /* twice */")
    edit(project, "macros/m.sql", "{% macro inner(c) -%}", "{# doubles #}{% macro inner(c) -%}")
    assert changed(before, fingerprints(project)) == set()


def test_worker_processes_give_the_fingerprints_of_one_process(write_project, monkeypatch):
    """A cold compile of many models parses them in forked workers (sqlprefetch.PARALLEL_MIN);
    their canonical digests and Jinja uses are the ones the parent would make."""
    import pipe.loader
    import pipe.parallel
    import pipe.sqlprefetch

    files = {"macros/m.sql": MACROS}
    for i in range(pipe.sqlprefetch.PARALLEL_MIN + 20):
        files[f"models/m/t{i}.sql"] = (
            f"select {i} as id -- model {i}\n"
            if i % 3
            else f"{{% if true %}}select {{{{ scaled('{i}') }}}} as id{{% endif %}}\n"
        )
    root = write_project(files, pipe_yml=VARS_YML)
    monkeypatch.setattr(pipe.loader, "workers", lambda: 2)
    monkeypatch.setattr(pipe.sqlprefetch, "workers", lambda: 2)
    monkeypatch.setattr(pipe.parallel, "workers", lambda: 2)
    pools = []
    real_pool = pipe.parallel.fork_pool

    def counting_pool(*args):
        pools.append(args)
        return real_pool(*args)

    monkeypatch.setattr(pipe.parallel, "fork_pool", counting_pool)
    pooled = fingerprints(root)
    assert pools  # the workers parsed
    monkeypatch.setattr(pipe.sqlprefetch, "PARALLEL_MIN", 10**9)
    assert fingerprints(root, use_cache=False) == pooled


# ---------------------------------------------------------------- one model edited


def test_an_edited_model_is_compiled_alone_and_only_its_downstream_refingerprinted(
    project, monkeypatch
):
    """An edit to one model compiles that model again, and fingerprints again only it and
    what reads it; the result is the cold compile's."""
    import pipe.compiler

    built: list[str] = []
    hashed: list[str] = []
    real_model, real_fingerprint = pipe.compiler._model, pipe.compiler._fingerprint

    def counting_model(builder, m, *args):
        built.append(m.name)
        return real_model(builder, m, *args)

    def counting_fingerprint(raw, target, found, ups, nodes):
        hashed.append(found)
        return real_fingerprint(raw, target, found, ups, nodes)

    fingerprints(project)
    monkeypatch.setattr(pipe.compiler, "_model", counting_model)
    monkeypatch.setattr(pipe.compiler, "_fingerprint", counting_fingerprint)
    before = fingerprints(project)
    assert built == [] and hashed == []  # unchanged: served whole from the compiled cache

    edit(project, "models/marts/plain.sql", "select id, amount", "select id, amount + 1 as amount")
    after = fingerprints(project)
    assert built == ["marts.plain"]
    assert len(hashed) == 2  # marts.plain and reports.top, which reads it
    assert changed(before, after) == {"marts.plain", "reports.top"}
    assert after == fingerprints(project, use_cache=False)

    built.clear(), hashed.clear()
    edit(project, "models/marts/plain.sql", "select id", "-- a comment\nselect id")
    again = fingerprints(project)
    assert built == ["marts.plain"] and len(hashed) == 1  # same meaning: its readers kept
    assert again == after

    built.clear()
    edit(project, "pipe.yml", "unused: 2", "unused: 3")  # what every model depends on
    assert fingerprints(project) == after
    models = [n for n in after if not n.startswith("raw.")]
    assert sorted(built) == sorted(models)


def test_an_edit_that_breaks_a_downstream_model_is_still_reported(project):
    """A model kept from the last compile is kept with its reads; a model it reads that
    disappears (renamed) is an unknown table again."""
    fingerprints(project)
    (project / "models/marts/plain.sql").rename(project / "models/marts/plainer.sql")
    code, out = run_cli(["compile", "--project", project])
    assert code == 2 and "models/reports/top.sql:1" in out and "marts.plain" in out, out
