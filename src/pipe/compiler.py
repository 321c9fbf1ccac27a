"""RawProject -> CompiledProject: names resolved, dependencies inferred, graph checked.

No database and no clock here. A model's SQL is rendered with Jinja, parsed once per
distinct rendering (interval values normalised away, see templating.normalise), its tables
resolved against models, seeds and sources, and written out for the target dialect. A
parse cache under .pipe/cache keyed by the rendered text makes an unchanged project
recompile without parsing.

Name resolution (SPEC §2): `schema.table` as is; a bare `table` when exactly one model,
seed or source has that table name; CTE names shadow models (handled in sql.py).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from . import checks as checkmod
from . import engines
from . import graph as graphmod
from . import sql as sqlmod
from .config import ModelConfig, SourceConfig, Target
from .errors import (
    ConfigError,
    CycleError,
    SourceLocation,
    SqlError,
    TemplateError,
    UnknownTable,
    UserError,
    raise_collected,
)
from .intervals import Interval, floor, next_start, previous
from .loader import (
    RawProject,
    RawSeed,
    code_version,
    fork_pool,
    frozen_gc,
    read_pickle,
    run_all,
    workers,
    write_pickle,
)
from .templating import PLACEHOLDERS, Renderer, normalise, quoted_values

CACHE_VERSION = "5"  # 5: the output columns (sql.select_shape) kept with the tables
COMPILED_VERSION = "1"  # the compiled-project cache (see CompileState)

# Uncached models (to parse, or Jinja models to render) from which compile_project works
# in a pool of processes: below it, forking costs more than it saves.
PARALLEL_MIN = 200


@dataclass(frozen=True)
class Node:
    """A model, seed or source of the graph."""

    name: str
    kind: str  # full | incremental | view | seed | source
    path: str | None  # file that defines it, relative to the project
    upstream: tuple[str, ...] = ()
    fingerprint: str = ""
    grain: str | None = None
    config: ModelConfig = field(default_factory=ModelConfig)
    seed: RawSeed | None = None
    source: SourceConfig | None = None

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


class ParseCache:
    """Rendered-SQL hash -> (tables read (with offsets), canonical digest of the SQL),
    persisted as one pickle file. It also keeps what each Jinja model text and macro file
    uses ("jinja:" and "macros:" keys), for fingerprints."""

    def __init__(self, path: Path | None, readonly: bool = False):
        self.path = path
        self.readonly = readonly  # read the cache but write nothing (a dry run)
        self._data: dict[str, tuple] | None = None  # read on first use
        self.dirty = False

    @property
    def data(self) -> dict[str, tuple]:
        if self._data is None:
            self._data = {}
            if self.path:  # missing or corrupt: only a slower compile
                stored = read_pickle(self.path)
                if isinstance(stored, dict) and stored.get("version") == CACHE_VERSION:
                    self._data = stored["entries"]
        return self._data

    def save(self) -> None:
        if not (self.path and self.dirty) or self.readonly:
            return
        write_pickle(self.path, {"version": CACHE_VERSION, "entries": self.data})


class SqlBuilder:
    """Renders, parses (through the cache), resolves and writes one model's SQL."""

    def __init__(
        self,
        raw: RawProject,
        target: Target,
        index: Mapping[str, list[str]],
        names: set[str],
        cache: ParseCache,
    ):
        self.raw = raw
        self.dialect = raw.config.dialect
        self.target = target
        self.index = index  # bare table name -> full names
        self.names = names
        self.cache = cache
        self.renderer = Renderer(
            raw.macros,
            dict(raw.config.vars),
            self.resolve_ref,
            self.resolve_source,
            raw.root / ".pipe" / "cache" / "jinja.pickle" if cache.path else None,
            readonly=cache.readonly,
            is_incremental=self.is_incremental,
        )
        self._configs = {m.name: m.config for m in raw.models}
        self.sources = {s.name for s in raw.sources}
        # (path, interval) -> (normalised rendering, its parse-cache key), made by `prefetch`
        self._pending: dict[tuple[str, Interval], tuple[str, str]] = {}
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
        for nothing, as plan.build_plan chains them."""
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
    def _key(self, normalised: str) -> str:
        return hashlib.sha1(f"{self.dialect}\0{normalised}".encode()).hexdigest()

    def _refs(self, normalised: str, path: str, key: str | None = None):
        key = key or self._key(normalised)
        hit = self.cache.data.get(key)
        if hit is None:
            hit = _parse_refs(normalised, self.dialect, path)
            self.cache.data[key] = hit
            self.cache.dirty = True
        return hit

    def normalised(
        self, model: str, path: str, text: str, interval: Interval
    ) -> tuple[str, str | None]:
        """The model rendered for `interval`, its interval values replaced by placeholders,
        and its parse-cache key when already known."""
        ahead = self._pending.pop((path, interval), None)
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
            name = ".".join(p for p in parts if p)
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
        key = "jinja:" + self._key(text)
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
                mkey = "macros:" + self._key(f"{mpath}\0{source}")
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
            mkey = "macro-names:" + self._key(f"{mpath}\0{source}")
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

    def prefetch(self, models: list[tuple[str, str, str, Interval]]) -> None:
        """Do ahead, in a pool of worker processes, the slow part of `build` for many
        (model, path, text, interval): render the Jinja models and parse the renderings
        the parse cache lacks. Only the small results come back (the parse cache's
        tuples, renderings, parse-cache keys, compiled templates); `build` finds them.

        Stays in process on one core or below PARALLEL_MIN uncached models: a warm
        compile or a small edit parses little. A model that fails here is not reported
        here: `build` does it again and raises exactly as without a pool."""
        data = self.cache.data
        # (model, path, text, interval, key): key None for a Jinja model rendered in the
        # worker, "" for plain SQL the worker normalises, else the key of the normalised
        # SQL in `text`; every job is worth doing in a worker
        jobs: list[tuple] = []
        for model, path, text, interval in models:
            if "{" in text:
                if not data or not self.renderer.cheap(path, text):
                    # cold (its rendering will need parsing), or slow to compile
                    jobs.append((model, path, text, interval, None))
                    continue
                try:  # cheap to render here, and then its parse-cache key is known
                    normalised = normalise(
                        self.renderer.render(path, text, interval, model), interval
                    )
                except Exception:  # noqa: BLE001 - `build` renders it again and reports it
                    continue
            elif not data:  # nothing cached (a cold compile): all of it in the workers
                jobs.append((model, path, text, interval, ""))
                continue
            else:
                normalised = normalise(text, interval)
            key = self._key(normalised)
            self._pending[(path, interval)] = (normalised, key)
            if key not in data:
                jobs.append((model, path, normalised, interval, key))
        if len(jobs) < PARALLEL_MIN or workers() < 2:
            return
        try:  # imported once here, not in every worker
            sqlmod.get_dialect(self.dialect)
        except ValueError:  # an unknown dialect: `build` says so
            return
        if any(job[4] is None for job in jobs):
            self.renderer.env  # noqa: B018 - compiled templates read before forking
        size = max(25, min(100, -(-len(jobs) // (workers() * 4))))
        chunks = [(i, min(i + size, len(jobs))) for i in range(0, len(jobs), size)]
        global _JOBS, _BUILDER
        _JOBS, _BUILDER = jobs, self
        try:
            # frozen: a collection in a worker walks (so copies) only the worker's objects
            with frozen_gc(), fork_pool(len(chunks)) as pool:
                for results, compiled in run_all(pool, _prefetch_chunk, chunks):
                    for i, normalised, key, hit in results:
                        _, path, text, interval, known = jobs[i]
                        if not known:  # rendered or normalised in the worker
                            self._pending[(path, interval)] = (
                                text if normalised is None else normalised,
                                key,
                            )
                        if hit is not None and key not in data:
                            data[key] = hit
                            self.cache.dirty = True
                    self.renderer.add_compiled(compiled)
        except OSError:  # no process could be forked: `build` does the rest in process
            pass
        finally:
            _JOBS, _BUILDER = [], None

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
            schema, name = full.split(".", 1)
            sqlmod.qualify(table, schema, name)
        out = sqlmod.generate(tree, self.target.dialect, path)
        engines.ENGINES[self.target.adapter].validate_sql(tree, out, path)
        return out


def _parse_refs(normalised: str, dialect: str, path: str) -> tuple:
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


# SqlBuilder.prefetch's work, inherited by the forked workers (never pickled)
_JOBS: list[tuple] = []
_BUILDER: SqlBuilder | None = None


def _prefetch_chunk(bounds: tuple[int, int]):
    """In a worker: render and parse the jobs [start, end). Returns, per job that worked,
    (index, its normalised SQL or None when that is the job's text, parse-cache key,
    parse-cache entry or None when the parent has it), and the templates compiled."""
    builder = _BUILDER
    assert builder is not None
    data = builder.cache.data
    out = []
    for i in range(*bounds):
        model, path, text, interval, key = _JOBS[i]
        try:
            if key is None:  # Jinja
                normalised = normalise(
                    builder.renderer.render(path, text, interval, model), interval
                )
            elif key == "":
                normalised = normalise(text, interval)
            else:
                out.append((i, None, key, _parse_refs(text, builder.dialect, path)))
                continue
            key = builder._key(normalised)
            hit = None if key in data else _parse_refs(normalised, builder.dialect, path)
            out.append((i, None if normalised is text else normalised, key, hit))
        except Exception:  # noqa: BLE001 - `build` does it again and reports it
            continue
    return out, builder.renderer.take_compiled()


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


def fill(sql: str, interval: Interval) -> str:
    """Put an interval's values where `SqlBuilder.build` left placeholders."""
    if "__pipe_" not in sql:
        return sql
    for placeholder, quoted in zip(PLACEHOLDERS, quoted_values(interval), strict=True):
        sql = sql.replace(placeholder, quoted)
    return sql


class CompileState:
    """What a CompiledProject keeps besides its nodes: the SQL builder (made on first use:
    a compile served from the cache builds nothing), the reference SQL of plain models,
    and the caches to write when the command succeeds.

    The compiled-project cache, .pipe/cache/compiled-<target>.pickle, holds the nodes and
    graph of the last compile, keyed by `key`: a hash of every file the loader read (their
    contents), the target and `code_version()`. The plan records, .pipe/cache/plans.pickle,
    hold for each plan file the key of the inputs it was last built from and the sha256
    of its bytes (see plan.known_unchanged)."""

    def __init__(
        self,
        raw: RawProject,
        target: Target,
        use_cache: bool,
        write_cache: bool,
        key: str | None,
        builder: SqlBuilder | None = None,
        plain: dict[str, str] | None = None,
    ):
        self.raw = raw
        self.target = target
        self.use_cache = use_cache
        self.write_cache = write_cache
        self.key = key  # None: the project was not loaded from hashed files
        self._builder = builder
        self.plain = plain or {}
        self.pending: dict | None = None  # the compiled-project cache entry to write
        self._records: dict | None = None
        self.records_dirty = False
        self._sidecars: dict[str, str] | None = None
        self._texts: dict[str, str] | None = None

    def text(self, name: str) -> str:
        """A model's SQL file as written."""
        if self._texts is None:
            self._texts = {m.name: m.sql for m in self.raw.models}
        return self._texts[name]

    @property
    def cache_dir(self) -> Path:
        return self.raw.root / ".pipe" / "cache"

    @property
    def builder(self) -> SqlBuilder:
        if self._builder is None:
            names, index = _names(self.raw)
            cache = ParseCache(
                self.cache_dir / "parse.pickle" if self.use_cache else None,
                readonly=not self.write_cache,
            )
            self._builder = SqlBuilder(self.raw, self.target, index, names, cache)
        return self._builder

    def sidecar(self, name: str) -> str | None:
        """The file a model's checks come from: its sidecar, else the model file."""
        if self._sidecars is None:
            self._sidecars = {}
            for m in self.raw.models:
                self._sidecars.setdefault(m.name, m.sidecar or m.path)
        return self._sidecars.get(name)

    # -- plan records
    def records(self) -> dict:
        if self._records is None:
            self._records = {}
            if self.use_cache and self.key:
                found = read_pickle(self.cache_dir / "plans.pickle")
                if isinstance(found, dict) and found.get("version") == COMPILED_VERSION:
                    self._records = found["entries"]
        return self._records

    def record(self, rel: str, value) -> None:
        if self.records().get(rel) != value:
            self._records[rel] = value
            self.records_dirty = True

    def save(self) -> None:
        if not (self.use_cache and self.write_cache):
            return
        if self._builder is not None:
            self._builder.cache.save()
            self._builder.renderer.save_cache()
        files = getattr(self.raw, "files", None)
        if files is not None:
            files.save()
        if self.pending is not None:
            write_pickle(self.cache_dir / _compiled_name(self.target.name), self.pending)
            self.pending = None
        if self.records_dirty:
            write_pickle(
                self.cache_dir / "plans.pickle",
                {"version": COMPILED_VERSION, "entries": self._records},
            )
            self.records_dirty = False


def _compiled_name(target: str) -> str:
    return f"compiled-{hashlib.sha1(target.encode()).hexdigest()[:12]}.pickle"


@dataclass(frozen=True)
class CompiledProject:
    raw: RawProject
    target: Target
    nodes: Mapping[str, Node]
    graph: graphmod.Graph
    state: CompileState = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.raw.config.name

    @property
    def builder(self) -> SqlBuilder:
        return self.state.builder

    @property
    def key(self) -> str | None:
        """A hash of everything this compile was made from (None: not known)."""
        return self.state.key

    def models(self) -> list[Node]:
        return [self.nodes[n] for n in self.graph.order if self.nodes[n].kind != "source"]

    def model_sql(self, name: str, interval: Interval) -> str:
        """The final SQL of a model for one interval, in the target dialect."""
        node = self.nodes[name]
        text = self.state.text(name)
        plain = self.state.plain.get(name)
        if plain is not None and not _mentions(text, interval):
            # no Jinja, no interval value: the SQL compile_project made for its start
            return plain
        out, reads, _, _ = self.builder.build(name, node.path, text, interval)
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

    def sidecar(self, name: str) -> str | None:
        return self.state.sidecar(name)

    def save_cache(self) -> None:
        self.state.save()


def _mentions(text: str, interval: Interval) -> bool:
    """Whether `text` holds one of the interval's quoted values (normalise would change it)."""
    return any(q in text for q in quoted_values(interval))


def _plain_sql(text: str, out: str, interval: Interval) -> bool:
    """Whether `out`, made from `text` for `interval`, is the model's SQL for any interval
    whose values `text` does not mention: no Jinja, no interval value, no placeholder."""
    return (
        "{" not in text
        and "__pipe_" not in text
        and "__pipe_" not in out
        and not _mentions(text, interval)
    )


def reference_interval(raw: RawProject, grain: str) -> Interval:
    """The interval a model is rendered for to infer its dependencies: its first one."""
    start = floor(raw.config.start or datetime(2000, 1, 1), grain)
    return Interval(start, next_start(start, grain))


def _names(raw: RawProject) -> tuple[set[str], dict[str, list[str]]]:
    """Every node name, and bare table name -> the full names that have it."""
    names = (
        {m.name for m in raw.models} | {s.name for s in raw.seeds} | {s.name for s in raw.sources}
    )
    index: dict[str, list[str]] = {}
    for n in sorted(names):
        index.setdefault(n.split(".", 1)[1], []).append(n)
    return names, index


def _compile_key(raw: RawProject, target: Target) -> str | None:
    digest = getattr(raw, "digest", "")
    if not digest:
        return None
    return hashlib.sha256(
        f"{COMPILED_VERSION}\0{code_version()}\0{digest}\0{target.name}".encode()
    ).hexdigest()


def _from_cache(raw: RawProject, target: Target, key: str, write_cache: bool):
    found = read_pickle(raw.root / ".pipe" / "cache" / _compiled_name(target.name))
    if not isinstance(found, dict) or found.get("key") != key:
        return None
    try:
        texts = {m.name: m.sql for m in raw.models}
        plain = {n: texts[n] if sql is None else sql for n, sql in found["plain"].items()}
        state = CompileState(raw, target, True, write_cache, key, plain=plain)
        state._texts = texts
        return CompiledProject(
            raw, target, found["nodes"], graphmod.Graph(found["upstream"], found["order"]), state
        )
    except Exception:  # noqa: BLE001 - a cache from another pipe: compile
        return None


def compile_project(
    raw: RawProject,
    target_name: str | None = None,
    use_cache: bool = True,
    write_cache: bool = True,
) -> CompiledProject:
    """Resolve every dependency and check the graph; raise all user errors together.

    With `use_cache`, an unchanged project (the same file contents, see loader.FileCache)
    is not compiled again: its nodes come from the compiled-project cache."""
    target = raw.config.target(target_name)
    key = _compile_key(raw, target) if use_cache else None
    if key is not None:
        hit = _from_cache(raw, target, key, write_cache)
        if hit is not None:
            return hit
    with frozen_gc():
        return _compile(raw, target, key, use_cache, write_cache)


def _compile(
    raw: RawProject, target: Target, key: str | None, use_cache: bool, write_cache: bool
) -> CompiledProject:
    errors: list[UserError] = []
    defined: dict[str, str] = {}  # name -> path that defines it

    def define(name: str, path: str, line: int | None, what: str) -> bool:
        bad = _bad_name(name, target, raw.config.dialect)
        if bad:
            errors.append(ConfigError(bad[0], at=SourceLocation(path, line), hint=bad[1]))
            return False
        if name in defined:
            errors.append(
                ConfigError(
                    f"duplicate name '{name}': {what} here and in {defined[name]}",
                    at=SourceLocation(path, line),
                )
            )
            return False
        defined[name] = path
        return True

    for m in raw.models:
        define(m.name, m.path, 1, "a model")
    for s in raw.seeds:
        define(s.name, s.path, 1, "a seed")
    for src in raw.sources:
        define(src.name, "sources.yml", src.line, "a source")
    names = set(defined)
    index: dict[str, list[str]] = {}
    for n in sorted(names):
        index.setdefault(n.split(".", 1)[1], []).append(n)

    cache = ParseCache(
        raw.root / ".pipe" / "cache" / "parse.pickle" if use_cache else None,
        readonly=not write_cache,
    )
    builder = SqlBuilder(raw, target, index, names, cache)
    schedule = raw.config.schedule
    references: dict[str, Interval] = {}

    def reference(grain: str) -> Interval:
        if grain not in references:
            references[grain] = reference_interval(raw, grain)
        return references[grain]

    builder.check_macros(errors)
    if errors:  # a broken macro file would fail every Jinja model again
        raise_collected(errors)
    builder.prefetch(
        [(m.name, m.path, m.sql, reference(m.config.grain or schedule)) for m in raw.models]
    )

    upstream: dict[str, tuple[str, ...]] = {}
    sql_digest: dict[str, str] = {}  # canonical digest of the reference rendering
    plain: dict[str, str] = {}  # plain models: their SQL for every interval
    configs: dict[str, ModelConfig] = {}  # checks' table names resolved
    locate: dict[str, SourceLocation] = {}
    shapes: dict[str, tuple | None] = {}  # a model's output columns, see checks.OutputColumns
    for m in raw.models:
        grain = m.config.grain or schedule
        locate[m.name] = SourceLocation(m.path, 1)
        try:
            out, reads, digest, shapes[m.name] = builder.build(
                m.name, m.path, m.sql, reference(grain), errors
            )
        except UserError as exc:
            errors.append(exc)
            continue
        extra = []
        for dep, line in zip(m.config.depends_on, m.config.depends_on_lines, strict=True):
            try:
                extra.append(builder.resolve(dep, SourceLocation(m.sidecar, line)))
            except UnknownTable as exc:
                errors.append(exc)
        checks = m.config.checks
        if checks:  # the tables they read resolved, and made edges
            scope = checkmod.CheckScope(
                m.name, m.sidecar, raw.config.dialect, reference(grain), builder.resolve
            )
            checks, check_reads = checkmod.compile_checks(checks, scope, errors)
            extra += check_reads
        configs[m.name] = (
            m.config if checks == m.config.checks else replace(m.config, checks=checks)
        )
        upstream[m.name] = tuple(sorted(set(reads) | set(extra) - {m.name}))
        sql_digest[m.name] = digest
        if _plain_sql(m.sql, out, reference(grain)):
            plain[m.name] = out
    for s in raw.seeds:
        upstream[s.name] = ()
    for src in raw.sources:
        upstream[src.name] = ()
    errors += checkmod.unknown_columns(
        [(m.name, configs[m.name].checks, m.sidecar) for m in raw.models if m.name in configs],
        shapes,
        {s.name: tuple(c for c, _ in s.columns) for s in raw.sources if s.columns},
        builder.resolve,
        raw.config.dialect,
    )
    raise_collected(errors)

    graph = graphmod.build(upstream, locate)
    nodes: dict[str, Node] = {}
    by_model = {m.name: m for m in raw.models}
    seeds = {s.name: s for s in raw.seeds}
    sources = {s.name: s for s in raw.sources}
    for name in graph.order:
        ups = graph.upstream[name]
        if name in seeds:
            s = seeds[name]
            fp = _hash({"seed": s.sha256, "types": s.config.column_types, "target": target.dialect})
            nodes[name] = Node(name, "seed", s.path, ups, fp, seed=s)
        elif name in sources:
            src = sources[name]
            nodes[name] = Node(
                name,
                "source",
                "sources.yml",
                ups,
                _hash({"source": name, "wait_for": src.wait_for}),
                source=src,
            )
        else:
            m = by_model[name]
            c = configs[name]
            # SPEC §7: what the model means, not how it is spelled. The upstream names
            # count: a bare name that resolves to another table changes no token.
            fp = _hash(
                {
                    "sql": sql_digest[name],
                    "macros": builder.jinja_inputs(m.path, m.sql) if "{" in m.sql else "",
                    "kind": c.kind,
                    "time_column": c.time_column,
                    "grain": c.grain or schedule,
                    "checks": _check_tuples(c),
                    "upstream": [[u, nodes[u].fingerprint] for u in ups],
                    "target": target.dialect,
                }
            )
            nodes[name] = Node(name, c.kind, m.path, ups, fp, grain=c.grain or schedule, config=c)
    state = CompileState(raw, target, use_cache, write_cache, key, builder, plain)
    if key is not None and write_cache:
        state.pending = {
            "key": key,
            "nodes": nodes,
            "upstream": graph.upstream,
            "order": graph.order,
            "plain": {n: None if sql == by_model[n].sql else sql for n, sql in plain.items()},
        }
    return CompiledProject(raw, target, nodes, graph, state)


PIPE_SCHEMA = "_pipe"  # pipe's own relations (the ledger); adapters.base.LEDGER


def _bad_name(name: str, target: Target, dialect: str) -> tuple[str, str] | None:
    """(message, hint) when a table name cannot work on `target`: pipe's own schema, a
    word an engine reserves (engines.py; `dialect` is the models'), a part longer than the
    target's engine keeps."""
    schema, table = name.split(".", 1)
    if schema == PIPE_SCHEMA:
        return (
            f"'{name}': schema '{PIPE_SCHEMA}' is pipe's own (its ledger lives there)",
            "use another schema",
        )
    if engines.reserved(schema):
        return (
            f"'{name}': '{schema}' is a reserved word in SQL and cannot name a schema",
            f"rename the folder, e.g. '{schema}s' or '{schema}_'; pipe writes names unquoted",
        )
    if engines.reserved_for_tables(table) or (
        engines.reserved(table) and not sqlmod.readable_after_schema(table, dialect)
    ):
        return (
            f"'{name}': '{table}' is a reserved word in SQL and cannot name a table",
            f"rename it, e.g. '{table}s' or '{table}_'; pipe writes names unquoted",
        )
    rules = engines.ENGINES[target.adapter]
    return rules.name_problem(schema, target.name) or rules.name_problem(table, target.name)


def _check_tuples(c: ModelConfig):
    return [
        [ch.type, ch.name, repr(ch.args), ch.severity, ch.warn_if, ch.error_if] for ch in c.checks
    ]


def _hash(value) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
