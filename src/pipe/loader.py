"""Walk a project directory into a RawProject: files read and YAML validated, nothing rendered.

Layout (SPEC §1): pipe.yml, models/<schema>/<name>.sql (+ optional .yml sidecar),
seeds/<schema>/<name>.csv (+ optional .yml), macros/*.sql, sources.yml. Paths kept in
the values are relative to the project and use '/', so nothing absolute reaches a plan.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import config as cfg
from . import projectconfig, projectfiles, yamlio
from .cache import FileCache, cache_dir
from .errors import ConfigError, SourceLocation, UserError, raise_collected
from .names import node_name
from .parallel import chunks, fan_out, workers

FILES_VERSION = "1"
# Files to read (a model's SQL counts 1, a sidecar's YAML 6) from which load_project reads
# them in a pool of processes
PARALLEL_READ_MIN = 4000


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
    # a hash of every file read (path and content): the compiled-project cache's key
    digest: str = field(default="", compare=False, repr=False)
    files: FileCache | None = field(default=None, compare=False, repr=False)
    # each file's content hash by path: what changed since the last compile
    hashes: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


class _Reader:
    """Reads project files through a FileCache (or none), hashing what it reads."""

    def __init__(self, root: Path, files: FileCache | None):
        self.root = root
        self.base = str(root)
        self.files = files
        self.digest = hashlib.sha256(FILES_VERSION.encode())
        self.hashes: dict[str, str] = {}
        self.ahead: dict[str, tuple[str, object]] = {}  # read_ahead's (hash, value) by path

    def _note(self, rel: str, digest: str) -> None:
        self.digest.update(f"{rel}\0{digest}\0".encode())
        self.hashes[rel] = digest

    def stat(self, rel: str) -> os.stat_result | None:
        try:
            return os.stat(os.path.join(self.base, rel))
        except OSError:
            return None

    def cached(self, rel: str, st, kind: str, accept=None):
        """The value cached for an unchanged file (if `accept(value)`), else None."""
        if self.files is None:
            return None
        found = self.files.get(rel, st, kind)
        if found is not None and (accept is None or accept(found[1])):
            self._note(rel, found[0])
            return found[1]
        return None

    def keep(self, rel: str, st, kind: str, digest: str, value) -> None:
        self._note(rel, digest)
        if self.files is not None:
            self.files.put(rel, st, kind, digest, value)

    def text(self, rel: str) -> tuple[str, str]:
        """(text, its hash), read as Path.read_text reads it (universal newlines)."""
        return _read_text(self.base, rel)

    def read_ahead(self, jobs: list[tuple[str, str]], pools) -> None:
        """Read and parse many files at once in worker processes: (path, kind) with kind
        "text" (a model's SQL) or "model_config" (a sidecar, validated against `pools`).
        Whatever fails there (an unreadable file, invalid YAML, a config error) is left
        to the caller, which reads it again and reports it as without workers."""
        cost = sum(1 if kind == "text" else 6 for _, kind in jobs)
        if cost < PARALLEL_READ_MIN or workers() < 2:
            return
        if any(kind == "model_config" for _, kind in jobs):
            yamlio.load("{}", "")  # import yaml once here, not in every worker
        try:
            for results in fan_out(
                _read_chunk, (self.base, pools, jobs), chunks(len(jobs), 50, 500)
            ):
                for rel, digest, value in results:
                    self.ahead[rel] = (digest, value)
        except OSError:  # no process could be forked: the caller reads them all
            self.ahead.clear()


def _read_text(base: str, rel: str) -> tuple[str, str]:
    with open(os.path.join(base, rel), encoding="utf-8") as f:
        text = f.read()
    return text, hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def _read_chunk(shared: tuple, bounds: tuple[int, int]) -> list[tuple[str, str, object]]:
    """In a worker: (path, hash, value) of the files [start, end) of `shared` (base, pools,
    jobs) that read cleanly."""
    base, pools, jobs = shared
    out = []
    for rel, kind in jobs[bounds[0] : bounds[1]]:
        try:
            text, digest = _read_text(base, rel)
            if kind == "text":
                out.append((rel, digest, text))
                continue
            errors: list[UserError] = []
            config = cfg.parse_model_config(yamlio.load(text, rel), rel, errors, pools)
            if not errors:
                out.append((rel, digest, (pools, config)))
        except Exception:  # noqa: BLE001 - read again by the caller, which reports it
            continue
    return out


def find_project_root(path: Path) -> Path:
    path = Path(path)
    if not (path / "pipe.yml").is_file():
        if (path / "pipe.yaml").is_file():
            raise ConfigError(
                "pipe reads pipe.yml, not pipe.yaml",
                at=SourceLocation("pipe.yaml", 1),
                hint="rename it",
            )
        raise ConfigError(
            f"no pipe.yml in {path}",
            hint="run pipe inside a project, pass --project DIR, "
            "or create one with 'pipe init DIR'",
        )
    return path


def _read_yaml(root: Path, rel: str, errors: list[UserError], text: str | None = None):
    try:
        if text is None:
            text = (root / rel).read_text(encoding="utf-8")
        return yamlio.load(text, rel)
    except UserError as e:
        errors.append(e)
        return None


def _stem_parts(rel: str, top: str, suffix: str, errors) -> tuple[str, str] | None:
    parts = rel.split("/")[1:]  # below top
    if len(parts) != 2:
        errors.append(
            ConfigError(
                f"{top} files live at {top}/<schema>/<name>{suffix}", at=SourceLocation(rel, 1)
            )
        )
        return None
    schema, stem = parts[0], parts[1][: -len(suffix)]
    for part in (schema, stem):
        if not cfg.NAME.match(part):
            errors.append(
                ConfigError(
                    f"'{part}' is not a valid name: use letters, digits and _",
                    at=SourceLocation(rel, 1),
                )
            )
            return None
    return schema, stem


def _walk(root: Path, top: str) -> dict[str, os.DirEntry]:
    """Every entry under root/top, by path relative to root, as Path.rglob('*') finds
    them: into real directories only (not symlinked ones), unreadable ones skipped.
    Hidden files and folders (an editor's .#orders.sql, .ipynb_checkpoints/) are not part
    of the project."""
    found: dict[str, os.DirEntry] = {}
    if not (root / top).is_dir():
        return found
    base = str(root)
    inside = os.path.realpath(base)
    for _, entries in projectfiles.folders(base, top):
        for rel, entry in entries or ():  # an unreadable folder is skipped
            if (
                entry.is_symlink()
                and os.path.commonpath([inside, os.path.realpath(entry.path)]) != inside
            ):
                raise ConfigError(
                    f"this is a symlink to {os.path.realpath(entry.path)}, outside the project",
                    at=SourceLocation(rel),
                    hint="a project reads only its own files: copy the file in",
                )
            found[rel] = entry
    return found


def _files(found: dict[str, os.DirEntry], suffix: str) -> list[str]:
    """The paths of `found` ending in suffix, in Path order."""
    return sorted((rel for rel in found if rel.endswith(suffix)), key=lambda r: r.split("/"))


def _stat(entry: os.DirEntry) -> os.stat_result | None:
    try:
        return entry.stat()  # follows a symlink, as Path.exists() does
    except OSError:
        return None


def load_project(root: Path, use_cache: bool = False, write_cache: bool = False) -> RawProject:
    """Read and validate every file of the project; raise all user errors together.

    With `use_cache`, files unchanged since the last load are taken from the file cache
    (.pipe/cache/files-*.pickle), which CompiledProject.save_cache writes when
    `write_cache`."""
    root = find_project_root(root)
    path = cache_dir(root) / "files.pickle" if use_cache else None
    files = FileCache(path, readonly=not write_cache)
    reader = _Reader(root, files if use_cache else None)
    errors: list[UserError] = []
    project = _project_config(reader, errors)
    pools = project.pools if project else None  # None: unknown, so pool names go unchecked
    found_models = _walk(root, "models")
    models = _models(reader, found_models, pools, errors)
    found_seeds = _walk(root, "seeds")
    seeds = _seeds(reader, found_seeds, errors)
    _misnamed(root, (found_models, found_seeds), errors)
    sources = _sources(reader, errors)
    macros = _macros(reader)
    raise_collected(errors)
    assert project is not None
    return RawProject(
        root,
        project,
        tuple(models),
        tuple(seeds),
        sources,
        tuple(macros),
        digest=reader.digest.hexdigest(),
        files=files if use_cache else None,
        hashes=reader.hashes,
    )


def _project_config(reader: _Reader, errors: list[UserError]) -> cfg.ProjectConfig | None:
    st = reader.stat("pipe.yml")
    project = reader.cached("pipe.yml", st, "project")
    if project is None:
        text, digest = reader.text("pipe.yml")
        data = _read_yaml(reader.root, "pipe.yml", errors, text)
        # invalid YAML is one error; validating what could not be read would add false ones
        project = None if errors else projectconfig.parse_project(data, errors)
        reader.keep("pipe.yml", st, "project", digest, project)
    return project


def _kind(rel: str) -> str:
    return "text" if rel.endswith(".sql") else "model_config"


def _models(reader: _Reader, found: dict, pools, errors: list[UserError]) -> list[RawModel]:
    """Every models/<schema>/<name>.sql with its sidecar; a sidecar alone is an error."""
    sidecars = set(_files(found, ".yml"))
    sql_files = _files(found, ".sql")
    stats = {rel: _stat(found[rel]) for rel in sql_files}
    for rel in sql_files:
        side = rel[: -len(".sql")] + ".yml"
        if side in found:
            stats[side] = _stat(found[side])
    files = reader.files
    todo = [
        (rel, _kind(rel))
        for rel, st in stats.items()
        if st is not None and not (files is not None and files.fresh(rel, st, _kind(rel)))
    ]
    reader.read_ahead(todo, pools)
    models: list[RawModel] = []
    for rel in sql_files:
        parts = _stem_parts(rel, "models", ".sql", errors)
        if parts is None:
            continue
        side = rel[: -len(".sql")] + ".yml"
        sidecar_rel, model_cfg = None, cfg.ModelConfig()
        if stats.get(side) is not None:
            sidecars.discard(side)
            sidecar_rel = side
            model_cfg = _model_config(reader, side, stats[side], pools, errors)
        sql = reader.cached(rel, stats[rel], "text")
        if sql is None:
            ahead = reader.ahead.pop(rel, None)
            sql, digest = (ahead[1], ahead[0]) if ahead is not None else reader.text(rel)
            reader.keep(rel, stats[rel], "text", digest, sql)
        models.append(RawModel(node_name(*parts), rel, sql, model_cfg, sidecar_rel))
    for orphan in sorted(sidecars, key=lambda r: r.split("/")):
        errors.append(
            ConfigError(
                f"sidecar without a model: no {Path(orphan).stem}.sql beside it",
                at=SourceLocation(orphan, 1),
            )
        )
    return models


def _model_config(reader: _Reader, side: str, st, pools, errors) -> cfg.ModelConfig:
    """A model's sidecar, validated (against `pools`: a cached one validated alike)."""
    cached = reader.cached(side, st, "model_config", lambda value: value[0] == pools)
    if cached is not None:
        return cached[1]
    ahead = reader.ahead.pop(side, None)
    if ahead is not None:  # read, and validated without errors, by a worker
        digest, (_, model_cfg) = ahead
    else:
        text, digest = reader.text(side)
        data = _read_yaml(reader.root, side, errors, text)
        model_cfg = cfg.parse_model_config(data, side, errors, pools)
    reader.keep(side, st, "model_config", digest, (pools, model_cfg))
    return model_cfg


def _seeds(reader: _Reader, found: dict, errors: list[UserError]) -> list[RawSeed]:
    """Every seeds/<schema>/<name>.csv (its content hash) with its sidecar."""
    root = reader.root
    sidecars = set(_files(found, ".yml"))
    seeds: list[RawSeed] = []
    for rel in _files(found, ".csv"):
        parts = _stem_parts(rel, "seeds", ".csv", errors)
        if parts is None:
            continue
        side = rel[: -len(".csv")] + ".yml"
        seed_cfg = cfg.SeedConfig()
        side_st = _stat(found[side]) if side in found else None
        if side_st is not None:
            sidecars.discard(side)
            seed_cfg = reader.cached(side, side_st, "seed_config")
            if seed_cfg is None:
                text, digest = reader.text(side)
                seed_cfg = cfg.parse_seed_config(_read_yaml(root, side, errors, text), side, errors)
                reader.keep(side, side_st, "seed_config", digest, seed_cfg)
        csv_st = _stat(found[rel])
        sha = reader.cached(rel, csv_st, "csv")
        if sha is None:
            sha = hashlib.sha256((root / rel).read_bytes()).hexdigest()
            reader.keep(rel, csv_st, "csv", sha, sha)
        seeds.append(RawSeed(node_name(*parts), rel, sha, seed_cfg))
    for orphan in sorted(sidecars, key=lambda r: r.split("/")):
        errors.append(
            ConfigError(
                f"sidecar without a seed: no {Path(orphan).stem}.csv beside it",
                at=SourceLocation(orphan, 1),
            )
        )
    return seeds


def _misnamed(root: Path, walked: tuple[dict, ...], errors: list[UserError]) -> None:
    """YAML files pipe would silently skip: <name>.yaml sidecars, sources.yaml."""
    for found in walked:
        for wrong in _files(found, ".yaml"):
            errors.append(
                ConfigError(
                    "pipe reads sidecars named <name>.yml, not .yaml",
                    at=SourceLocation(wrong, 1),
                    hint=f"rename it to {Path(wrong).stem}.yml",
                )
            )
    if (root / "sources.yaml").is_file():
        errors.append(
            ConfigError(
                "pipe reads sources.yml, not sources.yaml",
                at=SourceLocation("sources.yaml", 1),
                hint="rename it",
            )
        )


def _sources(reader: _Reader, errors: list[UserError]) -> tuple[cfg.SourceConfig, ...]:
    if not (reader.root / "sources.yml").is_file():
        return ()
    st = reader.stat("sources.yml")
    cached = reader.cached("sources.yml", st, "sources")
    if cached is not None:
        return cached
    text, digest = reader.text("sources.yml")
    sources = cfg.parse_sources(_read_yaml(reader.root, "sources.yml", errors, text), errors)
    reader.keep("sources.yml", st, "sources", digest, sources)
    return sources


def _macros(reader: _Reader) -> list[tuple[str, str]]:
    """(path, text) of every macros/*.sql, sorted by name."""
    macros = []
    macros_dir = reader.root / "macros"
    if macros_dir.is_dir():
        with os.scandir(macros_dir) as it:
            names = sorted(e.name for e in it if e.name.endswith(".sql"))
        for name in names:
            rel = f"macros/{name}"
            st = reader.stat(rel)
            text = reader.cached(rel, st, "text")
            if text is None:
                text, digest = reader.text(rel)
                reader.keep(rel, st, "text", digest, text)
            macros.append((rel, text))
    return macros
