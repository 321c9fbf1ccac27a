"""The console script freezes the command's objects out of the interpreter's last
garbage collections (launch.py, issue 14): the exit does not walk them all again."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_the_console_script_exits_with_its_objects_frozen(tmp_path):
    code = textwrap.dedent(
        """
        import atexit, gc, sys
        atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0))
        sys.argv = ["pipe", "--help"]
        from pipe.launch import main
        main()
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout
    assert out.stdout.rstrip().endswith("frozen True")
