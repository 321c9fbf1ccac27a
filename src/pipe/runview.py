"""`pipe run` without loading the project: what a run needs of it, recorded after a full
load, and the proof that nothing has changed since.

    pipe run -> recorded(project, target, interval) -> (RunProject, Plan)   unchanged
                                                     -> None: load, compile, record(...)

The plan records (workspace.py) say that a plan file is what compiling writes now, given
the project's key: a hash of every file the loader read. Computing that key means reading
and hashing them all, and the run would load the project besides. This record says the
same from the files' stats: `snapshot` takes the stat of every file the loader may read
(pipe.yml, sources.yml, models/, seeds/, macros/) *before* the load reads them; `record`
keeps it with the compile's key, the sha256 of the plan files found current, and what the
run needs of the project (pipe.yml's settings, the target, the graph and tags for
--select). `recorded` trusts the record only while every stat (size, mtime, ctime, inode)
and the listing of every folder are as recorded and pipe itself is the same
(`code_version`): an edit, a new file or a removed one sends the run down the full path,
which compiles a missing plan and refuses a stale one exactly as before.

A file changed in the same tick of the file system's clock as the snapshot could change
again without its stat showing it (git's "racy" files): a marker touched just before the
snapshot reads that clock, and no record is made while any file is as new as the marker.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import planfile, projectfiles, runearly
from .cache import Store, cache_dir, code_version, store
from .intervals import Interval

if TYPE_CHECKING:
    from .compiler import CompiledProject
    from .config import ProjectConfig, Target
    from .plan import Plan

VERSION = "2"  # 2: each plan's cache is a Store
ROOT_FILES = ("pipe.yml", "pipe.yaml", "sources.yml", "sources.yaml")
FOLDERS = ("models", "seeds", "macros")


@dataclass(frozen=True)
class RunProject:
    """What `pipe run` needs of a project besides its plan file."""

    root: Path
    config: ProjectConfig  # pipe.yml as the loader read it (its warnings included)
    target: Target
    upstream: Mapping[str, tuple[str, ...]]  # the graph, for --select
    order: tuple[str, ...]
    tags: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, cp: CompiledProject) -> RunProject:
        return cls(
            cp.raw.root,
            cp.raw.config,
            cp.target,
            dict(cp.graph.upstream),
            tuple(cp.graph.order),
            {n: v.config.tags for n, v in cp.nodes.items()},
        )

    def select(self, expr: str | None):
        """The models `--select expr` names (None: all), as graph.select finds them."""
        if not expr:
            return None
        from .graph import Graph, select

        return select(Graph(self.upstream, self.order), expr, self.tags)


@dataclass(frozen=True)
class Snapshot:
    """The stats of a project's inputs, taken before a load reads them."""

    stamp: int  # the marker's ctime: the file system's clock just before the stats
    stats: tuple[tuple, ...]


def snapshot(root: Path) -> Snapshot | None:
    """The stats of the project's inputs, taken before a load reads them; None when a file
    is as new as the snapshot (racy) or the marker cannot be written."""
    marker = cache_dir(root) / "runview.stamp"
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os.utime(marker)  # now, by the file system's clock
        stamp = os.stat(marker).st_ctime_ns
    except OSError:
        return None
    stats = _stats(root)
    if any(len(s) == 5 and s[3] >= stamp for s in stats):
        return None
    return Snapshot(stamp, stats)


def _stats(root: Path) -> tuple[tuple, ...]:
    """(path, size, mtime, ctime, inode) of every file under the loader's folders and of
    its root files; (path,) for a folder and for a file or folder that is not there.
    Hidden entries are skipped, as the loader skips them."""
    base = str(root)
    out: list[tuple] = []
    for name in ROOT_FILES:
        out.append(_stat(os.path.join(base, name), name))
    for top in FOLDERS:
        for folder, entries in projectfiles.folders(base, top):
            if entries is None:
                out.append((folder, "absent"))
                continue
            out.append((folder + "/",))
            out.extend(_stat(e.path, rel) for rel, e in entries if not projectfiles.is_dir(e))
    return tuple(out)


def _stat(path: str, rel: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return (rel, "absent")
    return (rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _store(root: Path) -> Store:
    return store(root, "runview.pickle", VERSION)


def _plan_cache(root: Path, rel: str) -> Store:
    """{"sha": the plan file's sha256, "plan": the Plan it holds}."""
    return store(root, f"runview/{rel}.pickle", VERSION)


def record(
    snap: Snapshot,
    cp: CompiledProject,
    target: str | None,
    intervals: list[Interval],
    plan: Plan | None = None,
) -> None:
    """After a full load that found the plan files of `intervals` current (workspace's
    plan records hold their sha256 for `cp.key`): record them for `recorded`, with
    `plan` (of the one interval) to unpickle instead of parsing its JSON."""
    from .workspace import plan_key

    root = cp.raw.root
    recorded_ = _store(root)
    entries = recorded_.data
    name = target or ""
    old = entries.get(name)
    plans = dict(old["plans"]) if old and old["key"] == cp.key else {}
    new = {}
    for interval in intervals:
        key = plan_key(cp, interval)
        rel = planfile.relpath(root, planfile.plan_path(root, cp.target.name, interval))
        found = cp.state.records().get(rel)
        if key is not None and found and found[0] == key:
            new[rel] = found[1]
    if not new:
        return
    plans.update(new)
    entries[name] = {
        "code": code_version(),
        "stats": snap.stats,
        "key": cp.key,
        "project": RunProject.of(cp),
        "plans": plans,
    }
    if plan is not None and len(new) == 1:
        [(rel, sha)] = new.items()
        cached = _plan_cache(root, rel)
        cached.replace({"sha": sha, "plan": plan})
        cached.save()
    recorded_.replace(entries)
    recorded_.save()
    runearly.remember(root, cp.raw.config)


@dataclass(frozen=True)
class Found:
    """A run's project as recorded, and its plan file, whose bytes are as recorded."""

    project: RunProject
    path: Path
    data: bytes = field(repr=False)
    sha: str

    def plan(self) -> Plan:
        """The plan: unpickled as recorded (no JSON to parse), else parsed from the bytes."""
        root = self.project.root
        cached = _plan_cache(root, planfile.relpath(root, self.path))
        if cached.data.get("sha") == self.sha:
            return cached.data["plan"]
        plan = planfile.parse(self.data, self.path)
        cached.replace({"sha": self.sha, "plan": plan})  # for the next run
        cached.save()
        return plan


def recorded(project: Path, target: str | None, interval: Interval) -> Found | None:
    """The run's project and `interval`'s plan file when the record proves that file
    current for an unchanged project and pipe; None when the run must load the project."""
    root = Path(project)
    entry = _store(root).data.get(target or "")
    if entry is None or entry["code"] != code_version() or _stats(root) != entry["stats"]:
        return None
    rp = replace(entry["project"], root=root)
    path = planfile.plan_path(root, rp.target.name, interval)
    sha = entry["plans"].get(planfile.relpath(root, path))
    try:
        data = path.read_bytes() if sha is not None else None
    except OSError:
        return None
    if data is None or hashlib.sha256(data).hexdigest() != sha:
        return None
    if _lineage_wanted(rp.config):  # its events describe the compiled project
        return None
    if not os.path.exists(os.path.join(root, runearly.HINT)):
        runearly.remember(root, rp.config)  # recorded by an older pipe
    return Found(rp, path, data, sha)


def _lineage_wanted(config) -> bool:
    """openlineage.wanted, without importing its module (and logging) when neither
    pipe.yml nor the environment nor an openlineage.yml can ask for it."""
    if (
        config.openlineage is None
        and not any(k.startswith("OPENLINEAGE") for k in os.environ)
        and not os.path.isfile("openlineage.yml")
    ):
        return False
    from .openlineage import wanted

    return wanted(config.openlineage)
