"""The only module that imports yaml: a safe load that remembers where every key was.

`load(text, path)` returns plain Python values, except that every mapping is a `YMap`
(a dict) whose `.line_of(key)` gives the 1-based line of that key in the file, so that
config validation can say `models/a/b.yml:7: unknown key 'grian'`. Duplicate keys are an
error, as is any YAML syntax error (with its line). Booleans are YAML 1.2's: only
true/false, so `NO` (Norway) and `yes` stay text.
"""

from __future__ import annotations

import re
from functools import cache

from .errors import ConfigError, SourceLocation

# yaml is imported on first use: a compile whose files are all in the file cache
# (cache.FileCache) parses no YAML.


class YMap(dict):
    """A dict that knows the line of each of its keys and of itself."""

    line: int = 0
    key_lines: dict

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


# YAML 1.2 booleans: only true/false. YAML 1.1 also reads yes/no/on/off as booleans, which
# turns `accepted_values: {values: [NL, NO]}` into ['NL', False] (Norway lost) and hides a
# typo like `depends_on_past: yes please` behind a type error.
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


@cache
def _loader_class():
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _Loader(base):  # type: ignore[misc, valid-type]
        path = "<yaml>"

    _Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    _Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    return _Loader


def _construct_mapping(loader, node) -> YMap:
    loader.flatten_mapping(node)
    out = YMap()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in out:
            raise ConfigError(f"duplicate key '{key}'", at=SourceLocation(loader.path, line))
        try:
            hash(key)
        except TypeError:
            raise ConfigError(
                "a key must be a plain value", at=SourceLocation(loader.path, line)
            ) from None
        try:
            out[key] = loader.construct_object(value_node, deep=True)
        except ValueError as exc:  # PyYAML's own: 2026-02-30 looks like a date but is none
            mark = value_node.start_mark
            raise ConfigError(
                f"'{key}': {getattr(value_node, 'value', '')!r} is not a valid value ({exc})",
                at=SourceLocation(loader.path, mark.line + 1, mark.column + 1),
                hint="write a real date, e.g. 2026-02-28",
            ) from None
        out.key_lines[key] = line
    return out


def load(text: str, path: str):
    """Parse YAML text; `path` is only used in error messages."""
    import yaml

    loader = _loader_class()(text)
    loader.path = path
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", at=SourceLocation(path, line, col)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", at=SourceLocation(path)) from None
    finally:
        loader.dispose()
