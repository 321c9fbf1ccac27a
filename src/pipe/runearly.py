"""`pipe run`'s warehouse, opened before the command is even parsed (issue 14).

Opening a DuckDB file of 1,000 tables takes 60-100 ms, and DuckDB does it without the GIL;
the start's imports, the run record's check and the plan load are Python and hold it. So
the console script (`pipe.launch`) calls `start()` first of all, when the command is
`pipe run`: from the command line alone (--project, --target, --interval) and the hint
that the last run left
(`.pipe/cache/runstart.json`: the default target and each DuckDB target's file, see
`remember`), it takes the project lock without waiting and connects on a thread, which
then lists the relations and reads the ledger (the start's two reads, as
`runstart.Opening` makes them).

It is a guess, checked later: `runstart.Opening.of` takes this opening only when the
command turns out to run that target with that file (`take`); otherwise the connection
is closed and the lock released before the command opens its own. A command that stops
before (a user error, a stale plan) closes it at exit (`close`). No early start when the
lock is busy (the command then waits for it as before, saying so), when the file does
not exist (opening would create it), when the driver is missing, or when the command
line is anything but plain options (help, a positional argument: click says what is
wrong). Anything unexpected here leaves the command to open the warehouse as before.

Imports here are the standard library's and `_duckdb`; nothing of click.
"""

from __future__ import annotations

import os
import threading

HINT = os.path.join(".pipe", "cache", "runstart.json")
# `pipe run`'s options that take a value; any other option must be one of FLAGS
VALUED = ("--project", "--target", "--interval", "--select", "--concurrency", "--execution-time")
FLAGS = ("--force", "--allow-partial", "--no-wait", "--json", "--debug")
RELATIONS = (
    "SELECT schema_name, table_name, false FROM duckdb_tables() WHERE NOT internal "
    "UNION ALL SELECT schema_name, view_name, true FROM duckdb_views() WHERE NOT internal"
)


class Early:
    """The project lock, held, and the DuckDB file `path` connecting on a thread."""

    def __init__(self, root: str, path: str, lock, driver):
        self.root, self.path, self.lock, self.driver = root, path, lock, driver
        self.con = None
        self.error: BaseException | None = None
        self.rows: list | None = None  # the relations' rows
        self.ledger = None  # (rows, ledger.fold of them) of `_pipe.ledger`, if it could
        self.utc = False  # the session's time zone is set
        self.taken = False  # a run's start owns it now (`take`)
        # not a daemon: at exit the interpreter waits for it before `close` runs (a
        # daemon thread inside DuckDB's connect while the process ends could crash it)
        self.thread = threading.Thread(target=self._open, name="pipe-open-early")
        self.thread.start()

    def _open(self) -> None:
        try:
            self.con = self.driver.connect(self.path)
        except BaseException as exc:  # noqa: BLE001 - raised again by the adapter
            self.error = exc
            return
        # the ledger is read on a cursor of its own while the relations are listed
        # (DuckDB runs both without the GIL; decoding the ledger's rows needs it)
        ledger = None
        try:
            self.con.execute("SET TimeZone = 'UTC'")  # as DuckDBAdapter does (SPEC §2)
            self.utc = True
            ledger = threading.Thread(
                target=self._read_ledger, args=(self.con.cursor(),), name="pipe-ledger-early"
            )
            ledger.start()
            self.rows = self.con.execute(RELATIONS).fetchall()
        except Exception:  # noqa: BLE001 - prepare() reads again, and says what failed
            pass
        finally:
            if ledger is not None and ledger.ident is not None:
                ledger.join()

    def _read_ledger(self, cursor) -> None:
        """The ledger's rows and `ledger.fold` of them, when the ledger can be read now
        (a ledger of another format, or none, is prepare()'s to read, create or convert)."""
        try:
            rows = cursor.execute("SELECT entry FROM _pipe.ledger").fetchall()
            cursor.close()
            # pipe.ledger imports nothing of pipe's: importing it here cannot wait on
            # an import of the main thread's that waits on this one
            from .ledger import decode_row, fold

            self.ledger = rows, fold(decode_row(text) for (text,) in rows)
        except Exception:  # noqa: BLE001 - prepare() reads again, and says what failed
            pass

    def take(self, root, path: str) -> Early | None:
        """This opening, now the caller's, if it opened `path` for the project at `root`;
        else None (and it is closed: a wrong guess)."""
        same = os.path.abspath(self.root) == os.path.abspath(root)
        if same and os.path.abspath(self.path) == os.path.abspath(path):
            self.taken = True
            return self
        self.close()
        return None

    def close_unused(self) -> None:
        """Close this opening unless a run took it (the command stopped before)."""
        if not self.taken:
            self.close()

    def close(self) -> None:
        if self.lock.fd is None and self.con is None:
            return  # closed already
        self.thread.join()
        con, self.con = self.con, None
        if con is not None:
            try:
                con.close()
            except Exception:  # noqa: BLE001 - nothing of it was used
                pass
        self.lock.release()


def start(argv: list[str]) -> Early | None:
    """The warehouse of `pipe run ARGV...`, opening, if the command line and the last
    run's hint allow it (see the module docstring); otherwise None."""
    if not argv or argv[0] != "run":
        return None
    try:
        return _start(argv)
    except Exception:  # noqa: BLE001 - the command opens its warehouse itself
        return None


def _start(argv: list[str]) -> Early | None:
    options = _options(argv[1:])
    if options is None or "--interval" not in options:
        return None
    root = options.get("--project", ".")
    path = _hinted(root, options.get("--target") or "")
    if path is None or not os.path.isfile(path):
        return None
    from pathlib import Path

    from .projectlock import LockHeld, ProjectLock

    # the driver is imported here, not on the thread: an import holds the GIL all
    # along, so the thread would only take turns with this one (and the connect would
    # start later), and dataclasses, here, reads `typing` (which _duckdb imports) from
    # sys.modules without waiting for another thread's import of it to end
    try:
        import _duckdb as driver
    except ImportError:  # a duckdb release without it
        import duckdb as driver
    lock = ProjectLock(Path(root))
    try:  # said as the command says it; corrected below if the label is spelled otherwise
        lock.acquire(False, None, f"pipe run {options['--interval']}")
    except (LockHeld, OSError):
        return None
    try:
        early = Early(root, path, lock, driver)
    except BaseException:
        lock.release()
        raise
    try:
        _name_the_run(lock, options["--interval"])
    except BaseException:
        early.close()
        raise
    return early


def _name_the_run(lock, interval: str) -> None:
    """The label as the command spells it in the lock file (`pipe run 2026-06-01`), made
    once the thread runs: importing `intervals` (and dataclasses) takes longer than this."""
    from . import intervals
    from .errors import UserError

    try:
        label = intervals.parse_label(interval).label
    except UserError:
        return  # the command refuses it, and the opening is closed when it ends
    if label != interval and lock.fd is not None:
        os.ftruncate(lock.fd, 0)
        os.pwrite(lock.fd, f"pid {os.getpid()}: pipe run {label}".encode(), 0)


def remember(root, config) -> None:
    """Write the hint for the next `pipe run` from pipe.yml's settings (`config`): the
    default target's name and the file of each DuckDB target, as pipe.yml gives it
    (relative to the project), or null when it depends on the environment."""
    import json

    hint = os.path.join(str(root), HINT)
    files = {}
    for t in config.targets:
        path = str(t.option("path", "warehouse.duckdb")) if t.adapter == "duckdb" else None
        files[t.name] = None if path is None or "$" in path or path == ":memory:" else path
    known = {"default": config.default_target, "targets": files}
    try:
        with open(hint, encoding="utf-8") as f:
            if json.load(f) == known:
                return
    except (OSError, ValueError):
        pass
    try:
        os.makedirs(os.path.dirname(hint), exist_ok=True)
        tmp = f"{hint}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(known, f, sort_keys=True)
        os.replace(tmp, hint)
    except OSError:
        pass


def _hinted(root: str, target: str) -> str | None:
    """The file the hint names for `target` (empty: the default target), or None."""
    import json

    try:
        with open(os.path.join(root, HINT), encoding="utf-8") as f:
            known = json.load(f)
        path = known["targets"].get(target or known["default"])
    except (OSError, ValueError, LookupError, AttributeError, TypeError):
        return None
    if not isinstance(path, str):
        return None
    return path if os.path.isabs(path) else os.path.join(root, path)


def _options(args: list[str]) -> dict[str, str] | None:
    """`pipe run`'s options from its arguments; None for anything but known options
    (help, a positional argument, an option missing its value: click says what)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in VALUED:
            if not eq:
                i += 1
                if i >= len(args):
                    return None
                value = args[i]
            out[name] = value
        elif arg in FLAGS:
            out[arg] = ""
        else:
            return None
        i += 1
    return out
