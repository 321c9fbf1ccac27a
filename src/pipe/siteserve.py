"""`pipe docs --serve`: the site served on localhost, rebuilt when what it shows changes.

A localhost http.server over the output folder and an mtime poll of the files a build
reads (the project, its plans, the state store); a rebuild that fails keeps the last good
site served. The one long-running piece of `pipe docs`; it prints nothing itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import UserError


def watched_mtime(root: Path, out: Path) -> float:
    """The newest mtime among the files a rebuild reads (project, plans, state store)."""
    newest = 0.0
    skip = {out.resolve()}
    for path in _watched(root, skip):
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            continue
    return newest


def _watched(root: Path, skip: set[Path]):
    for name in ("pipe.yml", "sources.yml", ".pipe/state.db", ".pipe/state.db-wal"):
        yield root / name
    for folder in ("models", "seeds", "macros", "plans"):
        base = root / folder
        if base.is_dir():
            yield from (p for p in base.rglob("*") if p.is_file())


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the stdlib's name
        return


def serve(
    out: Path,
    port: int,
    rebuild: Callable[[], None],
    root: Path,
    on_ready: Callable[[str], None],
    on_error: Callable[[Exception], None],
    poll: float = 1.0,
    stop: threading.Event | None = None,
) -> None:
    """Serve `out` on 127.0.0.1:`port` until `stop` is set (or Ctrl-C); call `rebuild`
    whenever a file it reads changes (polled every `poll` seconds)."""
    stop = stop or threading.Event()
    handler = partial(_Quiet, directory=str(out))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise UserError(
            f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}",
            hint="pick another --port (0 takes a free one)",
        ) from None
    thread = threading.Thread(target=server.serve_forever, name="pipe-docs", daemon=True)
    thread.start()
    # the snapshot comes before the announcement: an edit made as soon as the user (or a
    # test) reads "serving ..." must be seen as a change
    seen = watched_mtime(root, out)
    on_ready(f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        while not stop.wait(poll):
            now = watched_mtime(root, out)
            if now != seen:
                seen = now
                try:
                    rebuild()
                except Exception as exc:  # a broken edit: keep serving the last good site
                    on_error(exc)
                seen = watched_mtime(root, out)
    finally:
        server.shutdown()
        server.server_close()
