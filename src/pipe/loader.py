"""Walk a project directory into a RawProject: files read and YAML validated, nothing rendered.

Layout (SPEC §1): pipe.yml, models/<schema>/<name>.sql (+ optional .yml sidecar),
seeds/<schema>/<name>.csv (+ optional .yml), macros/*.sql, sources.yml. Paths kept in
the values are relative to the project and use '/', so nothing absolute reaches a plan.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import config as cfg
from . import yamlio
from .errors import ConfigError, SourceLocation, UserError, raise_collected


@dataclass(frozen=True)
class RawModel:
    name: str  # schema.table
    path: str  # models/<schema>/<name>.sql
    sql: str
    config: cfg.ModelConfig
    sidecar: str | None = None


@dataclass(frozen=True)
class RawSeed:
    name: str
    path: str  # seeds/<schema>/<name>.csv
    sha256: str
    config: cfg.SeedConfig


@dataclass(frozen=True)
class RawProject:
    root: Path
    config: cfg.ProjectConfig
    models: tuple[RawModel, ...]
    seeds: tuple[RawSeed, ...]
    sources: tuple[cfg.SourceConfig, ...]
    macros: tuple[tuple[str, str], ...]  # (path, text), sorted


def find_project_root(path: Path) -> Path:
    path = Path(path)
    if not (path / "pipe.yml").is_file():
        if (path / "pipe.yaml").is_file():
            raise ConfigError("pipe reads pipe.yml, not pipe.yaml",
                              at=SourceLocation("pipe.yaml", 1), hint="rename it")
        raise ConfigError(f"no pipe.yml in {path}",
                          hint="run pipe inside a project, pass --project DIR, "
                          "or create one with 'pipe init DIR'")
    return path


def _read_yaml(root: Path, rel: str, errors: list[UserError]):
    try:
        return yamlio.load((root / rel).read_text(encoding="utf-8"), rel)
    except UserError as e:
        errors.append(e)
        return None


def _stem_parts(root: Path, path: Path, top: str, suffix: str, errors) -> tuple[str, str] | None:
    rel = path.relative_to(root).as_posix()
    parts = path.relative_to(root / top).parts
    if len(parts) != 2:
        errors.append(ConfigError(
            f"{top} files live at {top}/<schema>/<name>{suffix}", at=SourceLocation(rel, 1)))
        return None
    schema, stem = parts[0], parts[1][: -len(suffix)]
    for part in (schema, stem):
        if not cfg._NAME.match(part):
            errors.append(ConfigError(
                f"'{part}' is not a valid name: use letters, digits and _",
                at=SourceLocation(rel, 1)))
            return None
    return schema, stem


def _files(root: Path, top: str, suffix: str) -> list[Path]:
    """Files under root/top ending in suffix, sorted; hidden files and folders (an editor's
    .#orders.sql, .ipynb_checkpoints/) are not part of the project."""
    folder = root / top
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob(f"*{suffix}")
                  if not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _node_name(parts: tuple[str, str]) -> str:
    """schema.table, lowercased: SQL names are case-insensitive, so models/a/Daily.sql is
    the table that `select * from a.daily` reads (and a duplicate of models/a/daily.sql)."""
    return f"{parts[0]}.{parts[1]}".lower()


def load_project(root: Path) -> RawProject:
    """Read and validate every file of the project; raise all user errors together."""
    root = find_project_root(root)
    errors: list[UserError] = []
    data = _read_yaml(root, "pipe.yml", errors)
    # invalid YAML is one error; validating what could not be read would add false ones
    project = None if errors else cfg.parse_project(data, errors)
    pools = project.pools if project else None  # None: unknown, so pool names go unchecked

    models: list[RawModel] = []
    sidecars = set(_files(root, "models", ".yml"))
    for sql_path in _files(root, "models", ".sql"):
        parts = _stem_parts(root, sql_path, "models", ".sql", errors)
        if parts is None:
            continue
        rel = sql_path.relative_to(root).as_posix()
        side = sql_path.with_suffix(".yml")
        sidecar_rel, model_cfg = None, cfg.ModelConfig()
        if side.exists():
            sidecars.discard(side)
            sidecar_rel = side.relative_to(root).as_posix()
            data = _read_yaml(root, sidecar_rel, errors)
            model_cfg = cfg.parse_model_config(data, sidecar_rel, errors, pools)
        models.append(RawModel(_node_name(parts), rel,
                               sql_path.read_text(encoding="utf-8"), model_cfg, sidecar_rel))
    for orphan in sorted(sidecars):
        rel = orphan.relative_to(root).as_posix()
        errors.append(ConfigError(f"sidecar without a model: no {Path(rel).stem}.sql beside it",
                                  at=SourceLocation(rel, 1)))

    seeds: list[RawSeed] = []
    seed_sidecars = set(_files(root, "seeds", ".yml"))
    for csv_path in _files(root, "seeds", ".csv"):
        parts = _stem_parts(root, csv_path, "seeds", ".csv", errors)
        if parts is None:
            continue
        rel = csv_path.relative_to(root).as_posix()
        side = csv_path.with_suffix(".yml")
        seed_cfg = cfg.SeedConfig()
        if side.exists():
            seed_sidecars.discard(side)
            side_rel = side.relative_to(root).as_posix()
            seed_cfg = cfg.parse_seed_config(_read_yaml(root, side_rel, errors), side_rel, errors)
        digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
        seeds.append(RawSeed(_node_name(parts), rel, digest, seed_cfg))
    for orphan in sorted(seed_sidecars):
        rel = orphan.relative_to(root).as_posix()
        errors.append(ConfigError(f"sidecar without a seed: no {orphan.stem}.csv beside it",
                                  at=SourceLocation(rel, 1)))
    for top in ("models", "seeds"):
        for wrong in _files(root, top, ".yaml"):
            rel = wrong.relative_to(root).as_posix()
            errors.append(ConfigError("pipe reads sidecars named <name>.yml, not .yaml",
                                      at=SourceLocation(rel, 1),
                                      hint=f"rename it to {wrong.stem}.yml"))
    if (root / "sources.yaml").is_file():
        errors.append(ConfigError("pipe reads sources.yml, not sources.yaml",
                                  at=SourceLocation("sources.yaml", 1), hint="rename it"))

    sources: tuple[cfg.SourceConfig, ...] = ()
    if (root / "sources.yml").is_file():
        sources = cfg.parse_sources(_read_yaml(root, "sources.yml", errors), errors)

    macros = []
    macros_dir = root / "macros"
    for mpath in sorted(macros_dir.glob("*.sql")) if macros_dir.is_dir() else []:
        macros.append((mpath.relative_to(root).as_posix(), mpath.read_text(encoding="utf-8")))

    raise_collected(errors)
    assert project is not None
    return RawProject(root, project, tuple(models), tuple(seeds), sources, tuple(macros))
