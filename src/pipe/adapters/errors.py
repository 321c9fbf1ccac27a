"""What a warehouse statement raises: `AdapterError`, and `Interrupted` when it was
stopped. Part of pipe's error tree (errors.PipeError)."""

from __future__ import annotations

from ..errors import PipeError


class AdapterError(PipeError):
    """A warehouse statement failed (SQL error, no privilege, lost connection). In a task
    the task fails; outside one (a run's set-up) the runner says it as a WarehouseError
    naming the target; one that reaches the CLI is a user error (exit 2), never a bug."""

    sqlstate: str | None = None  # the engine's error code, where it has one
    conflict = False  # another transaction got there first: the task may simply try again


class Interrupted(AdapterError):
    """The statement was interrupted (timeout or Ctrl-C)."""
