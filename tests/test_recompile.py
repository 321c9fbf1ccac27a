"""An edit that changes no dependency takes the last compile's graph as it was: nothing
is ordered again (recompile.py, issue 9)."""

from __future__ import annotations

from pipe import graph as graphmod
from pipe.compiler import compile_project
from pipe.loader import load_project


def compiled(root):
    cp = compile_project(load_project(root, use_cache=True, write_cache=True))
    cp.save_cache()
    return cp


def test_an_edit_that_changes_no_dependency_orders_nothing_again(write_project, monkeypatch):
    root = write_project(
        {
            "models/a/b.sql": "select 1 as x",
            "models/a/c.sql": "select x from a.b",
            "models/a/d.sql": "select x from a.c",
        }
    )
    first = compiled(root)
    (root / "models/a/c.sql").write_text("select x + 1 as x from a.b -- edited\n")
    built = []
    real = graphmod.build
    monkeypatch.setattr(graphmod, "build", lambda *a: built.append(1) or real(*a))
    second = compiled(root)
    assert not built
    assert second.graph == first.graph
    assert second.nodes["a.c"].fingerprint != first.nodes["a.c"].fingerprint
    assert second.nodes["a.d"].fingerprint != first.nodes["a.d"].fingerprint
    (root / "models/a/d.sql").write_text("select x from a.b\n")  # a dependency changed
    third = compiled(root)
    assert built
    assert third.graph.upstream["a.d"] == ("a.b",)


def test_a_cycle_made_by_an_edit_is_still_found(write_project):
    root = write_project({"models/a/b.sql": "select 1 as x", "models/a/c.sql": "select x from a.b"})
    compiled(root)
    (root / "models/a/b.sql").write_text("select x from a.c\n")
    from pipe.errors import CycleError

    try:
        compiled(root)
    except CycleError as exc:
        assert "a.b -> a.c -> a.b" in exc.message
    else:
        raise AssertionError("no cycle found")
