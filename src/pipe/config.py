"""Frozen configuration values (pipe.yml, targets, sidecars, sources, seeds) and the
validation of sidecars, sources.yml and seeds' sidecars; pipe.yml is read by
projectconfig.py.

Every key is checked: an unknown key, a wrong type or a missing required key is a
ConfigError naming the file and the line of the key. Parsing here is pure: no file
system, no environment variables (targets keep `${VAR}` until a run connects). A sidecar's
`checks:` are parsed by the check registry (checks.py); the field readers are fields.py's.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import ConfigError, SourceLocation, UserError
from .fields import Fields as _Ctx
from .intervals import GRAINS
from .yamlio import YMap

if TYPE_CHECKING:  # the runner reads configs without importing the check registry
    from .checks import Check

KINDS = ("full", "incremental", "view")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Target:
    name: str
    adapter: str
    dialect: str
    options: tuple[tuple[str, object], ...]  # path, dsn, schema... as written (${VAR} kept)

    def option(self, key: str, default=None):
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class OpenLineageSettings:
    """`openlineage:` in pipe.yml: the namespace of pipe's jobs (None: the project name) and
    the openlineage-python client's own `transport` config, as canonical JSON (None: the
    client's environment variables or openlineage.yml decide). `${VAR}` stays unexpanded
    until a run builds the client."""

    namespace: str | None = None
    transport: str | None = None


@dataclass(frozen=True)
class ProjectConfig:
    name: str
    dialect: str = "duckdb"
    start: datetime | None = None
    schedule: str = "daily"
    concurrency: int = 4
    pools: tuple[tuple[str, int], ...] = ()
    default_target: str = "dev"
    targets: tuple[Target, ...] = ()
    vars: tuple[tuple[str, object], ...] = ()
    backfill_concurrency: int | None = None
    openlineage: OpenLineageSettings | None = None
    warnings: tuple[str, ...] = ()  # shown by every command; they stop nothing

    def target(self, name: str | None) -> Target:
        name = name or self.default_target
        for t in self.targets:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.targets) or "none"
        raise ConfigError(
            f"unknown target '{name}' (targets in pipe.yml: {known})", at=SourceLocation("pipe.yml")
        )


@dataclass(frozen=True)
class Freshness:
    """`freshness: {warn_after: 26h, error_after: 48h}`: how old (seconds) a table's newest
    data may get before `pipe status --freshness` warns or fails."""

    warn_after: float | None = None
    error_after: float | None = None


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "full"
    time_column: str | None = None
    grain: str | None = None
    depends_on_past: bool = False
    depends_on: tuple[str, ...] = ()
    pool: str | None = None
    max_concurrency: int | None = None
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    checks: tuple[Check, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    depends_on_lines: tuple[int, ...] = ()
    freshness: Freshness | None = None
    lookback: int = 0
    on_schema_change: str = "fail"
    grants: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (privilege, roles), sorted


PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")
ON_SCHEMA_CHANGE = ("fail", "append_new_columns", "sync_all_columns")


@dataclass(frozen=True)
class SourceConfig:
    name: str
    wait_for: str | None = None
    poke_every: float = 30.0
    wait_timeout: float = 3600.0
    description: str | None = None
    line: int | None = None
    columns: tuple[tuple[str, str], ...] = ()  # column -> documentation; names feed lineage
    freshness: Freshness | None = None
    loaded_at: str | None = None  # a column of the source, or a query returning one timestamp


@dataclass(frozen=True)
class SeedConfig:
    column_types: tuple[tuple[str, str], ...] = ()
    description: str | None = None
    columns: tuple[tuple[str, str], ...] = ()


# ---------------------------------------------------------------- model sidecars

_MODEL_KEYS = {
    "kind",
    "time_column",
    "grain",
    "depends_on_past",
    "depends_on",
    "pool",
    "max_concurrency",
    "retries",
    "retry_delay",
    "timeout",
    "checks",
    "columns",
    "tags",
    "description",
    "lookback",
    "on_schema_change",
    "grants",
    "freshness",
}


def parse_model_config(
    data, path: str, errors: list[UserError], pools: tuple | None = ()
) -> ModelConfig:
    ctx = _Ctx(path, errors)
    m = ctx.mapping(data, "a model's sidecar", 1)
    if m is None:
        return ModelConfig()
    ctx.keys(m, _MODEL_KEYS)
    kind = ctx.choice(m, "kind", KINDS, "full")
    time_column = ctx.typed(m, "time_column", str)
    if kind == "incremental" and not time_column:
        ctx.err(
            "an incremental model needs 'time_column' (the column whose "
            "[interval_start, interval_end) rows each task owns)",
            m.line_of("kind"),
        )
    pool = _pool(ctx, m, pools)
    from .checks import parse_checks  # not at import: the runner reads configs, not checks

    checks = parse_checks(ctx, m.get("checks"), m.line_of("checks"))
    depends_on = ctx.str_list(m, "depends_on")
    lookback = ctx.positive_int(m, "lookback", 0, minimum=0)
    on_schema_change = ctx.choice(m, "on_schema_change", ON_SCHEMA_CHANGE, "fail")
    for key, used in (("lookback", lookback), ("on_schema_change", on_schema_change != "fail")):
        if used and kind != "incremental":
            ctx.err(
                f"'{key}' applies to incremental models only (this one is {kind})",
                m.line_of(key),
                "remove it, or make the model kind: incremental",
            )
    grants = _grants(ctx, m)
    return ModelConfig(
        kind=kind,
        time_column=time_column,
        grain=ctx.choice(m, "grain", GRAINS, None),
        depends_on_past=ctx.typed(m, "depends_on_past", bool, False),
        depends_on=depends_on,
        pool=pool,
        max_concurrency=ctx.positive_int(m, "max_concurrency", None),
        retries=ctx.positive_int(m, "retries", 0, minimum=0),
        retry_delay=ctx.duration(m, "retry_delay", 1.0),
        timeout=ctx.duration(m, "timeout", None),
        checks=checks,
        columns=ctx.str_map(m, "columns"),
        tags=ctx.str_list(m, "tags"),
        description=ctx.typed(m, "description", str),
        depends_on_lines=(m.line_of("depends_on"),) * len(depends_on),
        lookback=lookback,
        on_schema_change=on_schema_change,
        grants=grants,
        freshness=_freshness(ctx, m),
    )


def _pool(ctx: _Ctx, m: YMap, pools: tuple | None) -> str | None:
    """`pool:`, one of pipe.yml's `pools` (any name when `pools` is None: not known)."""
    pool = ctx.typed(m, "pool", str)
    if pool and pools is not None and pool not in dict(pools):
        ctx.err(
            f"unknown pool '{pool}'",
            m.line_of("pool"),
            "declare it under 'pools' in pipe.yml"
            if not pools
            else "pools in pipe.yml: " + ", ".join(p for p, _ in pools),
        )
    return pool


def _grants(ctx: _Ctx, m: YMap) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`grants: {select: [analyst, reporting]}` (dbt's shape): privilege -> roles."""
    if "grants" not in m:
        return ()
    g = ctx.mapping(m["grants"], "'grants'", m.line_of("grants"))
    if g is None:
        return ()
    out = []
    for privilege in g:
        if str(privilege).lower() not in PRIVILEGES:
            close = difflib.get_close_matches(str(privilege).lower(), PRIVILEGES, n=1)
            ctx.err(
                f"unknown privilege '{privilege}' in 'grants'",
                g.line_of(privilege),
                f"did you mean '{close[0]}'?" if close else "privileges: " + ", ".join(PRIVILEGES),
            )
            continue
        roles = ctx.str_list(g, privilege)
        if roles:
            out.append((str(privilege).lower(), tuple(sorted(set(roles)))))
    return tuple(sorted(out))


def _freshness(ctx: _Ctx, m: YMap) -> Freshness | None:
    f = ctx.mapping(m.get("freshness"), "'freshness'", m.line_of("freshness"))
    if f is None:
        return None
    ctx.keys(f, {"warn_after", "error_after"}, what="freshness")
    warn, error = ctx.duration(f, "warn_after"), ctx.duration(f, "error_after")
    if warn is None and error is None:
        ctx.err(
            "'freshness' needs 'warn_after' or 'error_after' (a duration like 26h)",
            m.line_of("freshness"),
        )
        return None
    if warn is not None and error is not None and warn > error:
        ctx.err("'freshness.warn_after' is longer than 'error_after'", f.line_of("warn_after"))
    return Freshness(warn, error)


# ---------------------------------------------------------------- sources.yml and seeds

_SOURCE_KEYS = {
    "name",
    "wait_for",
    "poke_every",
    "wait_timeout",
    "description",
    "columns",
    "freshness",
    "loaded_at",
}


def parse_sources(data, errors: list[UserError], path: str = "sources.yml"):
    ctx = _Ctx(path, errors)
    m = ctx.mapping(data, "sources.yml", 1)
    if m is None:
        return ()
    ctx.keys(m, {"sources"})
    items = m.get("sources") or []
    if not isinstance(items, list):
        ctx.err("'sources' must be a list", m.line_of("sources"))
        return ()
    out = []
    for item in items:
        if not isinstance(item, dict):
            ctx.err("each source must be a mapping with 'name'", m.line_of("sources"))
            continue
        ctx.keys(item, _SOURCE_KEYS, ("name",), "a source")
        name = ctx.typed(item, "name", str)
        if not name:
            continue
        name = name.lower()  # SQL names are case-insensitive, as for models
        if name.count(".") != 1:
            ctx.err(f"source name '{name}' must be schema.table", item.line_of("name"))
            continue
        out.append(
            SourceConfig(
                name=name,
                wait_for=ctx.typed(item, "wait_for", str),
                poke_every=ctx.duration(item, "poke_every", 30.0),
                wait_timeout=ctx.duration(item, "wait_timeout", 3600.0),
                description=ctx.typed(item, "description", str),
                line=item.line_of("name"),
                columns=_in_order(ctx, item, "columns"),
                freshness=_source_freshness(ctx, item),
                loaded_at=ctx.typed(item, "loaded_at", str),
            )
        )
    return tuple(out)


def _source_freshness(ctx: _Ctx, item: YMap) -> Freshness | None:
    freshness = _freshness(ctx, item)
    if freshness is not None and not item.get("loaded_at"):
        ctx.err(
            "a source with 'freshness' needs 'loaded_at': the column holding when a row "
            "was loaded, or a query returning that time",
            item.line_of("freshness"),
        )
    return freshness


def _in_order(ctx: _Ctx, m: YMap, key: str) -> tuple[tuple[str, str], ...]:
    """A column -> text mapping in the order written (a table's column order), names
    lowercased as SQL compares them."""
    found = dict(ctx.str_map(m, key))
    return tuple((str(k).lower(), found[str(k)]) for k in m.get(key) or {} if str(k) in found)


def parse_seed_config(data, path: str, errors: list[UserError]) -> SeedConfig:
    ctx = _Ctx(path, errors)
    m = ctx.mapping(data, "a seed's sidecar", 1)
    if m is None:
        return SeedConfig()
    ctx.keys(m, {"column_types", "description", "columns"})
    return SeedConfig(
        column_types=ctx.str_map(m, "column_types"),
        description=ctx.typed(m, "description", str),
        columns=ctx.str_map(m, "columns"),
    )
