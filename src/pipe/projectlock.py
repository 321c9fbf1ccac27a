"""`ProjectLock`: keeps two pipe processes from running on one project at once.

An exclusive flock on .pipe/lock: the kernel releases it when a process dies, even by
SIGKILL, so a crashed run never leaves a stale lock. The holder writes who it is
("pid 8022: pipe run ...") into the file for the message of the process that waits.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockHeld(Exception):
    """The lock is taken; `holder` is what its holder wrote ("pid 8022: pipe run ..."),
    None when the lock file does not say."""

    def __init__(self, holder: str | None):
        super().__init__(holder or "unknown holder")
        self.holder = holder


class ProjectLock:
    """An exclusive lock on .pipe/lock; `acquire(wait, on_wait)`; released on close/exit."""

    def __init__(self, root: Path):
        (root / ".pipe").mkdir(parents=True, exist_ok=True)
        self.path = root / ".pipe" / "lock"
        self.fd: int | None = None

    def holder(self) -> str | None:
        """Who holds the lock, as the holder wrote it; None when that is not known."""
        try:
            return self.path.read_text().strip() or None
        except OSError:
            return None

    def acquire(self, wait: bool, on_wait=None, what: str = "") -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            if not wait:
                os.close(fd)
                raise LockHeld(holder) from None
            if on_wait:
                on_wait(holder or "another pipe process")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {what}".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
