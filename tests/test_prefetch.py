"""A cold compile renders and parses its models in the worker processes, not in the
parent (sqlprefetch.py), also when the parse cache already holds what check_macros put
there in the same compile."""

from __future__ import annotations

from conftest import PIPE_YML

MACRO = "{% macro double(c) %}{{ c }} * 2{% endmacro %}\n"


def test_a_cold_compile_renders_no_model_in_the_parent(write_project, monkeypatch):
    import pipe.loader
    import pipe.parallel
    import pipe.sqlprefetch
    from pipe.compiler import compile_project
    from pipe.loader import load_project
    from pipe.templating import Renderer

    files = {"macros/m.sql": MACRO}
    for i in range(40):
        files[f"models/m/t{i}.sql"] = (
            "select {{ interval_start }} as ts, id from {{ ref('m.t0') }}\n"
            if i % 2
            else f"select {{{{ double({i}) }}}} as id\n"
        )
    root = write_project(files, pipe_yml=PIPE_YML)
    for module in (pipe.loader, pipe.parallel, pipe.sqlprefetch):
        monkeypatch.setattr(module, "workers", lambda: 2)
    monkeypatch.setattr(pipe.sqlprefetch, "PARALLEL_MIN", 10)
    in_parent: list[str] = []
    real = Renderer.render

    def render(self, path, *args, **kw):
        in_parent.append(path)  # a worker's calls land in the worker's copy of this list
        return real(self, path, *args, **kw)

    monkeypatch.setattr(Renderer, "render", render)
    compile_project(load_project(root))
    assert in_parent == []
