"""Plan files and the layering around them: the runner's imports, load's messages,
round trips, "compile if missing, refuse if stale" (workspace.ensure_plans)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import run_cli
from pipe import planfile, workspace
from pipe.errors import PlanFileError, StalePlanError
from pipe.intervals import parse_label
from pipe.planner import build_plan

DAY = "2026-06-01"


@pytest.mark.parametrize("module", ["pipe.executor", "pipe.runner", "pipe.plan"])
def test_the_runner_imports_no_compiler_loader_templating_or_checks(module):
    """STYLE §5: the runner needs only the plan and an adapter (a fresh interpreter, since
    this one has imported everything)."""
    code = f"import {module}, sys; print(sorted(m for m in sys.modules if m.startswith('pipe')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(out.stdout))  # noqa: S307 - our own printed list
    assert module in loaded
    banned = {"pipe.compiler", "pipe.loader", "pipe.templating", "pipe.checks", "pipe.planner"}
    assert not loaded & banned, sorted(loaded & banned)
    assert "jinja2" not in out.stdout


def test_plan_imports_only_intervals_and_names_of_pipe():
    code = "import pipe.plan, sys; print(sorted(m for m in sys.modules if m.startswith('pipe')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    allowed = {"pipe", "pipe.plan", "pipe.intervals", "pipe.names", "pipe.errors"}
    assert set(eval(out.stdout)) <= allowed  # noqa: S307


def test_a_plan_round_trips_through_its_file(example_project):
    cp = workspace.load(example_project)
    plan = build_plan(cp, parse_label(DAY))
    assert any(t.checks for t in plan.tasks) and any(t.kind == "seed" for t in plan.tasks)
    path, changed, data = planfile.write(example_project, plan)
    assert changed and path.read_bytes() == data
    back = planfile.load(path)
    assert planfile.dumps(back) == data  # the file keeps SQL without trailing newlines
    assert [(t.id, t.upstream, t.checks) for t in back.tasks] == [
        (t.id, t.upstream, t.checks) for t in plan.tasks
    ]
    assert planfile.write(example_project, plan)[1] is False  # same bytes: not rewritten
    assert not list(path.parent.glob(".*tmp*"))  # the atomic write left no temp file


def _plan_file(root, content: bytes | None):
    path = root / "plans" / "dev" / f"{DAY}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "content, said",
    [
        (b" \n\n", "this plan file is empty"),
        (b'{"pipe_plan": 1,\n "tasks": [}', "this plan file is not valid JSON"),
        (b'{"pipe_plan": 1, "project": "shop"}', "this plan file is damaged: KeyError 'target'"),
        (b'{"pipe_plan": "1"}', "this plan has format '1'; this pipe reads format 1"),
        (None, "this plan file does not exist"),
    ],
)
def test_load_says_exactly_what_is_wrong(example_project, content, said):
    path = _plan_file(example_project, content)
    with pytest.raises(PlanFileError) as caught:
        planfile.load(path)
    assert said in caught.value.message
    assert caught.value.at.path == f"plans/dev/{DAY}.json"
    assert "stale" not in caught.value.message


def test_invalid_json_is_located_on_its_line(example_project):
    path = _plan_file(example_project, b'{\n  "pipe_plan": 1,\n  "tasks": [}\n')
    with pytest.raises(PlanFileError) as caught:
        planfile.load(path)
    assert caught.value.at.line == 3


def test_a_damaged_plan_is_not_called_stale(example_project):
    cp = workspace.load(example_project)
    plan = build_plan(cp, parse_label(DAY))
    _plan_file(example_project, b'{"pipe_plan": 1, "tasks": 7}')
    with pytest.raises(PlanFileError, match="damaged"):
        planfile.stale_reason(example_project, plan)


def test_ensure_plans_compiles_the_missing_and_refuses_the_stale(example_project):
    cp = workspace.load(example_project)
    days = [parse_label("2026-06-01"), parse_label("2026-06-02")]
    made = workspace.ensure_plans(cp, days, hint="recompile")
    assert [m.status for m in made] == ["written", "written"]
    cp.save_cache()
    again = workspace.ensure_plans(workspace.load(example_project), days, hint="recompile")
    assert [m.status for m in again] == ["unchanged", "unchanged"]
    model = example_project / "models/staging/products.sql"
    model.write_text(model.read_text().replace("price_cents", "price_cents * 2 as price_cents", 1))
    edited = workspace.load(example_project)
    with pytest.raises(StalePlanError) as caught:
        workspace.ensure_plans(edited, days, hint="recompile")
    assert caught.value.message.startswith("plan files are stale: plans/dev/2026-06-01.json")
    with pytest.raises(StalePlanError) as caught:
        workspace.ensure_plans(edited, days[:1], hint="recompile")
    assert caught.value.at.path == "plans/dev/2026-06-01.json"
    code, out = run_cli(["run", "--project", example_project, "--interval", DAY])
    assert code == 2 and "this plan is stale" in out, out
