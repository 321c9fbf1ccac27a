"""Jinja rendering of model SQL: the Environment (StrictUndefined) and the render context.

Context (SPEC §2): interval_start, interval_end (TIMESTAMP literals), ds (DATE literal),
var(name[, default]), ref(name), source(name) or source(schema, table), this,
is_incremental() and every macro of macros/*.sql. Macros see the interval names, var,
ref and source, not `this`.
Undefined names are errors. A model with no '{' in it is not rendered at all: Jinja
compiles a template in ~2 ms, and most models of a parsed-dependency project are plain SQL.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from .errors import SourceLocation, TemplateError, UserError
from .intervals import Interval
from .intervalsql import interval_values
from .jinjaenv import bytecode_cache_class, loader_class, sandbox_class
from .templateerrors import from_template, line_in

# jinja2 is imported on first use: a compile served from the caches renders nothing.

_NO_DEFAULT = object()


class Renderer:
    """Renders model SQL for (model, interval). One per compile; not thread-safe."""

    def __init__(
        self,
        macros: tuple[tuple[str, str], ...],
        vars_: dict,
        resolve_ref: Callable[[str, str], str],
        resolve_source: Callable[[str, str], str],
        cache_path: Path | None = None,
        readonly: bool = False,
        is_incremental: Callable[[str, Interval], bool] | None = None,
    ):
        """`cache_path`: the file compiled templates are kept in between compiles;
        `readonly` reads it but never writes it. `is_incremental(model, interval)` answers
        `{{ is_incremental() }}` (it raises TemplateError where it has no answer)."""
        self._is_incremental = is_incremental
        self._vars = vars_
        self._resolve_ref = resolve_ref
        self._resolve_source = resolve_source
        self._sources: dict[str, str] = dict(macros)
        self._macro_paths = [p for p, _ in macros]
        self._cache_path = cache_path
        self._readonly = readonly
        self._env = None  # built on the first render: most models are plain SQL
        self._current_path = ""
        self._macro_cache: dict[Interval, dict] = {}

    @property
    def env(self):
        if self._env is None:
            import jinja2

            bcc = None
            if self._cache_path is not None:
                bcc = bytecode_cache_class()(self._cache_path, self._readonly)
            self._env = sandbox_class()(
                loader=loader_class()(self._sources),
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
                autoescape=False,
                bytecode_cache=bcc,
                cache_size=-1,  # every model's template stays compiled for the second render
            )
            self._env.globals.update(var=self._var, ref=self._ref, source=self._source)
        return self._env

    def save_cache(self) -> None:
        """Write the compiled templates (only if a template was compiled)."""
        if self._env is not None and self._env.bytecode_cache is not None:
            self._env.bytecode_cache.save()

    def cheap(self, path: str, text: str) -> bool:
        """Whether rendering `text` is cheap: its Jinja looks like what _render_plain
        renders, or its template is in the bytecode cache."""
        if "\r" not in text and "{" not in _PLAIN_EXPR.sub("", text):
            return True
        return self.compiled_ahead(path)

    def compiled_ahead(self, path: str) -> bool:
        """Whether the bytecode cache holds a compiled template for `path` (maybe of
        another version of it)."""
        bcc = self.env.bytecode_cache
        return bcc is not None and bcc.get_cache_key(path, path) in bcc.data

    def take_compiled(self) -> dict[str, bytes]:
        """The templates compiled since the last call (in a worker process)."""
        bcc = self._env.bytecode_cache if self._env is not None else None
        if bcc is None:
            return {}
        fresh, bcc.fresh = bcc.fresh, {}
        return fresh

    def add_compiled(self, compiled: dict[str, bytes]) -> None:
        """Keep templates a worker process compiled."""
        bcc = self._env.bytecode_cache if self._env is not None else None
        if compiled and bcc is not None:
            bcc.data.update(compiled)
            bcc.store.dirty = True

    # -- context functions; they raise TemplateError, located by the caller
    def _var(self, name, default=_NO_DEFAULT):
        if name in self._vars:
            return self._vars[name]
        if default is not _NO_DEFAULT:
            return default
        close = difflib.get_close_matches(str(name), list(self._vars), n=1)
        raise TemplateError(
            f"var('{name}') is not defined in pipe.yml 'vars'"
            + (f" (did you mean '{close[0]}'?)" if close else "")
        )

    def _ref(self, *args):
        if len(args) != 1 or not isinstance(args[0], str):
            raise TemplateError("ref() takes one table name, like ref('staging.orders')")
        return self._resolve_ref(args[0], self._current_path)

    def _source(self, *parts):
        if not 1 <= len(parts) <= 2 or not all(isinstance(p, str) for p in parts):
            raise TemplateError("source() takes 'schema.table' or 'schema', 'table'")
        return self._resolve_source(".".join(str(p) for p in parts), self._current_path)

    def _incremental_of(self, model: str, interval: Interval) -> Callable[[], bool]:
        def is_incremental() -> bool:
            if self._is_incremental is None:
                raise TemplateError("is_incremental() has no answer here")
            return self._is_incremental(model, interval)

        return is_incremental

    def _macros(self, interval: Interval) -> dict:
        found = self._macro_cache.get(interval)
        if found is None:
            start, end, ds = interval_values(interval)
            found = {}
            for path in self._macro_paths:
                try:
                    module = self.env.get_template(path).make_module(
                        {"interval_start": start, "interval_end": end, "ds": ds}
                    )
                except UserError:
                    raise
                except Exception as exc:
                    located = from_template(exc, path)
                    if located is exc:
                        raise
                    raise located from None
                found.update({k: getattr(module, k) for k in dir(module) if not k.startswith("_")})
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
            macros = self._macros(interval)
            values = {
                "interval_start": start,
                "interval_end": end,
                "ds": ds,
                "this": this,
                "is_incremental": self._incremental_of(this, interval),
            }
            quick = self._render_plain(text, values, macros)
            if quick is not None:
                return quick
            context = dict(macros)
            context.update(values)
            return self.env.get_template(path).render(context)
        except UserError as exc:
            if exc.at is None:
                exc.at = line_in(exc, path)
            raise
        except Exception as exc:  # {{ 1 / 0 }}, {{ 'a' + 1 }}: the template's, not a bug
            located = from_template(exc, path)
            if located is exc:
                raise
            raise located from None

    def line_map(self, path: str, text: str, interval: Interval, this: str) -> list[int]:
        """For each line of the rendering of `text`, the line of the template it comes
        from (1-based). The template's syntax tree is rendered with a marker after every
        newline of its literal text, which names the template line that follows; a line
        without one (a loop's output, a macro's) belongs to the last marker before it.
        For error messages only: it renders the model once more."""
        from jinja2 import nodes

        tree = self.env.parse(text, path, path)
        for node in tree.find_all(nodes.TemplateData):
            parts = node.data.split("\n")
            node.data = "\n".join(
                [parts[0]]
                + [f"\x01{node.lineno + i}\x02{part}" for i, part in enumerate(parts[1:], 1)]
            )
        template = self.env.template_class.from_code(
            self.env, self.env.compile(tree, path, path), self.env.make_globals(None)
        )
        start, end, ds = interval_values(interval)
        context = dict(self._macros(interval))
        context.update(
            interval_start=start,
            interval_end=end,
            ds=ds,
            this=this,
            is_incremental=self._incremental_of(this, interval),
        )
        self._current_path = path
        lines, current = [], 1
        for out in template.render(context).split("\n"):
            m = _MARK.match(out)
            if m:
                current = int(m[1])
            lines.append(current)
        return lines

    def _render_plain(self, text: str, values: dict, macros: dict) -> str | None:
        """What Jinja renders for a template whose only Jinja is `{{ name }}` (an interval
        value or `this`) and `{{ ref|var|source('literal', ...) }}`, the most common
        case, without compiling it (about 2 ms a template); None for anything else,
        and for any error: Jinja renders those, and reports their errors.

        As Jinja's code for it does: text as is, `str()` of each value or call result,
        names looked up in the render context before the globals (a macro called `ref`
        would shadow the function)."""
        if "\r" in text:  # Jinja normalises newlines; leave that to it
            return None
        out: list[str] = []
        pos = 0
        try:
            for m in _PLAIN_EXPR.finditer(text):
                data = text[pos : m.start()]
                if "{" in data:
                    return None
                out.append(data)
                name = m["name"]
                if m["call"] is None:
                    if name not in values:
                        return None
                    out.append(str(values[name]))
                else:
                    if name not in _PLAIN_CALLS or name in macros:
                        return None
                    args = _PLAIN_ARG.findall(m["args"] or "")
                    out.append(str(getattr(self, _PLAIN_CALLS[name])(*args)))
                pos = m.end()
        except Exception:  # noqa: BLE001 - Jinja renders it again and reports the error
            return None
        rest = text[pos:]
        if "{" in rest:
            return None
        out.append(rest)
        return "".join(out)

    def fingerprint_inputs(self) -> str:
        """A hash of all macros and vars: what any rendering may depend on."""
        h = hashlib.sha256()
        for path in self._macro_paths:
            h.update(path.encode() + b"\0" + self._sources[path].encode() + b"\0")
        h.update(_json(sorted(self._vars.items())).encode())
        return h.hexdigest()

    # -- what a model uses (its fingerprint hashes only that, SPEC §7)
    def uses(self, text: str, fragment: Callable[[str], str]) -> tuple:
        """What a model's Jinja uses, see `_uses_of`, and a digest of the template's
        shape (see `_shape`; `fragment` gives what counts of its literal SQL text), which
        the rendering for one interval does not show: a branch not taken. The common
        `{{ ref('x') }}` / `{{ name }}` templates, whose rendering shows all of them, are
        read without parsing them and have no shape digest."""
        if "\r" not in text and "{" not in _PLAIN_EXPR.sub("", text):
            names, vars_ = set(), set()
            for m in _PLAIN_EXPR.finditer(text):
                names.add(m["name"])
                if m["name"] == "var" and m["call"] is not None:
                    args = _PLAIN_ARG.findall(m["args"] or "")
                    if args:
                        vars_.add(args[0])
                    else:  # var(): an error when rendered, all vars to be safe
                        return tuple(sorted(names)), (), True, False, ""
            return tuple(sorted(names)), tuple(sorted(vars_)), False, False, ""
        try:
            tree = self.env.parse(text)
        except Exception:  # noqa: BLE001 - rendering reports it; hash everything meanwhile
            return (), (), True, True, _digest(text)
        return (*_uses_of(tree), _digest(_shape(tree, fragment)))

    def macro_defs(self, path: str, fragment: Callable[[str], str]) -> tuple | None:
        """What a macro file defines, for `inputs_digest`: ((name, digest, uses) of each
        top-level macro, `set` and `set` block; (digest, uses) of the other top-level
        statements). A digest hashes the definition's Jinja syntax tree (`_shape`), in
        which Jinja comments, line numbers and the spelling of the SQL text are not. None
        when the file does not parse."""
        try:
            from jinja2 import nodes

            tree = self.env.parse(self._sources[path])
        except Exception:  # noqa: BLE001 - rendering reports it
            return None
        defs, rest = [], []
        for node in tree.body:
            name = None
            if isinstance(node, nodes.Macro):
                name = node.name
            elif isinstance(node, nodes.Assign | nodes.AssignBlock) and isinstance(
                node.target, nodes.Name
            ):
                name = node.target.name
            if name is not None:
                defs.append((name, _digest(_shape(node, fragment)), _uses_of(node)))
            elif not (
                isinstance(node, nodes.Output)
                and all(isinstance(n, nodes.TemplateData) for n in node.nodes)
            ):
                rest.append(node)  # text between definitions renders nowhere
        return tuple(defs), (_digest(_shape(rest, fragment)), _uses_of(nodes.Template(rest)))

    def macro_names(self, path: str) -> tuple[tuple[str, int], ...]:
        """(name, line) of every macro a macro file defines; TemplateError, located, when
        the file is not valid Jinja."""
        from jinja2 import nodes

        try:
            tree = self.env.parse(self._sources[path], path, path)
        except Exception as exc:  # noqa: BLE001 - from_template re-raises pipe's own bugs
            located = from_template(exc, path)
            if located is exc:
                raise
            raise located from None
        return tuple((m.name, m.lineno) for m in tree.find_all(nodes.Macro))

    def inputs_digest(self, uses: tuple, files: list[tuple[str, tuple | None]]) -> str:
        """A hash of the macros and vars a model with these `uses` depends on: the macros
        it names, those they name in turn, the other top-level statements of their files,
        and the values of the vars any of them reads (all vars when one reads a var by a
        name that is not a literal). Everything, as `fingerprint_inputs`, when a template
        imports or includes another. `files`: (path, `macro_defs(path)`) of every macro
        file."""
        defs: dict[str, list[tuple]] = {}
        rests: dict[str, tuple] = {}
        for path, found in files:
            if found is None:
                return self.fingerprint_inputs()
            for name, digest, used in found[0]:
                defs.setdefault(name, []).append((path, digest, used))
            rests[path] = found[1]
        names, var_names, all_vars, opaque, shape = uses
        todo = [n for n in names if n in defs]
        seen: set[str] = set()
        parts: list = []
        vars_ = set(var_names)
        while todo and not opaque:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for path, digest, used in defs[name]:
                parts.append((path, name, digest))
                for u in (used, rests[path][1]):
                    todo.extend(n for n in u[0] if n in defs)
                    vars_.update(u[1])
                    all_vars, opaque = all_vars or u[2], opaque or u[3]
                parts.append((path, "", rests[path][0]))
        if opaque:
            return self.fingerprint_inputs()
        if all_vars:
            values = sorted(self._vars.items())
        else:
            values = [(v, self._vars.get(v, "\0undefined")) for v in sorted(vars_)]
        return _digest(_json([shape, sorted(set(parts)), values]))


def _shape(node, fragment: Callable[[str], str]) -> str:
    """A Jinja syntax tree written out like its repr (node types and fields, no line
    numbers), each piece of literal text as `fragment(text)`: the SQL's comments,
    whitespace and keyword case do not count in a template either."""
    from jinja2 import nodes

    if isinstance(node, nodes.TemplateData):
        return f"T({fragment(node.data)})"
    if isinstance(node, nodes.Node):
        fields = ",".join(_shape(getattr(node, f, None), fragment) for f in node.fields)
        return f"{type(node).__name__}({fields})"
    if isinstance(node, list | tuple):
        return "[" + ",".join(_shape(n, fragment) for n in node) + "]"
    return repr(node)


def _uses_of(tree) -> tuple:
    """(names a template loads, sorted; names of the vars it reads as `var('literal')`;
    whether it reads a var any other way (all vars count); whether it imports, includes
    or extends another template (all macros count))."""
    from jinja2 import nodes

    vars_: set[str] = set()
    literal: set[int] = set()  # the `var` names of var('literal') calls
    for call in tree.find_all(nodes.Call):
        if (
            isinstance(call.node, nodes.Name)
            and call.node.name == "var"
            and call.args
            and isinstance(call.args[0], nodes.Const)
            and isinstance(call.args[0].value, str)
            and not call.kwargs
            and call.dyn_args is None
            and call.dyn_kwargs is None
        ):
            vars_.add(call.args[0].value)
            literal.add(id(call.node))
    names: set[str] = set()
    all_vars = False
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load":
            names.add(name.name)
            all_vars = all_vars or (name.name == "var" and id(name) not in literal)
    opaque = any(
        True for _ in tree.find_all((nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends))
    )
    return tuple(sorted(names)), tuple(sorted(vars_)), all_vars, opaque


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


# `{{ name }}` or `{{ name('literal', ...) }}`, the literals plain names (no escapes)
_PLAIN_EXPR = re.compile(
    r"\{\{\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?P<call>\(\s*(?P<args>'[A-Za-z0-9_.]*'\s*(?:,\s*'[A-Za-z0-9_.]*'\s*)*)?\))?"
    r"\s*\}\}"
)
_MARK = re.compile(r"\x01(\d+)\x02")
_PLAIN_ARG = re.compile(r"'([A-Za-z0-9_.]*)'")
_PLAIN_CALLS = {"ref": "_ref", "var": "_var", "source": "_source"}


def render_snippet(
    text: str, interval: Interval | None, path: str, line: int | None, **extra
) -> str:
    """Render a short SQL snippet from YAML (a sensor's wait_for, an sql check)."""
    import jinja2

    context = dict(extra)
    if interval is not None:
        start, end, ds = interval_values(interval)
        context.update(interval_start=start, interval_end=end, ds=ds)
    try:
        return _snippet_env().from_string(text).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"Jinja error: {exc}", at=SourceLocation(path, line)) from None


@cache
def _snippet_env():
    import jinja2

    return sandbox_class()(undefined=jinja2.StrictUndefined)
