"""Bad input gets a clear, located answer (exit 2), never a traceback (issue 10)."""

from __future__ import annotations

import os

import pytest

from conftest import PIPE_YML, run_cli


def compile_(root, *args):
    return run_cli(["compile", "--project", root, "--interval", "2026-06-01", *args])


def test_an_impossible_date_in_yaml_is_located(write_project):
    root = write_project(
        {"models/a/b.sql": "select 1 as x"}, pipe_yml=PIPE_YML.replace("2026-06-01", "2026-02-30")
    )
    code, out = run_cli(["compile", "--project", root])
    assert code == 2, out
    assert "pipe.yml:2:8: 'start': '2026-02-30' is not a valid value" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "check, said",
    [
        ('sql: "drop table a.b"', "a check's sql must be one read-only SELECT, not DROP"),
        ('sql: "select * into x from {{ this }}"', "not SELECT ... INTO"),
        ('sql: "select 1; drop table a.b"', "not several statements"),
        ("row_count: {min: 5, max: 1}", "'row_count' can never pass: min 5, max 1"),
    ],
)
def test_impossible_or_destructive_checks_are_compile_errors(write_project, check, said):
    root = write_project(
        {"models/a/b.sql": "select 1 as x", "models/a/b.yml": f"checks:\n  - {check}\n"}
    )
    code, out = compile_(root)
    assert code == 2, out
    assert "models/a/b.yml:2:" in out and said in out, out


def test_a_sensor_may_only_read(write_project):
    root = write_project(
        {
            "models/a/b.sql": "select * from raw.e",
            "sources.yml": 'sources:\n  - name: raw.e\n    wait_for: "delete from raw.e"\n',
        }
    )
    code, out = compile_(root)
    assert code == 2, out
    assert (
        "sources.yml:2: the wait_for of source 'raw.e' must be one read-only SELECT, not DELETE"
    ) in out


def test_paths_and_names_never_lead_outside_the_project(write_project, tmp_path):
    root = write_project(
        {"models/a/b.sql": "select 1 as x"},
        pipe_yml=PIPE_YML.replace("path: warehouse.duckdb", "path: ../../elsewhere.duckdb"),
    )
    code, out = compile_(root)
    assert code == 2 and "path '../../elsewhere.duckdb' leads outside the project" in out, out

    root = write_project(
        {"models/a/b.sql": "select 1 as x"},
        name="named",
        pipe_yml=PIPE_YML.replace("  dev:", '  "../up":').replace(
            "default_target: dev", 'default_target: "../up"'
        ),
    )
    code, out = compile_(root)
    assert code == 2 and "target name '../up' must be letters, digits and _" in out, out
    assert not (tmp_path / "plans").exists()

    outside = tmp_path / "secret.sql"
    outside.write_text("select 1 as x")
    root = write_project({"models/a/b.sql": "select 1 as x"}, name="linked")
    os.symlink(outside, root / "models" / "a" / "c.sql")
    code, out = compile_(root)
    assert code == 2, out
    assert f"models/a/c.sql: this is a symlink to {outside}, outside the project" in out


def test_a_literal_password_in_pipe_yml_gets_a_warning(write_project):
    root = write_project(
        {"models/a/b.sql": "select 1 as x"},
        pipe_yml=PIPE_YML + ('  prod: {adapter: postgres, dsn: "postgresql://u:hunter2@db/x"}\n'),
    )
    code, out = run_cli(["list", "--project", root])
    assert code == 0, out
    assert "warning: pipe.yml:7: target 'prod' has a password written into its dsn" in out
    assert "hunter2" not in out
    root = write_project(
        {"models/a/b.sql": "select 1 as x"},
        name="env",
        pipe_yml=PIPE_YML + ('  prod: {adapter: postgres, dsn: "postgresql://u:${PW}@db/x"}\n'),
    )
    assert "warning" not in run_cli(["list", "--project", root])[1]
