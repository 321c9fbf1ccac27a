"""pipe.yml -> ProjectConfig: the project's keys, its targets (each engine's options,
paths that stay inside the project, passwords that should not be written there), the
dialects they name, and `openlineage:`.

Pure like config.py, whose values it builds: no file system, no environment variables.
"""

from __future__ import annotations

import json
import os
import re

from .config import NAME, OpenLineageSettings, ProjectConfig, Target
from .engines import ENGINES
from .errors import UserError
from .fields import Fields as _Ctx
from .intervals import GRAINS, as_datetime
from .yamlio import YMap

_PROJECT_KEYS = {
    "name",
    "dialect",
    "start",
    "schedule",
    "concurrency",
    "pools",
    "default_target",
    "targets",
    "vars",
    "backfill",
    "openlineage",
}
# what every target may say; each engine adds the options it reads (engines.py)
_TARGET_KEYS = {"adapter", "dialect", "schema", "threads"}.union(
    *(rules.options for rules in ENGINES.values())
)


def parse_project(data, errors: list[UserError], path: str = "pipe.yml") -> ProjectConfig | None:
    ctx = _Ctx(path, errors)
    m = ctx.mapping(data, "pipe.yml", 1)
    if m is None:
        if data is None:
            ctx.err("pipe.yml is empty; it needs at least 'name'", 1)
        return None
    ctx.keys(m, _PROJECT_KEYS, required=("name",))
    name = ctx.typed(m, "name", str, "project")
    if name and not NAME.match(name):
        ctx.err(f"'name' must be letters, digits and _, got '{name}'", m.line_of("name"))
    dialect = _dialect(ctx, m, "duckdb")
    start = None
    if m.get("start") is not None:
        try:
            start = as_datetime(m["start"])
        except UserError:
            ctx.err(
                f"'start' must be a date like 2026-06-01, got '{m['start']}'", m.line_of("start")
            )
    schedule = ctx.choice(m, "schedule", GRAINS, "daily")
    concurrency = ctx.positive_int(m, "concurrency", 4)
    pools = []
    for k, v in (ctx.mapping(m.get("pools"), "'pools'", m.line_of("pools")) or {}).items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            ctx.err(f"pool '{k}' must be a whole number of slots >= 1", m["pools"].line_of(k))
        else:
            pools.append((str(k), v))
    warnings: list[str] = []
    targets = _targets(ctx, m, warnings)
    default_target = ctx.typed(m, "default_target", str, targets[0].name)
    if default_target not in {t.name for t in targets}:
        ctx.err(
            f"default_target '{default_target}' is not one of the targets",
            m.line_of("default_target"),
        )
    vars_ = ctx.mapping(m.get("vars"), "'vars'", m.line_of("vars")) or {}
    backfill = ctx.mapping(m.get("backfill"), "'backfill'", m.line_of("backfill")) or YMap()
    if backfill:
        ctx.keys(backfill, {"concurrency"}, what="backfill")
    openlineage = _openlineage(ctx, m)
    return ProjectConfig(
        name=name,
        dialect=dialect,
        start=start,
        schedule=schedule,
        concurrency=concurrency,
        pools=tuple(sorted(pools)),
        default_target=default_target,
        targets=tuple(sorted(targets, key=lambda t: t.name)),
        vars=tuple(sorted(vars_.items())),
        backfill_concurrency=ctx.positive_int(backfill, "concurrency", None) if backfill else None,
        openlineage=openlineage,
        warnings=tuple(warnings),
    )


_ENV_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_URL_SECRET = re.compile(r"://[^:/@\s]*:(?P<pw>[^@\s]+)@")
_KEY_SECRET = re.compile(r"password\s*=\s*(?P<pw>\S+)", re.IGNORECASE)


def _targets(ctx: _Ctx, m: YMap, warnings: list[str]) -> list[Target]:
    """The `targets:` of pipe.yml; without any, a DuckDB file warehouse called dev."""
    tmap = ctx.mapping(m.get("targets"), "'targets'", m.line_of("targets"))
    targets = []
    for tname, tval in (tmap or {}).items():
        t = ctx.mapping(tval, f"target '{tname}'", tmap.line_of(tname))
        if t is None:
            ctx.err(f"target '{tname}' needs at least 'adapter'", tmap.line_of(tname))
            continue
        target = _target(ctx, str(tname), t, tmap.line_of(tname), warnings)
        if target is not None:
            targets.append(target)
    return targets or [Target("dev", "duckdb", "duckdb", (("path", "warehouse.duckdb"),))]


def _target(ctx: _Ctx, name: str, t: YMap, line: int | None, warnings: list[str]) -> Target | None:
    ctx.keys(t, _TARGET_KEYS, required=("adapter",), what=f"target '{name}'")
    if not NAME.match(name):
        ctx.err(
            f"target name '{name}' must be letters, digits and _ (it names the folder "
            "plans/<target>/)",
            line,
        )
        return None
    adapter = ctx.choice(t, "adapter", tuple(ENGINES), None)
    if adapter is None:
        return None
    _check_target_paths(ctx, name, t, warnings)
    rules = ENGINES[adapter]
    dialect = _dialect(ctx, t, rules.dialect)
    lacks = rules.target_problem(t)
    if lacks:
        ctx.err(f"target '{name}' ({adapter}) needs {lacks}", t.line)
    opts = tuple(sorted((k, v) for k, v in t.items() if k not in ("adapter", "dialect")))
    return Target(name, adapter, dialect, opts)


def _dialect(ctx: _Ctx, m: YMap, default: str) -> str:
    """`dialect:` of the project or a target: a dialect sqlglot knows (asking sqlglot,
    which takes a tenth of a second to import, only for one no engine speaks)."""
    name = ctx.typed(m, "dialect", str, default)
    if name in (rules.dialect for rules in ENGINES.values()):
        return name
    from .dialects import dialect_hint

    hint = dialect_hint(name)
    if hint is not None:
        ctx.err(f"unknown dialect '{name}'", m.line_of("dialect"), hint)
        return default
    return name


def _check_target_paths(ctx: _Ctx, name: str, t: YMap, warnings: list[str]) -> None:
    """A warehouse file outside the project must be explicit (an absolute path), never a
    relative path that climbs out; a password written into pipe.yml gets a warning."""
    path = t.get("path")
    if isinstance(path, str) and path != ":memory:" and "${" not in path:
        norm = os.path.normpath(path)
        if not os.path.isabs(norm) and (norm == ".." or norm.startswith(".." + os.sep)):
            ctx.err(
                f"target '{name}' path '{path}' leads outside the project",
                t.line_of("path"),
                "write an absolute path if the warehouse lives elsewhere on purpose",
            )
    dsn = t.get("dsn")
    if isinstance(dsn, str):
        for rx in (_URL_SECRET, _KEY_SECRET):
            m = rx.search(dsn)
            if m and not _ENV_ONLY.match(m["pw"]):
                warnings.append(
                    f"{ctx.path}:{t.line_of('dsn')}: target '{name}' has a "
                    "password written into its dsn: anyone who reads pipe.yml or "
                    "its git history has it; use ${PIPE_PG_PASSWORD} or put the "
                    "whole dsn in an environment variable"
                )
                break


def _openlineage(ctx: _Ctx, m: YMap) -> OpenLineageSettings | None:
    if "openlineage" not in m:
        return None
    ol = ctx.mapping(m.get("openlineage"), "'openlineage'", m.line_of("openlineage"))
    if ol is None:
        return OpenLineageSettings()
    ctx.keys(ol, {"namespace", "transport"}, what="openlineage")
    transport = ctx.mapping(ol.get("transport"), "'openlineage.transport'", ol.line_of("transport"))
    if transport is not None and not isinstance(transport.get("type"), str):
        ctx.err(
            "'openlineage.transport' needs 'type' (http, file, console, kafka, ... as the "
            "openlineage-python client names them)",
            ol.line_of("transport"),
        )
        transport = None
    return OpenLineageSettings(
        namespace=ctx.typed(ol, "namespace", str),
        transport=json.dumps(transport, sort_keys=True, default=str) if transport else None,
    )
