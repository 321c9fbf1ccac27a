"""`pipe run` of an unchanged project starts from the run record (runview.py), without
loading the project; any change since that record sends it down the full path, which
refuses a stale plan exactly as before."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import run_cli
from pipe.intervals import parse_label
from pipe.runview import recorded
from runner_helpers import INTERVAL, run, state

IV = parse_label(INTERVAL)


def _compiled_and_run(root):
    code, out = run_cli(["compile", "--interval", INTERVAL, "--project", root])
    assert code == 0, out
    assert recorded(root, None, IV) is not None  # the compile recorded what it read
    code, out = run(root)
    assert code == 0, out
    assert recorded(root, None, IV) is not None  # the next run starts from the record


def test_an_unchanged_project_runs_from_the_record(example_project):
    root = example_project
    _compiled_and_run(root)
    code, out = run(root, "--force")
    assert code == 0, out
    assert "35 succeeded" in out, out
    assert recorded(root, None, IV) is not None
    assert recorded(root, "prod", IV) is None  # recorded per --target
    assert recorded(root, None, parse_label("2026-06-02")) is None  # and per plan file


def test_an_edit_made_between_compile_and_run_is_refused_on_the_fast_path(example_project):
    """Same size, and even the same mtime: the ctime still tells the edit."""
    root = example_project
    _compiled_and_run(root)
    model = root / "models" / "staging" / "customers.sql"
    st = model.stat()
    model.write_text(model.read_text().replace("lower(email)", "upper(email)"))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert model.stat().st_size == st.st_size
    assert recorded(root, None, IV) is None
    runs = state(root, "select count(*) from runs")

    code, out = run(root)
    assert code == 2, out
    assert "plans/dev/2026-06-01.json" in out and "stale" in out, out
    assert state(root, "select count(*) from runs") == runs  # nothing ran


def test_a_new_model_or_a_removed_sidecar_is_seen(example_project):
    root = example_project
    _compiled_and_run(root)
    new = root / "models" / "staging" / "extra.sql"
    new.write_text("select 1 as x")
    assert recorded(root, None, IV) is None
    code, out = run(root)
    assert code == 2 and "stale" in out, out
    new.unlink()
    code, out = run(root)  # back as compiled: the full path finds the plan current
    assert code == 0, out
    assert recorded(root, None, IV) is not None

    [sidecar] = sorted((root / "models").rglob("*.yml"))[:1]
    sidecar.unlink()
    assert recorded(root, None, IV) is None


def test_an_edited_plan_file_is_not_run_from_the_record(example_project):
    root = example_project
    _compiled_and_run(root)
    plan = root / "plans" / "dev" / f"{INTERVAL}.json"
    plan.write_bytes(plan.read_bytes().replace(b"lower(email)", b"upper(email)"))
    assert recorded(root, None, IV) is None
    code, out = run(root)
    assert code == 2 and "stale" in out, out


def test_the_fast_path_imports_no_compiler_jinja_sqlglot_or_yaml(example_project):
    root = example_project
    _compiled_and_run(root)
    script = (
        "import sys\n"
        "from pipe.cli import main\n"
        "try:\n"
        f"    main(['run', '--interval', '{INTERVAL}', '--force',\n"
        "          '--select', 'staging.customers'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "loaded = {m.split('.')[0] if not m.startswith('pipe.') else m for m in sys.modules}\n"
        "print(sorted(loaded & {'jinja2', 'sqlglot', 'yaml', 'rich', 'pipe.compiler',\n"
        "    'pipe.loader', 'pipe.planner', 'pipe.templating', 'pipe.checks'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]", out


def test_a_corrupt_record_is_only_a_slower_run(example_project):
    root = example_project
    _compiled_and_run(root)
    for path in (root / ".pipe" / "cache").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\x80garbage")
    assert recorded(root, None, IV) is None
    code, out = run(root, "--force")
    assert code == 0 and "35 succeeded" in out, out
    assert recorded(root, None, IV) is not None


def test_the_fast_path_says_what_the_full_path_says(example_project):
    """Errors about the command (a --select that names nothing, an interval before the
    project's start) read the same from the record as from the loaded project."""
    root = example_project
    code, out = run_cli(["compile", "--interval", INTERVAL, "--project", root])
    assert code == 0, out
    said = {}
    for path in ("fast", "full"):
        if path == "full":
            (root / ".pipe" / "cache" / "runview.pickle").unlink()
        else:
            assert recorded(root, None, IV) is not None
        said[path] = [run(root, "--select", "staging.custmers"), run(root, interval="2020-01-01")]
    assert said["fast"] == said["full"], said
    assert all(code == 2 for code, _ in said["fast"]), said
