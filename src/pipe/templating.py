"""Jinja rendering of model SQL: the Environment (StrictUndefined) and the render context.

Context (SPEC §2): interval_start, interval_end (TIMESTAMP literals), ds (DATE literal),
var(name[, default]), ref(name), source(name) or source(schema, table), this, and every
macro of macros/*.sql. Macros see the interval names, var, ref and source, not `this`.
Undefined names are errors. A model with no '{' in it is not rendered at all: Jinja
compiles a template in ~2 ms, and most models of a parsed-dependency project are plain SQL.
"""

from __future__ import annotations

import difflib
import hashlib
import traceback
from collections.abc import Callable
from functools import cache
from pathlib import Path

import jinja2

from .errors import SourceLocation, TemplateError, UserError
from .intervals import Interval, date_literal, timestamp_literal

# Values substituted for the interval while normalising a rendering (see `normalise`).
PLACEHOLDERS = ("'__pipe_interval_start__'", "'__pipe_interval_end__'", "'__pipe_ds__'")


class _Loader(jinja2.BaseLoader):
    def __init__(self, sources: dict[str, str]):
        self.sources = sources

    def get_source(self, environment, template):
        if template not in self.sources:
            raise jinja2.TemplateNotFound(template)
        return self.sources[template], template, lambda: True


def interval_values(interval: Interval) -> tuple[str, str, str]:
    return timestamp_literal(interval.start), timestamp_literal(interval.end), date_literal(
        interval.start)


def normalise(rendered: str, interval: Interval) -> str:
    """Replace this interval's literal values by placeholders.

    Two renderings of one model for two intervals normalise to the same text exactly
    when they differ only in the interval values, so parsing one serves both (the
    compiler swaps the values back into the generated SQL).
    """
    for quoted, placeholder in zip(quoted_values(interval), PLACEHOLDERS, strict=True):
        rendered = rendered.replace(quoted, placeholder)
    return rendered


def quoted_values(interval: Interval) -> tuple[str, str, str]:
    """The quoted strings inside the interval literals, longest (timestamps) first."""
    return tuple(v[v.index("'"):] for v in interval_values(interval))  # type: ignore[return-value]


class Renderer:
    """Renders model SQL for (model, interval). One per compile; not thread-safe."""

    def __init__(self, macros: tuple[tuple[str, str], ...], vars_: dict,
                 resolve_ref: Callable[[str, str], str],
                 resolve_source: Callable[[str, str], str],
                 cache_dir: Path | None = None):
        self._vars = vars_
        self._resolve_ref = resolve_ref
        self._resolve_source = resolve_source
        self._sources: dict[str, str] = dict(macros)
        self._macro_paths = [p for p, _ in macros]
        bcc = None
        if cache_dir:
            cache_dir.mkdir(parents=True, exist_ok=True)
            bcc = jinja2.FileSystemBytecodeCache(str(cache_dir))
        self.env = jinja2.Environment(
            loader=_Loader(self._sources),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            bytecode_cache=bcc,
        )
        self._current_path = ""
        self.env.globals.update(var=self._var, ref=self._ref, source=self._source)
        self._macro_cache: dict[Interval, dict] = {}

    # -- context functions; they raise TemplateError, located by the caller
    def _var(self, name, default=jinja2.Undefined):
        if name in self._vars:
            return self._vars[name]
        if default is not jinja2.Undefined:
            return default
        close = difflib.get_close_matches(str(name), list(self._vars), n=1)
        raise TemplateError(f"var('{name}') is not defined in pipe.yml 'vars'"
                            + (f" (did you mean '{close[0]}'?)" if close else ""))

    def _ref(self, *args):
        if len(args) != 1 or not isinstance(args[0], str):
            raise TemplateError("ref() takes one table name, like ref('staging.orders')")
        return self._resolve_ref(args[0], self._current_path)

    def _source(self, *parts):
        if not 1 <= len(parts) <= 2 or not all(isinstance(p, str) for p in parts):
            raise TemplateError("source() takes 'schema.table' or 'schema', 'table'")
        return self._resolve_source(".".join(str(p) for p in parts), self._current_path)

    def _macros(self, interval: Interval) -> dict:
        found = self._macro_cache.get(interval)
        if found is None:
            start, end, ds = interval_values(interval)
            found = {}
            for path in self._macro_paths:
                try:
                    module = self.env.get_template(path).make_module(
                        {"interval_start": start, "interval_end": end, "ds": ds})
                except UserError:
                    raise
                except jinja2.TemplateError as exc:
                    raise _located(exc, path) from None
                except Exception as exc:
                    if not _raised_by_template(exc, path):
                        raise
                    raise _located(exc, path) from None
                found.update({k: getattr(module, k) for k in dir(module)
                              if not k.startswith("_")})
            self._macro_cache = {interval: found}  # one interval at a time is the common case
        return found

    def render(self, path: str, text: str, interval: Interval, this: str) -> str:
        """Render one model; raise TemplateError naming `path` and the line."""
        if "{" not in text:
            return text
        self._sources[path] = text
        self._current_path = path
        start, end, ds = interval_values(interval)
        try:
            context = dict(self._macros(interval))
            context.update(interval_start=start, interval_end=end, ds=ds, this=this)
            return self.env.get_template(path).render(context)
        except UserError as exc:
            if exc.at is None:
                exc.at = _line_in(exc, path)
            raise
        except jinja2.TemplateError as exc:
            raise _located(exc, path) from None
        except Exception as exc:  # {{ 1 / 0 }}, {{ 'a' + 1 }}: the template's, not a bug
            if not _raised_by_template(exc, path):
                raise
            raise _located(exc, path) from None

    def fingerprint_inputs(self) -> str:
        """A hash of the macros and vars: what every rendering depends on."""
        h = hashlib.sha256()
        for path in self._macro_paths:
            h.update(path.encode() + b"\0" + self._sources[path].encode() + b"\0")
        h.update(repr(sorted(self._vars.items())).encode())
        return h.hexdigest()


_PACKAGE = str(Path(__file__).parent)


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


def _line_in(exc: BaseException, path: str) -> SourceLocation:
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
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(f"Jinja syntax error: {exc.message}",
                             at=SourceLocation(exc.filename or path, exc.lineno))
    at = _line_in(exc, path)
    if isinstance(exc, jinja2.UndefinedError):
        return TemplateError(f"undefined name in Jinja: {exc.message}"
                             + _called_from(at, path, exc), at=at,
                             hint="the context has interval_start, interval_end, ds, var, ref,"
                             " source, this and the macros of macros/*.sql")
    if isinstance(exc, jinja2.TemplateError):
        return TemplateError(f"Jinja error: {exc}" + _called_from(at, path, exc), at=at)
    return TemplateError(f"Jinja error: {type(exc).__name__}: {exc}"
                         + _called_from(at, path, exc), at=at)



def render_snippet(text: str, interval: Interval | None, path: str, line: int | None,
                   **extra) -> str:
    """Render a short SQL snippet from YAML (a sensor's wait_for, an sql check)."""
    context = dict(extra)
    if interval is not None:
        start, end, ds = interval_values(interval)
        context.update(interval_start=start, interval_end=end, ds=ds)
    try:
        return _snippet_env().from_string(text).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"Jinja error: {exc}", at=SourceLocation(path, line)) from None


@cache
def _snippet_env() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined)
