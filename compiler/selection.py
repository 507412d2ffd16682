"""Choose, per entry and tier, what loads at once, on demand or lazily, and in what order.

A bundle's main text is what is always loaded (core files, host rules) and the entry. What a
document embeds (an include, an ``@`` import) stands where it is referenced; what it requires gets
a section of its own (immediate) or a chunk (on_demand, lazy); what prose only names (soft
references) is offered as a chunk. A placement is as lazy as the laziest step on the way to it,
and a document reached several ways takes its most eager placement. A module above the tier is
left out, and so is whatever only it reaches.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .config import LOAD_KINDS
from .entries import Entry
from .graph import Framework
from .parse import Document
from .references import KINDS
from .rendering import Renderings
from .sources import DocPath

if TYPE_CHECKING:
    import networkx as nx

LOAD_RANK = {kind: rank for rank, kind in enumerate(LOAD_KINDS)}
INLINE_KINDS = tuple(k.name for k in KINDS.values() if k.placement in ("inline", "attached"))


@dataclass(frozen=True, slots=True)
class Placement:
    path: DocPath
    load: str  # on_demand | lazy
    soft: bool  # offered because prose names it
    via: DocPath  # the document whose reference gave it this load


@dataclass(frozen=True, slots=True)
class Dropped:
    path: DocPath
    via: DocPath
    inline: bool  # it would have stood at a reference inside ``via`` (else: among the sections)


@dataclass(frozen=True, slots=True)
class Selection:
    entry: Entry
    tier: str
    main: tuple[DocPath, ...]  # always loaded, in order
    sections: tuple[DocPath, ...]  # immediate placements with a section of their own, in emission order
    immediate: frozenset[DocPath]  # every document whose text is in the bundle
    chunks: tuple[Placement, ...]  # deferred placements, by path
    dropped: tuple[Dropped, ...]  # left out by the tier


def always_loaded(framework: Framework) -> tuple[DocPath, ...]:
    """Core files in config order, then host rules that apply everywhere (no ``paths:``)."""
    rules = sorted(d.path for d in framework.of_role("rule") if d.load == "immediate")
    return (*framework.core_order, *rules)


def is_path_rule(doc: Document) -> bool:
    """A host rule read only when the model touches a matching file (``paths:``), whichever command runs."""
    return doc.role == "rule" and doc.load != "immediate"


def offered(framework: Framework) -> list[Document]:
    """Documents every bundle offers as chunks: the configured roles, and the path rules."""
    return [*framework.of_role(*framework.config.offered), *filter(is_path_rule, framework.of_role("rule"))]


def select_bundles(framework: Framework, renderings: Renderings,
                   entries: tuple[Entry, ...]) -> tuple[Selection, ...]:
    """Every (entry, tier) bundle, sections ordered so that bundles share long prefixes."""
    config = framework.config
    selections = []
    for tier in config.tier_names:
        at_tier = [_Selector(framework, renderings, entry, tier).select() for entry in entries
                   if config.tier_rank(entry.tier) <= config.tier_rank(tier)]
        order = _section_order(framework, at_tier)
        selections += [replace(s, sections=tuple(sorted(s.sections, key=order.__getitem__))) for s in at_tier]
    return tuple(selections)


def chunk_children(framework: Framework, renderings: Renderings, entry: Entry, tier: str,
                   path: DocPath) -> tuple[Placement, ...]:
    """What a deferred module itself offers: the chunks its text (and what it embeds) refers to.

    A chunk lists these at its end, so a model that loads it learns where to go next; they are not
    repeated in the bundle's own index.
    """
    selector = _Selector(framework, renderings, replace(entry, path=None, focus=()), tier)
    selector.main = ()
    selector.offer_chunk(path)
    while selector.queue:
        rank, soft, current = heapq.heappop(selector.queue)
        if selector.best[current][:2] == (rank, soft) and current == path:
            selector._expand(current, rank, soft)
    inside = set(selector._embedded(path))
    return tuple(p for p in selector._result().chunks if p.via in inside and p.path not in inside)


def in_tier(framework: Framework, path: DocPath, tier: str) -> bool:
    config = framework.config
    return config.tier_rank(framework.documents[path].tier) <= config.tier_rank(tier)


class _Selector:
    """Scratch state for one bundle: the best placement found so far for each document."""

    def __init__(self, framework: Framework, renderings: Renderings, entry: Entry, tier: str):
        self.framework, self.renderings, self.entry, self.tier = framework, renderings, entry, tier
        self.main = always_loaded(framework)
        self.best: dict[DocPath, tuple[int, bool, DocPath, bool]] = {}  # path -> (rank, soft, via, slot)
        self.dropped: dict[DocPath, Dropped] = {}
        self.queue: list[tuple[int, bool, DocPath]] = []

    def select(self) -> Selection:
        self._seed()
        while self.queue:
            rank, soft, path = heapq.heappop(self.queue)
            if self.best[path][:2] == (rank, soft):
                self._expand(path, rank, soft)
        return self._result()

    def _seed(self) -> None:
        starts = [*self.main, *([self.entry.path] if self.entry.path else [])]
        for path in starts:
            self._offer(path, 0, False, path, slot=False)
        for path in self.entry.focus:
            self._offer(path, 0, False, self.entry.path or path, slot=True)
        for doc in offered(self.framework):
            if doc.path != self.entry.path:
                self._offer(doc.path, LOAD_RANK[doc.load], False, doc.path, slot=True)

    def offer_chunk(self, path: DocPath) -> None:
        self._offer(path, 1, False, path, slot=True)

    def _offer(self, path: DocPath, rank: int, soft: bool, via: DocPath, slot: bool) -> None:
        if not in_tier(self.framework, path, self.tier):
            self.dropped.setdefault(path, Dropped(path, via, not slot))
            return
        old = self.best.get(path)
        if old is not None and (old[0], old[1]) <= (rank, soft):
            if old[0] == rank == 0 and slot and not old[3]:
                self.best[path] = (*old[:3], True)  # also reached by a section: give it its slot
            return
        self.best[path] = (rank, soft, via, slot)
        heapq.heappush(self.queue, (rank, soft, path))

    def _expand(self, path: DocPath, rank: int, soft: bool) -> None:
        """Follow the references of ``path`` and of everything its text embeds at this rank."""
        for doc_path in self._embedded(path):
            if doc_path != path and rank == 0:  # its text is in the bundle (inside a chunk, it is that chunk's)
                self._offer(doc_path, rank, soft, path, slot=False)
            self._follow(doc_path, rank, soft)

    def _follow(self, path: DocPath, rank: int, soft: bool) -> None:
        documents = self.framework.documents
        for ref in self._rendered(path).refs:
            load_of = documents[ref.target].load
            if load_of != "immediate" or not in_tier(self.framework, ref.target, self.tier):
                self._offer(ref.target, max(rank, LOAD_RANK[load_of]), soft, path, slot=False)
        for target, edges in self.framework.edges_from(path):
            for edge in edges:
                if edge.kind in INLINE_KINDS:
                    continue  # placed from the rendered text above (it may differ per tier)
                load = LOAD_RANK[edge.load or documents[target].load]
                if edge.soft:
                    self._offer(target, max(rank, load, 1), True, path, slot=True)
                else:
                    self._offer(target, max(rank, load), soft, path, slot=True)

    def _embedded(self, path: DocPath) -> list[DocPath]:
        """``path`` and every document its text embeds inline at this tier, depth first."""
        seen, order, stack = set(), [], [path]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            order.append(current)
            for ref in reversed(self._rendered(current).refs):
                target = self.framework.documents[ref.target]
                if target.load == "immediate" and in_tier(self.framework, ref.target, self.tier):
                    stack.append(ref.target)
        return order

    def _rendered(self, path: DocPath):
        return self.renderings.get(self.framework, path, self.tier, self.entry.id)

    def _result(self) -> Selection:
        immediate = {p for p, (rank, *_rest) in self.best.items() if rank == 0}
        main = set(self.main) | ({self.entry.path} if self.entry.path else set())
        sections = tuple(sorted(p for p, (rank, _s, _v, slot) in self.best.items()
                                if rank == 0 and slot and p not in main))
        chunks = tuple(Placement(p, LOAD_KINDS[rank], soft, via) for p, (rank, soft, via, _) in
                       sorted(self.best.items()) if rank > 0)
        dropped = tuple(d for p, d in sorted(self.dropped.items()) if p not in self.best)
        return Selection(self.entry, self.tier, self.main, sections, frozenset(immediate), chunks, dropped)


def _section_order(framework: Framework, selections: list[Selection]) -> dict[DocPath, int]:
    """One order for a tier: dependencies first, then the most widely shared, then by path."""
    import networkx as nx  # where the graph is built (see graph.build_graph)

    share = Counter(path for s in selections for path in s.sections)
    placed = set(share)
    graph = nx.DiGraph()
    graph.add_nodes_from(placed)
    graph.add_edges_from((target, source) for source in placed for target, _ in framework.edges_from(source)
                         if target in placed and target != source)
    if not nx.is_directed_acyclic_graph(graph):  # mentions may point both ways: order the knots as one
        graph = _without_back_edges(graph, share)
    ordered = nx.lexicographical_topological_sort(graph, key=lambda p: (-share[p], p))
    return {path: index for index, path in enumerate(ordered)}


def _without_back_edges(graph: nx.DiGraph, share: Counter) -> nx.DiGraph:
    import networkx as nx

    ranked = {p: i for i, p in enumerate(sorted(graph, key=lambda p: (-share[p], p)))}
    acyclic = nx.DiGraph()
    acyclic.add_nodes_from(graph)
    acyclic.add_edges_from((u, v) for u, v in graph.edges if ranked[u] < ranked[v])
    return acyclic
