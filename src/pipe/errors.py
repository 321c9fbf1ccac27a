"""Every error pipe raises on purpose, and where it happened.

    PipeError
    ├── UserError            a mistake in the project or the command line: exit 2
    │   ├── ConfigError      pipe.yml, sidecars, sources.yml: bad YAML, unknown key, wrong type
    │   ├── TemplateError    Jinja: syntax error, undefined name, bad ref()
    │   ├── SqlError         the rendered SQL does not parse or is not one SELECT
    │   ├── UnknownTable     a table that is neither a model, a seed nor a source
    │   ├── CycleError       the dependency graph has a cycle
    │   ├── IntervalError    a run label or date that is not valid
    │   ├── StalePlanError   a plan on disk no longer matches the project
    │   ├── PlanFileError    a plan file pipe cannot read: empty, not JSON, another format
    │   ├── StateError       .pipe/state.db is damaged
    │   ├── LockBusy         another pipe process holds the project lock (--no-wait)
    │   ├── UpstreamMissing  a selected task reads an upstream interval not published
    │   ├── WarehouseError   the warehouse refused a command's own statements (no privilege
    │   │                    to create a schema, a foreign _pipe.ledger): named at the target
    │   └── ErrorGroup       several user errors collected over one compile
    ├── AdapterError         (adapters/base.py) one warehouse statement failed. Inside a task
    │   │                    it fails the task (retried like any); outside one the runner
    │   │                    says it as a WarehouseError; one that reaches the CLI is exit 2
    │   └── Interrupted      the statement was interrupted (a timeout, a second Ctrl-C)
    └── RunFailed            a run finished with failed tasks: exit 1

Library code raises these; only cli.py prints them and picks exit codes. A bare
ValueError is never a user error: it is a bug in pipe and surfaces as one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class SourceLocation:
    path: str  # relative to the project directory
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)


class PipeError(Exception):
    """Base of every error pipe raises on purpose."""


class UserError(PipeError):
    """A mistake the user can fix; printed compiler-style, exit code 2."""

    def __init__(self, message: str, at: SourceLocation | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.at = at
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.at}: {self.message}" if self.at else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def sort_key(self) -> tuple:
        at = self.at or SourceLocation("")
        return (at.path, at.line or 0, at.col or 0, self.message)


class ConfigError(UserError):
    pass


class TemplateError(UserError):
    pass


class SqlError(UserError):
    pass


class UnknownTable(UserError):
    pass


class CycleError(UserError):
    pass


class IntervalError(UserError):
    pass


class StalePlanError(UserError):
    pass


class PlanFileError(UserError):
    pass


class StateError(UserError):
    pass


class LockBusy(UserError):
    """Another pipe process holds the project lock and --no-wait was given: the user can
    wait or stop it, so exit 2, naming the holder when the lock file says who it is."""


class UpstreamMissing(UserError):
    """A selected task reads an upstream interval that is not published (SPEC §7)."""


class WarehouseError(UserError):
    """The warehouse refused a statement of the command itself, not of a task (creating a
    schema without the privilege, reading a `_pipe.ledger` pipe did not create)."""


class ErrorGroup(UserError):
    """All user errors found in one pass, reported together, sorted by place."""

    def __init__(self, errors: list[UserError]):
        self.errors = sorted(errors, key=UserError.sort_key)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return self.message


def raise_collected(errors: list[UserError]) -> None:
    """Raise nothing, the one error, or an ErrorGroup of several."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ErrorGroup(errors)


class RunFailed(PipeError):
    """A run or backfill ended with failed tasks; carries the result for the summary."""

    def __init__(self, result):
        super().__init__("run failed")
        self.result = result
