"""No gc.freeze in library code: a large piece of work only holds off full collections,
and puts the collector's thresholds back (issue 9)."""

from __future__ import annotations

import gc

from pipe import parallel


def test_young_gc_only_freezes_nothing_and_restores_the_thresholds():
    before = gc.get_threshold()
    with parallel.young_gc_only():
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold()[:2] == before[:2]
        with parallel.young_gc_only():  # nested: the outer block restores
            pass
        assert gc.get_threshold()[2] > before[2]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_compile_freezes_nothing(write_project, monkeypatch):
    from pipe.workspace import load

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    root = write_project({"models/a/b.sql": "select 1 as x"})
    load(root)
    assert not frozen
    assert gc.get_freeze_count() == 0


def test_collected_each_frees_each_items_cycles_and_puts_the_collector_back():
    import weakref

    class Node:
        pass

    left: list = []
    assert gc.isenabled()
    for i in parallel.collected_each(range(3)):
        assert not gc.isenabled()  # no automatic collection inside an item
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle, as a parse tree's parent links make
        left.append((i, weakref.ref(a)))
        del a, b
    assert gc.isenabled()
    assert [ref() for _, ref in left] == [None, None, None]  # each freed after its item
