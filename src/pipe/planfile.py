"""Plan <-> its file: canonical JSON bytes, atomic write, staleness, load.

The file is JSON with SQL as a list of lines, so a pull request shows a model change line
by line; the same plan always gives the same bytes (no clock, no absolute path, no
secret: DSNs and paths stay in pipe.yml). This module knows plans and files only: it
never compiles (workspace.py decides when a plan is built or refused).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from .errors import PlanFileError, SourceLocation
from .intervals import Interval, from_iso
from .parallel import young_gc_only
from .plan import CheckSpec, Plan, Task, isos

PLAN_FORMAT = 1

# Task fields written only when set, in this order (after the ones every task has)
_OPTIONAL = ("pool", "max_concurrency", "timeout", "seed_path", "poke_every", "wait_timeout")


def plan_path(root: Path, target: str, interval: Interval) -> Path:
    return root / "plans" / target / f"{interval.file_stem}.json"


def relpath(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# ---------------------------------------------------------------- Plan -> JSON


def _lines(sql: str) -> list[str]:
    return sql.strip("\n").split("\n")


def _iv(iv: Interval | None):
    if not iv:
        return None
    start, end = isos(iv)  # Interval.to_json, spelled once per interval
    return {"start": start, "end": end}


def _check_json(c: CheckSpec) -> dict:
    fields = (
        ("name", c.name),
        ("type", c.type),
        ("severity", c.severity),
        ("warn_if", c.warn_if),
        ("error_if", c.error_if),
        ("sql", _lines(c.sql)),
    )
    return {k: v for k, v in fields if v is not None}


def _task_json(t: Task) -> dict:
    d: dict = {
        "id": t.id,
        "model": t.model,
        "kind": t.kind,
        "interval": _iv(t.interval),
        "upstream": list(t.upstream),
        "fingerprint": t.fingerprint,
        "table": t.table,
    }
    if t.temp:
        d["temp"] = t.temp
    if t.time_column:
        d["time_column"] = t.time_column
    if t.past:
        d["depends_on_past"] = _iv(t.past)
    if t.sql:
        d["sql"] = _lines(t.sql)
    if t.checks:
        d["checks"] = [_check_json(c) for c in t.checks]
    for key in _OPTIONAL:
        if getattr(t, key) is not None:
            d[key] = getattr(t, key)
    if t.retries:
        d["retries"] = t.retries
        d["retry_delay"] = t.retry_delay
    if t.column_types:
        d["column_types"] = dict(t.column_types)
    if t.lookback:
        d["lookback"] = True
    if t.on_schema_change != "fail":
        d["on_schema_change"] = t.on_schema_change
    if t.grants:
        d["grants"] = {p: list(roles) for p, roles in t.grants}
    return d


def to_json(plan: Plan) -> dict:
    return {**to_json_head(plan), "tasks": [_task_json(t) for t in plan.tasks]}


def to_json_head(plan: Plan) -> dict:
    """Everything in the plan's JSON before its tasks."""
    return {
        "pipe_plan": PLAN_FORMAT,
        "project": plan.project,
        "target": plan.target,
        "dialect": plan.dialect,
        "interval": {"label": plan.interval.label, **plan.interval.to_json()},
    }


def dumps(plan: Plan) -> bytes:
    """The plan file: exactly `json.dumps(to_json(plan), indent=2, ensure_ascii=False)`
    and a newline, written by `_encode` (json's indented encoder is pure Python)."""
    with young_gc_only():
        opening = frame(plan)
        chunks = None if opening is None else [encode_task(t) for t in plan.tasks]
        if chunks is None or None in chunks:
            data = to_json(plan)
            return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
        return assemble(opening, chunks)


# Between two tasks in the file, and after the last one
TASK_SEPARATOR = b",\n    "
_CLOSING = b"\n  ]\n}\n"


def frame(plan: Plan) -> bytes | None:
    """The file's bytes before its first task: everything but the tasks, as `dumps`
    writes it (None when a value needs the json module)."""
    head = {**to_json_head(plan), "tasks": []}
    out: list[str] = []
    try:
        _encode(head, "\n", out)
    except _Unusual:
        return None
    text = "".join(out)
    assert text.endswith('"tasks": []\n}')
    return (text[: -len("[]\n}")] + "[\n    ").encode()


def encode_task(t: Task) -> bytes | None:
    """One task as it stands in the plan file, indented, without a separator (None when a
    value needs the json module)."""
    out: list[str] = []
    try:
        _encode(_task_json(t), "\n    ", out)
    except _Unusual:
        return None
    return "".join(out).encode()


def assemble(opening: bytes, blocks: list) -> bytes:
    """The file of `frame`'s opening and `blocks` (one task each, or the tasks of one model
    joined by TASK_SEPARATOR)."""
    if not blocks:
        return opening[: -len("[\n    ")] + b"[]\n}\n"
    return opening + TASK_SEPARATOR.join(blocks) + _CLOSING


class _Unusual(Exception):
    """A value _encode leaves to the json module."""


_string = json.encoder.encode_basestring  # the C one where available, as json.dumps uses


def _encode(value, newline: str, out: list[str]) -> None:
    """Append `value` as json.dumps(indent=2, ensure_ascii=False) writes it, `newline`
    being a newline and the indentation of the line `value` starts on."""
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif kind is dict:
        _encode_dict(value, newline, out)
    elif kind is list or kind is tuple:
        _encode_list(value, newline, out)
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is float and value == value and value not in (float("inf"), float("-inf")):
        out.append(float.__repr__(value))
    else:
        raise _Unusual


def _encode_dict(value: dict, newline: str, out: list[str]) -> None:
    if not value:
        out.append("{}")
        return
    inner = newline + "  "
    sep = "{" + inner
    for key, item in value.items():
        if type(key) is not str:
            raise _Unusual
        if type(item) is str:
            out.append(sep + _string(key) + ": " + _string(item))
        else:
            out.append(sep + _string(key) + ": ")
            _encode(item, inner, out)
        sep = "," + inner
    out.append(newline + "}")


def _encode_list(value, newline: str, out: list[str]) -> None:
    if not value:
        out.append("[]")
        return
    inner = newline + "  "
    for item in value:
        if type(item) is not str:
            break
    else:  # only strings, as SQL lines: the bulk of a plan
        out.append("[" + inner + ("," + inner).join(map(_string, value)) + newline + "]")
        return
    sep = "[" + inner
    for item in value:
        out.append(sep)
        sep = "," + inner
        _encode(item, inner, out)
    out.append(newline + "]")


# ---------------------------------------------------------------- JSON -> Plan


def _interval(d) -> Interval | None:
    return _interval_of(d["start"], d["end"]) if d else None


@lru_cache(maxsize=1 << 12)
def _interval_of(start: str, end: str) -> Interval:
    """The tasks of a plan share a few intervals: each is parsed once."""
    return Interval(from_iso(start), from_iso(end))


def _check_of(c: dict) -> CheckSpec:
    return CheckSpec(
        name=c["name"],
        type=c["type"],
        severity=c["severity"],
        sql="\n".join(c["sql"]),
        warn_if=c.get("warn_if"),
        error_if=c.get("error_if"),
    )


def _task_of(d: dict) -> Task:
    return Task(
        id=d["id"],
        model=d["model"],
        kind=d["kind"],
        interval=_interval(d["interval"]),
        upstream=tuple(d["upstream"]),
        fingerprint=d["fingerprint"],
        table=d["table"],
        temp=d.get("temp"),
        sql="\n".join(d.get("sql", [])),
        time_column=d.get("time_column"),
        checks=tuple(_check_of(c) for c in d.get("checks", [])),
        pool=d.get("pool"),
        max_concurrency=d.get("max_concurrency"),
        retries=d.get("retries", 0),
        retry_delay=d.get("retry_delay", 1.0),
        timeout=d.get("timeout"),
        past=_interval(d.get("depends_on_past")),
        seed_path=d.get("seed_path"),
        column_types=tuple(sorted(d.get("column_types", {}).items())),
        poke_every=d.get("poke_every"),
        wait_timeout=d.get("wait_timeout"),
        lookback=d.get("lookback", False),
        on_schema_change=d.get("on_schema_change", "fail"),
        grants=tuple((p, tuple(r)) for p, r in sorted(d.get("grants", {}).items())),
    )


def from_json(data: dict) -> Plan:
    """The plan of a document `load` has checked the format of (KeyError, TypeError,
    ValueError on a damaged one: `load` says so)."""
    return Plan(
        project=data["project"],
        target=data["target"],
        dialect=data["dialect"],
        interval=_interval(data["interval"]),
        tasks=tuple(_task_of(d) for d in data["tasks"]),
    )


# ---------------------------------------------------------------- files


def write(root: Path, plan: Plan) -> tuple[Path, bool, bytes]:
    """Write the plan file atomically unless it already holds these bytes; return (path,
    whether its bytes changed, the bytes)."""
    path = plan_path(root, plan.target, plan.interval)
    data = dumps(plan)
    if path.is_file() and path.read_bytes() == data:
        return path, False, data
    write_bytes(path, data)
    return path, True, data


def write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` by `data` atomically: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def stale_reason(root: Path, plan: Plan) -> str | None:
    """Why the plan file on disk does not match `plan` (freshly built): "missing",
    "stale", or None when it does. A file that is no readable plan at all is a
    PlanFileError saying what is wrong with it, never "stale"."""
    path = plan_path(root, plan.target, plan.interval)
    if not path.exists():
        return "missing"
    data = path.read_bytes() if path.is_file() else None
    if data != dumps(plan):
        load(path)
        return "stale"
    return None


def load(path: Path) -> Plan:
    """The plan in `path`; a file that is not a readable plan is a PlanFileError saying
    exactly what is wrong with it (never "stale": it may be no plan at all)."""
    where = SourceLocation(_shown(path))
    fix = "delete it and run 'pipe compile' for its interval"
    if path.is_dir():
        raise PlanFileError("this is a directory, not a plan file", at=where, hint=fix)
    if not path.exists():
        raise PlanFileError(
            "this plan file does not exist", at=where, hint="run 'pipe compile' for its interval"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlanFileError(f"cannot read this plan file: {exc.strerror}", at=where) from None
    return parse(data, path)


def parse(data: bytes, path: Path) -> Plan:
    """The plan in `data`, the bytes read from `path` (named in errors, as `load`)."""
    where = SourceLocation(_shown(path))
    fix = "delete it and run 'pipe compile' for its interval"
    if not data.strip():
        raise PlanFileError("this plan file is empty", at=where, hint=fix)
    doc = _json_doc(data, where, fix)
    try:
        return from_json(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(
            f"this plan file is damaged: {type(exc).__name__} {exc}", at=where, hint=fix
        ) from None


def _json_doc(data: bytes, where: SourceLocation, fix: str) -> dict:
    """The JSON document of a plan file of this pipe's format."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise PlanFileError(
            f"this plan file is not valid JSON: {getattr(exc, 'msg', exc)}",
            at=SourceLocation(where.path, line),
            hint=fix,
        ) from None
    if not isinstance(doc, dict) or "pipe_plan" not in doc:
        raise PlanFileError(
            "this is not a pipe plan (no 'pipe_plan' format key)", at=where, hint=fix
        )
    if doc["pipe_plan"] != PLAN_FORMAT:
        raise PlanFileError(
            f"this plan has format {doc['pipe_plan']!r}; this pipe reads format {PLAN_FORMAT}",
            at=where,
            hint="recompile it with this pipe: 'pipe compile' for its interval",
        )
    return doc


def _shown(path: Path) -> str:
    """plans/<target>/<file> relative to the project, as messages name files."""
    parts = path.parts
    return "/".join(parts[parts.index("plans") :]) if "plans" in parts else str(path)
