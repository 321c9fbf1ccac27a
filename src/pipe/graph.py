"""The dependency graph over node names: deterministic topological order, cycles, selection.

Order comes from graphlib.TopologicalSorter, taking each batch of ready nodes sorted by
name, so the same graph always gives the same order. Selection (SPEC §4): `name`,
`+name` (with upstream), `name+` (with downstream), `+name+`, `tag:x`, unions separated
by spaces; `name` may omit the schema when only one node has that table name.
"""

from __future__ import annotations

import difflib
import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import CycleError, SourceLocation, UserError
from .names import by_table as names_by_table


@dataclass(frozen=True)
class Graph:
    """`upstream[n]` is the sorted tuple of nodes n reads from; `order` is topological."""

    upstream: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]

    def downstream_map(self) -> dict[str, list[str]]:
        down: dict[str, list[str]] = {n: [] for n in self.order}
        for n in self.order:
            for u in self.upstream[n]:
                down[u].append(n)
        return down


def build(
    upstream: Mapping[str, Iterable[str]], locate: Mapping[str, SourceLocation] | None = None
) -> Graph:
    """Check for cycles and order the nodes; raise CycleError with the whole path."""
    ups = {n: tuple(sorted(set(us))) for n, us in upstream.items()}
    sorter = graphlib.TopologicalSorter(ups)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # [a, b, ..., a], each an upstream of the next: data flow, a -> b means b reads a
        cycle = list(exc.args[1])
        # rotate so the path starts at its smallest name: stable messages
        body = cycle[:-1]
        i = body.index(min(body))
        body = body[i:] + body[:i]
        path = " -> ".join(body + [body[0]])
        at = (locate or {}).get(body[0])
        raise CycleError(f"dependency cycle: {path}", at=at) from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return Graph(ups, tuple(order))


def _closure(start: set[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen = set(start)
    stack = list(start)
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def with_upstream(graph: Graph, names: Iterable[str]) -> list[str]:
    """`names` and everything upstream of them, in topological order."""
    chosen = _closure(set(names), graph.upstream)
    return [n for n in graph.order if n in chosen]


def select(graph: Graph, selector: str | None, tags: Mapping[str, Iterable[str]]) -> list[str]:
    """Names matched by `selector`, in topological order; None selects everything."""
    if not selector or not selector.strip():
        return list(graph.order)
    names = set(graph.order)
    by_table = names_by_table(names)
    down = graph.downstream_map()
    chosen: set[str] = set()
    for term in selector.split():
        up_too, down_too = term.startswith("+"), term.endswith("+") and len(term) > 1
        core = term.strip("+")
        if not core.startswith("tag:"):
            core = core.lower()  # node names are lowercase (loader)
        if core.startswith("tag:"):
            tag = core[4:]
            base = {n for n in names if tag in tags.get(n, ())}
            if not base:
                known = sorted({t for ts in tags.values() for t in ts})
                raise UserError(
                    f"no model has tag '{tag}'", hint="tags in use: " + (", ".join(known) or "none")
                )
        elif core in names:
            base = {core}
        elif len(by_table.get(core, [])) == 1:
            base = set(by_table[core])
        else:
            if by_table.get(core):
                raise UserError(
                    f"'{core}' is ambiguous in --select",
                    hint="write one of " + ", ".join(sorted(by_table[core])),
                )
            close = difflib.get_close_matches(core, sorted(names), n=1)
            raise UserError(
                f"--select matches nothing: '{core}'",
                hint=f"did you mean '{close[0]}'?" if close else "see 'pipe list' for the names",
            )
        sel = set(base)
        if up_too:
            sel |= _closure(base, graph.upstream)
        if down_too:
            sel |= _closure(base, down)
        chosen |= sel
    return [n for n in graph.order if n in chosen]
