"""Choose, per command and tier, what loads at once, on demand or lazily, and in what order.

The bundle's main text is the core files and the command. Whatever they include inline
is embedded where the include stands; whatever they require gets a placement of its own:
a section (immediate) or a chunk (on_demand, lazy). A placement is as lazy as the laziest
step on the way to it, and a module reached several ways takes its most eager placement.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, replace

import networkx as nx

from .config import LOAD_KINDS
from .graph import Framework
from .rendering import Renderer

LOAD_RANK = {kind: rank for rank, kind in enumerate(LOAD_KINDS)}
PLACED_KINDS = ("requires", "declared")  # edges that give their target a placement of its own


@dataclass(frozen=True, slots=True)
class Placement:
    path: str
    load: str  # immediate: a section; on_demand / lazy: a chunk
    via: str  # the document whose reference gave it this load


@dataclass(frozen=True, slots=True)
class Selection:
    command: str  # the command's path
    tier: str
    sections: tuple[str, ...]  # immediate placements, in emission order
    chunks: tuple[Placement, ...]  # deferred placements, by path
    dropped: tuple[str, ...]  # modules referenced but above this tier


def select_bundles(framework: Framework, renderer: Renderer) -> tuple[Selection, ...]:
    """Every (command, tier) bundle, sections ordered so that bundles share long prefixes."""
    config = framework.config
    selections = []
    for tier in config.tier_names:
        at_tier = [_select(framework, renderer, cmd.path, tier) for cmd in framework.commands
                   if config.tier_rank(cmd.tier) <= config.tier_rank(tier)]
        order = _section_order(framework, at_tier)
        selections += [replace(s, sections=tuple(sorted(s.sections, key=order.__getitem__))) for s in at_tier]
    return tuple(selections)


def in_tier(framework: Framework, path: str, tier: str) -> bool:
    config = framework.config
    return config.tier_rank(framework.documents[path].tier) <= config.tier_rank(tier)


def _select(framework: Framework, renderer: Renderer, command: str, tier: str) -> Selection:
    main = {d.path for d in framework.core} | {command}
    best: dict[str, tuple[int, str]] = {}
    dropped: set[str] = set()
    queue = [(0, path, path) for path in sorted(main)]
    while queue:
        load, path, via = heapq.heappop(queue)
        if path not in main and best.get(path, (load,))[0] < load:
            continue  # already placed more eagerly
        for target, target_load in _reached(framework, renderer, path, tier, command, dropped):
            candidate = max(load, target_load)
            if target in main or best.get(target, (len(LOAD_KINDS),))[0] <= candidate:
                continue
            best[target] = (candidate, path)
            heapq.heappush(queue, (candidate, target, path))
    sections = tuple(sorted(p for p, (load, _) in best.items() if load == 0))
    chunks = tuple(Placement(p, LOAD_KINDS[load], via) for p, (load, via) in sorted(best.items()) if load > 0)
    return Selection(command, tier, sections, chunks, tuple(sorted(dropped - best.keys())))


def _reached(framework: Framework, renderer: Renderer, path: str, tier: str, command: str, dropped: set[str]):
    """(target, load rank) for each placement reached from ``path`` and what it embeds."""
    for doc_path in embedded_paths(framework, renderer, path, tier, command, dropped):
        for target, edges in framework.edges_from(doc_path):
            for edge in edges:
                if edge.kind not in PLACED_KINDS:
                    continue
                if not in_tier(framework, target, tier):
                    dropped.add(target)
                    continue
                yield target, LOAD_RANK[edge.load or framework.documents[target].load]
        for piece in renderer.render(doc_path, tier, command).pieces:
            target = piece.target
            if target and in_tier(framework, target, tier) and framework.documents[target].load != "immediate":
                yield target, LOAD_RANK[framework.documents[target].load]


def embedded_paths(framework: Framework, renderer: Renderer, path: str, tier: str, command: str,
                   dropped: set[str] | None = None) -> list[str]:
    """``path`` and every document its text embeds inline at this tier, depth first."""
    seen, order, stack = set(), [], [path]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        order.append(current)
        targets = [p.target for p in renderer.render(current, tier, command).pieces if p.target]
        for target in reversed(targets):
            if not in_tier(framework, target, tier):
                if dropped is not None:
                    dropped.add(target)
            elif framework.documents[target].load == "immediate":
                stack.append(target)
    return order


def _section_order(framework: Framework, selections: list[Selection]) -> dict[str, int]:
    """One order for a tier: dependencies first, then the most widely shared, then by path."""
    share = Counter(path for s in selections for path in s.sections)
    placed = set(share)
    graph = nx.DiGraph()
    graph.add_nodes_from(placed)
    graph.add_edges_from((target, source) for source in placed for target, _ in framework.edges_from(source)
                         if target in placed)
    ordered = nx.lexicographical_topological_sort(graph, key=lambda p: (-share[p], p))
    return {path: index for index, path in enumerate(ordered)}
