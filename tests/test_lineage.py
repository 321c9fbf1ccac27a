"""Column lineage: one case per block of tests/fixtures/lineage.sql (cases as data), and
the `pipe lineage` command's output and exit codes.

Each case becomes the model `cases.subject` of a tiny project; `pipe lineage
cases.subject --json` must report exactly the expected columns, parents and sources.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli, run_cli_json

FIXTURE = Path(__file__).parent / "fixtures" / "lineage.sql"

AROUND = {
    "seeds/raw/orders.csv": "id,customer_id,amount,status,ts\n"
    "1,1,10.5,placed,2026-06-01 10:00:00\n",
    "seeds/raw/people.csv": "id,name,country\n1,ann,NL\n",
    "sources.yml": "sources:\n"
    "  - name: ext.events\n"
    "    columns: {id: Event id, person_id: Who, kind: What, ts: When}\n"
    "  - name: ext.blob\n",
    "models/staging/orders.sql": (
        "select id, customer_id, amount * 100 as cents, status, ts from raw.orders\n"
    ),
    "models/staging/people.sql": "select * from raw.people\n",
    "models/marts/orders.sql": "select * from staging.orders\n",
}


def read_cases(path: Path) -> list[tuple[str, str, list[tuple[str, list[str], list | None]]]]:
    """(title, sql, [(column, parents, sources or None)]) per case."""
    cases = []
    title, lines, expect = None, [], []

    def names(text: str) -> list[str]:
        return [n.strip() for n in text.split(",") if n.strip()]

    for line in path.read_text(encoding="utf-8").splitlines() + ["-- title: <end>"]:
        if line.startswith("-- title:"):
            if title is not None:
                assert expect, f"case {title!r} has no '-- expect:' line"
                cases.append((title, "\n".join(lines).strip() + "\n", expect))
            title, lines, expect = line.removeprefix("-- title:").strip(), [], []
        elif title is None:
            continue  # the file's header
        elif line.startswith("-- expect:"):
            column, _, rest = line.removeprefix("-- expect:").partition(":")
            parents, arrow, sources = rest.partition("=>")
            expect.append((column.strip(), names(parents), names(sources) if arrow else None))
        elif line.strip() or not expect:
            assert not expect, f"case {title!r}: SQL after an '-- expect:' line"
            lines.append(line)
    return cases


CASES = read_cases(FIXTURE)


def test_fixture_file_is_well_formed():
    titles = [c[0] for c in CASES]
    assert len(CASES) >= 25
    assert len(set(titles)) == len(titles), "two cases share a title"
    for title, sql, expect in CASES:
        assert sql.strip(), title
        for column, parents, sources in expect:
            assert parents == sorted(parents), f"{title}: keep parents of {column} sorted"
            assert sources is None or sources == sorted(sources), title


@pytest.mark.parametrize(("sql", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_lineage(write_project, sql, expect):
    root = write_project({**AROUND, "models/cases/subject.sql": sql})
    rows = run_cli_json(["lineage", "cases.subject", "--json", "--project", root])
    assert [r["column"] for r in rows] == [f"cases.subject.{c}" for c, _, _ in expect]
    for row, (column, parents, sources) in zip(rows, expect, strict=True):
        assert row["parents"] == parents, column
        if sources is not None:
            assert row["sources"] == sources, column


# ---------------------------------------------------------------- the command
# Text output is compared with tests/snapshots/test_lineage/ (update with
# `pytest tests/test_lineage.py --snapshot-update` and review the diff).


def test_column_json_on_the_example(example_project):
    row = run_cli_json(
        ["lineage", "marts.customer_orders.lifetime_value", "--json", "--project", example_project]
    )
    assert row == {
        "column": "marts.customer_orders.lifetime_value",
        "parents": ["staging.orders.amount"],
        "sources": ["raw.orders.quantity", "raw.products.price_cents"],
    }


def test_model_text(example_project, snapshot):
    code, out = run_cli(["lineage", "staging.orders", "--project", example_project])
    assert code == 0, out
    snapshot.assert_match(out, "staging_orders.txt")


def test_downstream_json_and_text(example_project, snapshot):
    row = run_cli_json(
        [
            "lineage",
            "raw.products.price_cents",
            "--downstream",
            "--json",
            "--project",
            example_project,
        ]
    )
    assert row["column"] == "raw.products.price_cents"
    assert row["children"] == ["staging.products.price_cents"]
    assert "reports.vip_customers.lifetime_value" in row["downstream"]
    assert row["downstream"] == sorted(row["downstream"])
    code, out = run_cli(
        ["lineage", "raw.products.price_cents", "--downstream", "--project", example_project]
    )
    assert code == 0, out
    snapshot.assert_match(out, "price_cents_downstream.txt")


def test_a_seed_column_has_no_parents(example_project):
    row = run_cli_json(["lineage", "raw.orders.quantity", "--json", "--project", example_project])
    assert row == {"column": "raw.orders.quantity", "parents": [], "sources": []}


def test_unknown_column_is_exit_2_with_a_suggestion(example_project):
    code, out = run_cli(
        ["lineage", "marts.customer_orders.lifetime_valu", "--project", example_project]
    )
    assert code == 2
    assert out.strip() == (
        "error: models/marts/customer_orders.sql: marts.customer_orders has "
        "no column 'lifetime_valu' (did you mean 'lifetime_value'?)"
    )


def test_unknown_model_is_exit_2_with_a_suggestion(example_project):
    code, out = run_cli(["lineage", "marts.customer_order.country", "--project", example_project])
    assert code == 2
    assert "unknown model 'marts.customer_order'" in out
    assert "did you mean 'marts.customer_orders'?" in out
    code, out = run_cli(["lineage", "customer_orders", "--project", example_project])
    assert code == 2
    assert "'customer_orders' is not SCHEMA.MODEL or SCHEMA.MODEL.COLUMN" in out


def test_source_without_columns(write_project):
    root = write_project(
        {
            **AROUND,
            "models/cases/subject.sql": (
                "select b.*, o.id from ext.blob b join raw.orders o on o.id = b.oid\n"
            ),
        }
    )
    code, out = run_cli(["lineage", "ext.blob", "--project", root])
    assert code == 2
    assert "the columns of ext.blob are not known" in out
    assert "declare them with 'columns:' in sources.yml" in out
    code, out = run_cli(["lineage", "cases.subject", "--project", root])
    assert code == 0, out
    assert out.splitlines() == [
        "cases.subject.id",
        "  parents:    raw.orders.id",
        "  sources:    raw.orders.id",
        "note: some inputs of cases.subject are not known (a star or column over a source "
        "without 'columns:' in sources.yml)",
    ]


def test_source_columns_are_validated(write_project):
    root = write_project(
        {**AROUND, "sources.yml": "sources:\n  - name: ext.events\n    columns: [id, ts]\n"}
    )
    code, out = run_cli(["lineage", "raw.orders", "--project", root])
    assert code == 2
    assert "sources.yml:3: 'columns' must be a mapping" in out


def test_compile_does_not_compute_lineage(write_project):
    """A model sqlglot's lineage walk cannot follow still compiles and runs: lineage is
    computed only when asked for, and then says what it cannot do."""
    root = write_project(
        {
            **AROUND,
            "models/cases/subject.sql": (
                "select id, amount from raw.orders\nunion all\nselect id from raw.people\n"
            ),
        }
    )
    code, out = run_cli(["compile", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    code, out = run_cli(["lineage", "cases.subject.id", "--project", root])
    assert code == 2
    assert "the lineage of cases.subject is not known" in out


def test_json_is_one_object_per_column(example_project):
    rows = run_cli_json(
        ["lineage", "reports.vip_customers", "--json", "--project", example_project]
    )
    assert [r["column"] for r in rows] == [
        "reports.vip_customers.full_name",
        "reports.vip_customers.country",
        "reports.vip_customers.orders",
        "reports.vip_customers.lifetime_value",
        "reports.vip_customers.country_rank",
    ]
    assert json.loads(json.dumps(rows)) == rows


def test_a_source_without_columns_takes_them_from_the_warehouse(write_project):
    import duckdb

    root = write_project({**AROUND, "models/cases/subject.sql": "select * from ext.blob\n"})
    code, out = run_cli(["lineage", "cases.subject", "--project", root])
    assert code == 2, out
    assert "the columns of cases.subject are not known (it selects * from a source" in out
    assert not (root / "warehouse.duckdb").exists()  # looking never creates the warehouse
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("create schema ext")
    con.execute("create table ext.blob (Payload varchar, order_id int)")
    con.close()
    rows = run_cli_json(["lineage", "cases.subject", "--json", "--project", root])
    assert rows == [
        {
            "column": "cases.subject.payload",
            "parents": ["ext.blob.payload"],
            "sources": ["ext.blob.payload"],
        },
        {
            "column": "cases.subject.order_id",
            "parents": ["ext.blob.order_id"],
            "sources": ["ext.blob.order_id"],
        },
    ]


def test_lineage_is_cached_and_follows_edits(write_project):
    root = write_project({**AROUND, "models/cases/subject.sql": "select cents from marts.orders\n"})
    first = run_cli_json(["lineage", "cases.subject.cents", "--json", "--project", root])
    assert first["parents"] == ["marts.orders.cents"]
    assert (root / ".pipe/cache/lineage.pickle").is_file()
    assert run_cli_json(["lineage", "cases.subject.cents", "--json", "--project", root]) == first
    # an upstream model changes its columns: the downstream answer changes with it
    (root / "models/staging/orders.sql").write_text(
        "select id, customer_id, amount * 100 + id as cents, status, ts from raw.orders\n"
    )
    again = run_cli_json(["lineage", "cases.subject.cents", "--json", "--project", root])
    assert again["sources"] == ["raw.orders.amount", "raw.orders.id"]


def test_lineage_cache_is_a_store_of_the_one_cache_module(write_project):
    """The answers are kept by pipe.cache (versioned, written atomically), and a project
    whose cache cannot be written still answers: a cache only makes a command faster."""
    from pipe import cache

    root = write_project({**AROUND, "models/cases/subject.sql": "select cents from marts.orders\n"})
    first = run_cli_json(["lineage", "cases.subject.cents", "--json", "--project", root])
    kept = cache.store(root, "lineage.pickle", cache.code_version()).data
    assert kept and all(isinstance(k, str) for k in kept)
    shutil.rmtree(root / ".pipe" / "cache")
    (root / ".pipe" / "cache").write_text("not a folder\n")  # nothing can be written in it
    assert run_cli_json(["lineage", "cases.subject.cents", "--json", "--project", root]) == first


# ---------------------------------------------------------------- the same answer in a pool
# `compute` hands each model's sqlglot work to forked worker processes once enough models
# wait at once (pipe.dagwork); which process computes a model never changes its answer.


def _compiled(root: Path):
    from pipe.compiler import compile_project
    from pipe.loader import load_project

    return compile_project(load_project(root), None, write_cache=False)


def test_a_pool_gives_the_answer_of_one_process(write_project, monkeypatch):
    """Every fixture case as its own model, and a model over each (its columns come from
    a worker's answer), computed in one process and in a pool: identical, cache too."""
    from pipe import dagwork, lineage
    from pipe.parallel import workers

    files = dict(AROUND)
    for i, (_, sql, _) in enumerate(CASES):
        files[f"models/cases/case_{i:02}.sql"] = sql
        files[f"models/over/over_{i:02}.sql"] = f"select * from cases.case_{i:02}\n"
    cp = _compiled(write_project(files))
    monkeypatch.setattr(dagwork, "PARALLEL_MIN", 10**9)
    alone_cache: dict = {}
    alone = lineage.compute(cp, cache=alone_cache)
    monkeypatch.setattr(dagwork, "PARALLEL_MIN", 1)
    pooled_cache: dict = {}
    pooled = lineage.compute(cp, cache=pooled_cache)
    assert workers() >= 2, "this machine cannot fork a pool: nothing compared"
    assert list(pooled.tables.items()) == list(alone.tables.items())
    assert list(pooled.children.items()) == list(alone.children.items())
    assert sorted(pooled_cache.items()) == sorted(alone_cache.items())
    over = pooled.table("over.over_00")
    assert over.columns == pooled.table("cases.case_00").columns and over.columns
    # a warm cache: every answer found, none computed
    again = lineage.compute(cp, cache=pooled_cache)
    assert list(again.tables.items()) == list(alone.tables.items())


def _job_and_pid(job):
    import os

    return job, os.getpid()


def _dies_in_a_worker(job):
    """The work of a worker that is killed (out of memory, say) on its first job."""
    import os

    name, parent = job
    if os.getpid() != parent:
        os._exit(9)
    return name


def _dag(n: int) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """n names in topological order, each reading one to three earlier names."""
    order = [f"t{i:03}" for i in range(n)]
    upstream = {
        name: tuple(sorted({order[(i * 7 + k) % i] for k in range(1 + i % 3)})) if i else ()
        for i, name in enumerate(order)
    }
    return order, upstream


def test_dagwork_prepares_a_name_after_its_upstream_is_finished():
    import os

    from pipe import dagwork

    order, upstream = _dag(120)
    finished: dict[str, object] = {}
    prepared: list[str] = []

    def prepare(name):
        assert all(u in finished for u in upstream[name]), name
        prepared.append(name)
        if name.endswith("5"):  # a cache hit: no work
            return True, ("hit", None)
        return False, name

    def finish(name, result):
        assert name not in finished
        finished[name] = result

    dagwork.run(order, upstream, prepare, _job_and_pid, finish, parallel_min=1)
    assert sorted(prepared) == order and sorted(finished) == order
    for name, (job, _) in finished.items():
        assert job == ("hit" if name.endswith("5") else name)
    pids = {pid for _, pid in finished.values() if pid is not None}
    assert pids - {os.getpid()}, "no work was done in a worker"


def test_dagwork_does_what_a_dead_worker_left():
    import os

    from pipe import dagwork

    order, upstream = _dag(60)
    finished: dict[str, object] = {}
    dagwork.run(
        order,
        upstream,
        lambda name: (False, (name, os.getpid())),
        _dies_in_a_worker,
        finished.__setitem__,
        parallel_min=1,
    )
    assert finished == {name: name for name in order}


def test_dagwork_raises_what_the_work_raises():
    from pipe import dagwork

    order, upstream = _dag(40)
    with pytest.raises(ZeroDivisionError):
        dagwork.run(
            order, upstream, lambda name: (False, 0), _divide, lambda n, r: None, parallel_min=1
        )


def _divide(job):
    return 1 / job
