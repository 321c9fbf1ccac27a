"""Where in a model or macro file a rendering failed: Jinja's exceptions as located
TemplateErrors, and the line of the innermost template frame.

jinja2 compiles each template with its name (a project-relative path ending in .sql) as
the code's file name, so the traceback of an error says which template line raised it.
An exception raised by pipe's own code while rendering is a bug, not the template's:
it is returned unchanged (exit 3), never dressed as a user error.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from .errors import SourceLocation, TemplateError

_PACKAGE = str(Path(__file__).parent)


def from_template(exc: Exception, path: str) -> Exception:
    """The TemplateError for an exception raised while rendering `path`; the exception
    itself when pipe's own code raised it (a bug, not the template's)."""
    import jinja2

    if isinstance(exc, jinja2.TemplateError) or _raised_by_template(exc, path):
        return _located(exc, path)
    return exc


def _is_template(filename: str, path: str) -> bool:
    return filename == path or (filename.startswith("macros/") and filename.endswith(".sql"))


def _raised_by_template(exc: BaseException, path: str) -> bool:
    """True when the innermost frame of pipe or of a template is a template's: the
    user's expression failed. An exception from pipe's own code is a bug, not theirs."""
    last = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename
        if name.startswith(_PACKAGE):
            last = "pipe"
        elif _is_template(name, path):
            last = "template"
    return last == "template"


def line_in(exc: BaseException, path: str) -> SourceLocation:
    """Where in the templates `exc` was raised: the innermost frame of a template
    (jinja2 compiles each template with its name, a project-relative path ending in
    .sql, as the code's file name), so an error inside a macro points into the macro."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename
        if _is_template(name, path):
            path, line = name, lineno
    return SourceLocation(path, line)


def _called_from(at: SourceLocation, path: str, exc: BaseException) -> str:
    if at.path == path:
        return ""
    caller = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == path:
            caller = lineno
    return f" (in a macro called from {SourceLocation(path, caller)})"


def _located(exc: Exception, path: str) -> TemplateError:
    import jinja2
    from jinja2.sandbox import SecurityError

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(
            f"Jinja syntax error: {exc.message}",
            at=SourceLocation(exc.filename or path, exc.lineno),
        )
    at = line_in(exc, path)
    if isinstance(exc, jinja2.UndefinedError | SecurityError) and "unsafe" in str(exc):
        return TemplateError(
            f"Jinja sandbox: {exc.message}" + _called_from(at, path, exc),
            at=at,
            hint="model and macro Jinja runs sandboxed: no attribute"
            " that starts with '_', no access to Python, the environment or"
            " files",
        )
    if isinstance(exc, jinja2.UndefinedError):
        return TemplateError(
            f"undefined name in Jinja: {exc.message}" + _called_from(at, path, exc),
            at=at,
            hint="the context has interval_start, interval_end, ds, var, ref,"
            " source, this and the macros of macros/*.sql",
        )
    if isinstance(exc, jinja2.TemplateError):
        return TemplateError(f"Jinja error: {exc}" + _called_from(at, path, exc), at=at)
    return TemplateError(
        f"Jinja error: {type(exc).__name__}: {exc}" + _called_from(at, path, exc), at=at
    )
