"""One model x one interval -> SQL: render, parse (through the parse cache), resolve,
qualify, transpile, the target's rules.

`SqlBuilder` is the compiler's worker: `build` renders a model for an interval with
Jinja, replaces the interval's values by placeholders (intervalsql.normalise), parses the
result once per distinct text (the parse cache under .pipe/cache keeps the tables it
reads and a canonical digest), resolves every table against models, seeds and sources,
and writes the SQL for the target dialect with the placeholders left in (`intervalsql.fill`
puts an interval's values back). sqlprefetch.py does the slow part for many models at once
in forked workers.

`ModelSql` is what a plan takes its SQL from: one model x one interval -> its final SQL,
fed by a CompiledProject (the SQL its compile built for each model's reference interval,
see `reference_interval`), building only what the compile did not.

Name resolution (SPEC §2): `schema.table` as is; a bare `table` when exactly one model,
seed or source has that table name; CTE names shadow models (handled in sql.py).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import engines
from . import sql as sqlmod
from .cache import Store, cache_dir, store
from .config import Target
from .errors import (
    CycleError,
    SourceLocation,
    SqlError,
    TemplateError,
    UnknownTable,
    UserError,
)
from .intervals import Interval, floor, next_start, previous
from .intervalsql import fill, mentions, normalise
from .loader import RawProject
from .names import TableName, written
from .templating import Renderer

if TYPE_CHECKING:
    from .compiler import CompiledProject

CACHE_VERSION = "5"  # 5: the output columns (sql.select_shape) kept with the tables


def parse_cache(root: Path, use_cache: bool, readonly: bool) -> Store:
    """Rendered-SQL hash -> (tables read (with offsets), canonical digest of the SQL). It
    also keeps what each Jinja model text and macro file uses ("jinja:" and "macros:"
    keys), for fingerprints, and each model's SQL for the target ("transpile:")."""
    return store(root, "parse.pickle", CACHE_VERSION, use_cache, readonly)


class SqlBuilder:
    """Renders, parses (through the cache), resolves and writes one model's SQL."""

    def __init__(
        self,
        raw: RawProject,
        target: Target,
        index: Mapping[str, list[str]],
        names: set[str],
        cache: Store,
    ):
        self.raw = raw
        self.dialect = raw.config.dialect
        self.target = target
        self.index = index  # bare table name -> full names
        self.names = names
        self.cache = cache
        # nothing parsed before (a cold compile): every model is rendered and parsed in
        # the workers; noted now, before check_macros adds its entries
        self.cold = not cache.data
        self.renderer = Renderer(
            raw.macros,
            dict(raw.config.vars),
            self.resolve_ref,
            self.resolve_source,
            cache_dir(raw.root) / "jinja.pickle" if cache.path else None,
            readonly=cache.readonly,
            is_incremental=self.is_incremental,
        )
        self._configs = {m.name: m.config for m in raw.models}
        self.sources = {s.name for s in raw.sources}
        # (path, interval) -> (normalised rendering, its parse-cache key), made by `prefetch`
        self.pending: dict[tuple[str, Interval], tuple[str, str]] = {}
        self._macro_defs: list | None = None  # (path, Renderer.macro_defs(path)) per file
        self._inputs: dict[tuple, str] = {}  # Renderer.uses(...) -> inputs_digest: most
        # Jinja models use the same few names

    # -- names
    def resolve(self, name: str, at: SourceLocation | None) -> str:
        name = name.lower() if name == name.lower() or '"' not in name else name
        if name in self.names:
            return name
        if "." not in name:
            found = self.index.get(name, [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise UnknownTable(
                    f"table '{name}' is ambiguous",
                    at=at,
                    hint="write one of " + ", ".join(sorted(found)),
                )
        close = difflib.get_close_matches(name, sorted(self.names), n=1, cutoff=0.6)
        if not close and "." not in name:
            close = difflib.get_close_matches(name, sorted(self.index), n=1, cutoff=0.6)
            close = [self.index[close[0]][0]] if close else []
        raise UnknownTable(
            f"unknown table '{name}': not a model, a seed or a source in sources.yml",
            at=at,
            hint=f"did you mean '{close[0]}'?"
            if close
            else "declare external tables in sources.yml",
        )

    def resolve_ref(self, name: str, path: str) -> str:
        try:
            return self.resolve(name, None)
        except UnknownTable as exc:
            raise TemplateError(f"ref('{name}'): {exc.message}", hint=exc.hint) from None

    def resolve_source(self, name: str, path: str) -> str:
        if name not in self.sources:
            close = difflib.get_close_matches(name, sorted(self.sources), n=1)
            raise TemplateError(
                f"source('{name}') is not declared in sources.yml",
                hint=f"did you mean '{close[0]}'?" if close else None,
            )
        return name

    def is_incremental(self, model: str, interval: Interval) -> bool:
        """`{{ is_incremental() }}`: whether the model's table holds published rows when
        the task for `interval` runs. pipe knows it at compile time for an incremental
        model with depends_on_past: every interval but the first waits for the one before
        it to be published, and the first (the one that holds the project's `start`) waits
        for nothing, as planner.build_plan chains them."""
        c = self._configs.get(model)
        if c is None or c.kind != "incremental" or not c.depends_on_past:
            raise TemplateError(
                "is_incremental() needs 'kind: incremental' and 'depends_on_past: true' in"
                " the model's sidecar",
                hint="only then is the interval before this one"
                " published whenever this one runs, so the answer is known when compiling",
            )
        start = self.raw.config.start
        return (
            start is None or previous(interval, c.grain or self.raw.config.schedule).start >= start
        )

    # -- SQL
    def key(self, normalised: str) -> str:
        return hashlib.sha1(f"{self.dialect}\0{normalised}".encode()).hexdigest()

    def _refs(self, normalised: str, path: str, key: str | None = None):
        key = key or self.key(normalised)
        hit = self.cache.data.get(key)
        if hit is None:
            hit = parse_refs(normalised, self.dialect, path)
            self.cache.data[key] = hit
            self.cache.dirty = True
        return hit

    def normalised(
        self, model: str, path: str, text: str, interval: Interval
    ) -> tuple[str, str | None]:
        """The model rendered for `interval`, its interval values replaced by placeholders,
        and its parse-cache key when already known."""
        ahead = self.pending.pop((path, interval), None)
        if ahead is not None:
            return ahead
        return normalise(self.renderer.render(path, text, interval, model), interval), None

    def build(
        self,
        model: str,
        path: str,
        text: str,
        interval: Interval,
        errors: list[UserError] | None = None,
    ) -> tuple[str, tuple[str, ...], str, tuple | None]:
        """(SQL for the target with interval placeholders, tables read, canonical digest
        of the rendering, see sql.canonical_digest, its output columns as
        sql.select_shape tells them) of one rendering.

        Unknown tables are appended to `errors` when given (compile collects them all),
        raised otherwise."""
        normalised, key = self.normalised(model, path, text, interval)
        try:
            refs, digest, shape = self._refs(normalised, path, key)
        except SqlError as exc:
            exc.at = self._in_template(exc.at, model, text, normalised, interval)
            raise
        reads: list[str] = []
        splices: list[tuple[int, int, str]] = []
        for parts, line, col, start, end in refs:
            name = written(parts)
            try:
                full = self.resolve(name, None)
            except UnknownTable as exc:  # located only now: most names resolve
                exc.at = self._in_template(
                    SourceLocation(path, line, col), model, text, normalised, interval
                )
                if errors is None:
                    raise
                errors.append(exc)
                continue
            if full != name and not parts[0]:
                splices.append((start, end, full))
            if full != model:  # reading its own past ({{ this }}) is no edge
                reads.append(full)
            elif not _USES_THIS.search(text):
                exc = CycleError(
                    f"dependency cycle: {model} -> {model} (the model reads its own table)",
                    hint="read its published rows as {{ this }}"
                    " (with depends_on_past), or read another table",
                )
                exc.at = self._in_template(
                    SourceLocation(path, line, col), model, text, normalised, interval
                )
                if errors is None:
                    raise exc
                errors.append(exc)
        if self.target.dialect == self.dialect:
            out = normalised
            for start, end, full in sorted(splices, reverse=True):
                out = out[:start] + full + out[end + 1 :]
        else:
            out = self._transpile(normalised, path, splices)
        return out, tuple(sorted(set(reads))), digest, shape

    def _in_template(
        self, at: SourceLocation | None, model: str, text: str, normalised: str, interval: Interval
    ) -> SourceLocation | None:
        """A place in the rendering as a place in the model file (an error path only): a
        Jinja loop or a macro's output adds lines, so the line is looked up in a marked
        rendering (Renderer.line_map); the column is kept where the line was not changed."""
        if at is None or at.line is None or "{" not in text:
            return _in_source(at, text, normalised)
        try:
            lines = self.renderer.line_map(at.path, text, interval, model)
        except Exception:  # noqa: BLE001 - it rendered once; keep the rendering's line
            return _in_source(at, text, normalised)
        out = normalised.splitlines()
        if at.line > len(lines):
            return replace(at, col=None)
        line = lines[at.line - 1]
        src = text.splitlines()
        same = line <= len(src) and at.line <= len(out) and src[line - 1] == out[at.line - 1]
        return SourceLocation(at.path, line, at.col if same else None)

    def jinja_inputs(self, path: str, text: str) -> str:
        """A hash of the macros and vars a Jinja model uses (Renderer.inputs_digest); what
        the model text and each macro file use is kept in the parse cache."""
        data = self.cache.data
        key = "jinja:" + self.key(text)
        uses = data.get(key)
        if uses is None:
            uses = data[key] = self.renderer.uses(text, self._fragment)
            self.cache.dirty = True
        found = self._inputs.get(uses)
        if found is None:
            found = self._inputs[uses] = self.renderer.inputs_digest(uses, self.macro_defs())
        return found

    def macro_defs(self) -> list:
        """(path, Renderer.macro_defs(path)) of every macro file, through the parse cache."""
        if self._macro_defs is None:
            data = self.cache.data
            self._macro_defs = []
            for mpath, source in self.raw.macros:
                mkey = "macros:" + self.key(f"{mpath}\0{source}")
                found = data.get(mkey)
                if found is None:
                    found = data[mkey] = self.renderer.macro_defs(mpath, self._fragment)
                    self.cache.dirty = True
                self._macro_defs.append((mpath, found))
        return self._macro_defs

    def check_macros(self, errors: list[UserError]) -> None:
        """Every macro file is valid Jinja and no two macros share a name (a model would
        silently get whichever file sorts last). Each file is parsed once per version of
        it: its macro names are kept in the parse cache."""
        data = self.cache.data
        first: dict[str, SourceLocation] = {}
        for mpath, source in self.raw.macros:
            mkey = "macro-names:" + self.key(f"{mpath}\0{source}")
            found = data.get(mkey)
            if found is None:
                try:
                    found = self.renderer.macro_names(mpath)
                except TemplateError as exc:
                    errors.append(exc)
                    continue
                data[mkey] = found
                self.cache.dirty = True
            for name, line in found:
                at = SourceLocation(mpath, line)
                if name in first:
                    errors.append(
                        TemplateError(
                            f"macro '{name}' is defined twice: here and at {first[name]}",
                            at=at,
                            hint="rename one of them; a model would get whichever is read last",
                        )
                    )
                else:
                    first[name] = at

    def _fragment(self, text: str) -> str:
        return sqlmod.fragment_key(text, self.dialect)

    def _transpile(self, normalised: str, path: str, splices) -> str:
        """The model in the target dialect, names qualified; cached like the parse, since
        placeholders stand for the interval values (the resolved names are in the key)."""
        key = (
            "transpile:"
            + hashlib.sha1(
                f"{self.dialect}\0{self.target.dialect}\0{sorted(splices)}\0{normalised}".encode()
            ).hexdigest()
        )
        out = self.cache.data.get(key)
        if out is None:
            out = self._transpile_uncached(normalised, path)
            self.cache.data[key] = out
            self.cache.dirty = True
        return out

    def _transpile_uncached(self, normalised: str, path: str) -> str:
        try:
            return self._transpile_tree(normalised, path)
        except RecursionError:
            raise sqlmod.too_deep(normalised, path) from None

    def _transpile_tree(self, normalised: str, path: str) -> str:
        tree = sqlmod.parse_select(normalised, self.dialect, path)
        for ref, table in sqlmod.table_refs(tree):
            if ref.parts[0]:
                continue
            try:
                full = self.resolve(ref.name, None)
            except UnknownTable:
                continue
            sqlmod.qualify(table, TableName.parse(full))
        out = sqlmod.generate(tree, self.target.dialect, path)
        engines.ENGINES[self.target.adapter].validate_sql(tree, out, path)
        return out


def reference_interval(raw: RawProject, grain: str) -> Interval:
    """The interval a model is rendered for to infer its dependencies: its first one."""
    start = floor(raw.config.start or datetime(2000, 1, 1), grain)
    return Interval(start, next_start(start, grain))


class ModelSql:
    """One model x one interval -> its final SQL in the target dialect, for plans.

    Fed by a compiled project: a plain model's SQL (no Jinja, no interval value) serves
    every interval its text does not mention; the SQL the compile built for a model's
    reference interval serves that interval; any other is rendered and built with the
    compile's SqlBuilder, and may read no table the reference interval does not."""

    def __init__(self, cp: CompiledProject):
        self.cp = cp
        self._texts: dict[str, str] | None = None
        self._references: dict[str, Interval] = {}

    def text(self, name: str) -> str:
        """A model's SQL file as written."""
        if self._texts is None:
            self._texts = {m.name: m.sql for m in self.cp.raw.models}
        return self._texts[name]

    def reference(self, grain: str) -> Interval:
        found = self._references.get(grain)
        if found is None:
            found = self._references[grain] = reference_interval(self.cp.raw, grain)
        return found

    def built(self, name: str, interval: Interval) -> bool:
        """Whether the compile built (and so checked) the model's SQL for `interval`."""
        cp = self.cp
        return (name in cp.plain or name in cp.reference) and interval == self.reference(
            cp.nodes[name].grain
        )

    def sql(self, name: str, interval: Interval) -> str:
        cp = self.cp
        node = cp.nodes[name]
        text = self.text(name)
        plain = cp.plain.get(name)
        if plain is not None and not mentions(text, interval):
            return plain
        built = cp.reference.get(name)
        if built is not None and interval == self.reference(node.grain):
            return fill(built, interval)  # what building it again would give
        out, reads, _, _ = cp.builder.build(name, node.path, text, interval)
        extra = set(reads) - set(node.upstream)
        if extra:
            raise SqlError(
                f"for interval {interval.label} this model reads "
                f"{', '.join(sorted(extra))}, which it does not read for the "
                "project's start interval",
                at=SourceLocation(node.path),
                hint="add them to 'depends_on' in the sidecar",
            )
        return fill(out, interval)


def parse_refs(normalised: str, dialect: str, path: str) -> tuple:
    """What the parse cache keeps of one rendering: (parts, line, col, start, end) of every
    table it reads, the canonical digest of its SQL (made from the parse's tokens) and
    its output columns (sql.select_shape)."""
    tree, digest = sqlmod.parse_canonical(normalised, dialect, path)
    try:
        return (
            tuple(
                (r.parts, r.line, r.col, _first_part(t).meta.get("start"), t.this.meta.get("end"))
                for r, t in sqlmod.table_refs(tree)
            ),
            digest,
            sqlmod.select_shape(tree),
        )
    except RecursionError:
        raise sqlmod.too_deep(normalised, path) from None


def _first_part(table):
    """The first name part of a table reference: `"s"` of `"s"."ORDERS"`."""
    for part in (table.args.get("catalog"), table.args.get("db")):
        if part is not None and part.meta.get("start") is not None:
            return part
    return table.this


_USES_THIS = re.compile(r"\{[{%][^}]*\bthis\b")


def _in_source(at: SourceLocation | None, source: str, rendered: str) -> SourceLocation | None:
    """A place in the rendered SQL as a place in the model file: the line is the same
    (Jinja keeps lines), the column only where that line was not changed by rendering."""
    if at is None or at.line is None or at.col is None:
        return at
    src, out = source.splitlines(), rendered.splitlines()
    if at.line > len(src) or at.line > len(out) or src[at.line - 1] != out[at.line - 1]:
        return replace(at, col=None)
    return at
