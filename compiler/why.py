"""``tokeffc why ROOT COMMAND MODULE``: every dependency path that puts a module in a command's bundle,
per tier, and the placement that results; for a module that is not there, the reason.

Paths are read from the dependency graph as selection follows it at one tier: an include or ``@``
import counts where that tier's rendered text still holds it, every other reference as written. A
step loads its target as the reference says (a ``load:`` on the edge), else as the target's own
load; a soft reference (prose) only offers its target; a path places the module as lazily as its
laziest step. The placement itself is selection's; the paths say why.
"""

from __future__ import annotations

import difflib
import itertools
import json
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from .assemble import id_suffixes
from .config import LOAD_KINDS, Config
from .entries import Entry
from .errors import Span, UsageError, printable
from .graph import Framework
from .markdown import split_front_matter
from .parse import Document
from .pipeline import BuildOptions, BuildResult, compile_framework
from .references import IMPLIED_EXTENSIONS, KINDS
from .rendering import Renderings
from .selection import INLINE_KINDS, LOAD_RANK, Selection, always_loaded, in_tier
from .selection import offered as offered_documents
from .sources import DocPath
from .yamlio import try_read_yaml

SCHEMA = "tokeffc.why/1"
MAX_PATHS = 20  # listed per tier, shortest first (the one that decides the placement first)

Cost = tuple[int, bool]  # (load rank, soft): how lazily a step, or a whole path, places its target
LEVELS: tuple[Cost, ...] = tuple((rank, soft) for rank in range(len(LOAD_KINDS)) for soft in (False, True)
                                 if rank or not soft)  # a soft reference is never immediate
ANY: Cost = LEVELS[-1]
_START = DocPath("")  # every root of a bundle hangs from this node: paths from any root are paths from it

PLACED = ("entry", "core", "section", "inline", "chunk", "offered", "role", "in-chunk")
IN_BUNDLE = ("entry", "core", "section", "inline")
NOT_PLACED = ("above-tier", "behind-above-tier", "conditional", "unreached", "no-bundle")
VERBS = {"include": "includes", "import": "imports", "attach": "attaches (an @ mention in a sentence)"}


@dataclass(frozen=True, slots=True)
class Step:
    """One reference on a path: which file refers to which, where, and how."""

    source: DocPath
    target: DocPath
    kind: str  # a key of references.KINDS
    span: Span
    soft: bool = False
    load: str | None = None  # the load the reference itself sets (None: the target's own)


@dataclass(frozen=True, slots=True)
class Route:
    """A dependency path from one of the bundle's roots to the module, and what it alone would give."""

    start: DocPath
    start_as: str  # core | entry | focus | offered
    steps: tuple[Step, ...]
    load: str  # immediate | on_demand | lazy
    soft: bool  # a soft reference is on the way: the module is only offered
    deferred_by: int | None  # the step that made it on_demand or lazy (-1: the start); None when immediate
    holder: DocPath | None = None  # the chunk whose text holds the module (it is embedded in a deferred file)


@dataclass(frozen=True, slots=True)
class Verdict:
    placement: str  # one of PLACED or NOT_PLACED
    load: str | None  # the load it gets, when the bundle holds or offers it
    reason: str  # one sentence
    blockers: tuple[DocPath, ...] = ()  # modules above the tier every path goes through
    evidence: tuple[Step, ...] = ()  # the references the reason names

    @property
    def in_bundle(self) -> bool:
        return self.placement in IN_BUNDLE


@dataclass(frozen=True, slots=True)
class TierAnswer:
    tier: str
    verdict: Verdict
    routes: tuple[Route, ...]  # the one that decides the placement first (when placed), then the shortest
    more: bool  # more paths exist than are listed

    @property
    def decided(self) -> bool:
        return self.verdict.placement in PLACED and bool(self.routes)


@dataclass(frozen=True, slots=True)
class Why:
    framework: str
    version: str
    command: str
    module: DocPath
    module_id: str
    answers: tuple[TierAnswer, ...]


# --- the library entry points ------------------------------------------------------------------

def explain_module(root: Path, command: str, module: str, *, tiers: tuple[str, ...] = (),
                   preset: str | None = None, config_path: Path | None = None) -> Why:
    """Build ROOT's bundles for COMMAND (only), then explain where MODULE stands in each."""
    options = BuildOptions(config_path=config_path, commands=(command,), tiers=tuple(tiers), preset=preset,
                           exclude_dirs=((Path(root) / "dist").resolve(),))
    return explain(compile_framework(Path(root), options), command, module, tuple(tiers))


def explain(result: BuildResult, command: str, module: str, tiers: tuple[str, ...] = ()) -> Why:
    """Where MODULE stands in COMMAND's bundle at each tier (all when none is given), and why."""
    framework = result.framework
    for tier in tiers:
        if tier not in framework.config.tier_names:
            raise UsageError(f"unknown tier '{tier}'", hint=_did_you_mean(tier, list(framework.config.tier_names)))
    entry = find_entry(result.entries, command)
    selections = {b.tier: b.selection for b in result.bundles if b.entry == entry.id}
    path = find_module(framework, module, frozenset(_held(selections.values())))
    answers = tuple(_Explainer(framework, result.renderings, entry, tier).answer(selections.get(tier), path)
                    for tier in (tiers or framework.config.tier_names))
    config = framework.config
    return Why(config.name, config.version, entry.id, path, framework.documents[path].id, answers)


def find_entry(entries: tuple[Entry, ...], command: str) -> Entry:
    for entry in entries:
        if entry.id == command:
            return entry
    raise UsageError(f"unknown command '{command}'", hint=_did_you_mean(command, [e.id for e in entries]))


def find_module(framework: Framework, written: str, prefer: frozenset[DocPath] = frozenset()) -> DocPath:
    """A document named by its path (from the root, or as a file on disk), its id, or a unique trailing part
    of its id; of several, the only one in ``prefer`` (the command's bundles)."""
    documents = framework.documents
    for path in _as_paths(framework.config.root, written):
        if path in documents:
            return path
    by_id = [p for p, d in documents.items() if d.id == written]
    matches = by_id or [p for p, d in documents.items() if written in id_suffixes(d.id)]
    preferred = [p for p in matches if p in prefer]
    if len(matches) == 1 or len(preferred) == 1:
        return (preferred or matches)[0]
    if matches:
        listed = ", ".join(matches[:5]) + (f" and {len(matches) - 5} more" if len(matches) > 5 else "")
        raise UsageError(f"module '{written}' is ambiguous: {listed}", hint="name it by its path or its whole id")
    names = [*documents, *(d.id for d in documents.values()), *(d.name for d in documents.values())]
    close = difflib.get_close_matches(written, sorted(set(names)), n=1)
    hint = f"did you mean '{close[0]}'?" if close else "name it by its id, the end of its id, or its path"
    raise UsageError(f"unknown module '{written}'", hint=hint)


def _as_paths(root: Path, written: str) -> Iterator[DocPath]:
    normal = posixpath.normpath(written.replace("\\", "/")) if written else ""
    yield DocPath(normal)
    yield from (DocPath(normal + ext) for ext in IMPLIED_EXTENSIONS)
    try:
        on_disk = Path(written).resolve()
        if on_disk.is_file() and on_disk.is_relative_to(root):
            yield DocPath(on_disk.relative_to(root).as_posix())
    except (OSError, ValueError, RuntimeError):
        return


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(known)), n=1)
    return f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(set(known))[:8]) or 'none'}"


# --- one bundle's dependency graph, as selection follows it at one tier -----------------------

def tier_graph(framework: Framework, renderings: Renderings, entry: Entry, tier: str) -> nx.DiGraph:
    """Every reference selection follows at ``tier`` for ``entry`` (edge attribute ``steps``), with the
    bundle's roots hung from one start node (edge attributes ``start_as`` and ``cost``)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(framework.documents)
    for path in framework.documents:
        for step in _steps_from(framework, renderings, entry, tier, path):
            _add_step(graph, framework, step)
    for path, start_as, cost in bundle_roots(framework, entry):
        if not graph.has_edge(_START, path):
            graph.add_edge(_START, path, start_as=start_as, cost=cost)
    return graph


def bundle_roots(framework: Framework, entry: Entry) -> Iterator[tuple[DocPath, str, Cost]]:
    """Where selection starts: what is always loaded, the entry, an agent command's focus, offered roles."""
    for path in always_loaded(framework):
        yield path, "core", (0, False)
    if entry.path:
        yield entry.path, "entry", (0, False)
    for path in entry.focus:
        yield path, "focus", (0, False)
    for doc in offered_documents(framework):
        if doc.path != entry.path:
            yield doc.path, "offered", (LOAD_RANK[doc.load], False)


def _steps_from(framework: Framework, renderings: Renderings, entry: Entry, tier: str,
                path: DocPath) -> Iterator[Step]:
    inline = {(ref.target, ref.kind) for ref in renderings.get(framework, path, tier, entry.id).refs}
    for target, edges in framework.edges_from(path):
        for edge in edges:
            if edge.kind not in INLINE_KINDS:
                yield Step(path, target, edge.kind, edge.span, edge.soft, edge.load)
            elif (target, edge.kind) in inline:  # still in the text at this tier
                yield Step(path, target, edge.kind, edge.span)


def _add_step(graph: nx.DiGraph, framework: Framework, step: Step) -> None:
    old = graph.edges[step.source, step.target]["steps"] if graph.has_edge(step.source, step.target) else ()
    ranked = sorted({*old, step}, key=lambda s: (step_cost(framework, s), s.span.line, s.kind))
    graph.add_edge(step.source, step.target, steps=tuple(ranked))


def step_cost(framework: Framework, step: Step) -> Cost:
    """How lazily this reference alone places its target (selection's rule)."""
    own = LOAD_RANK[framework.documents[step.target].load]
    if step.kind in INLINE_KINDS:
        return own, False
    rank = LOAD_RANK[step.load] if step.load else own
    return (max(rank, 1), True) if step.soft else (rank, False)


def _within(cost: Cost, level: Cost) -> bool:
    return cost[0] <= level[0] and (not cost[1] or level[1])


def _edge_cost_within(graph: nx.DiGraph, framework: Framework, level: Cost) -> Callable[[str, str], bool]:
    def allowed(source: str, target: str) -> bool:
        data = graph.edges[source, target]
        if source == _START:
            return _within(data["cost"], level)
        return any(_within(step_cost(framework, s), level) for s in data["steps"])

    return allowed


# --- explaining one (entry, tier) ----------------------------------------------------------------

class _Explainer:
    """Scratch state for one bundle: its graph at this tier, and the views on it."""

    def __init__(self, framework: Framework, renderings: Renderings, entry: Entry, tier: str):
        self.framework, self.renderings, self.entry, self.tier = framework, renderings, entry, tier
        self.graph = tier_graph(framework, renderings, entry, tier)
        self.in_tier = nx.subgraph_view(self.graph, filter_node=lambda n: n == _START or in_tier(framework, n, tier))
        self._static: nx.DiGraph | None = None

    def answer(self, selection: Selection | None, path: DocPath) -> TierAnswer:
        if selection is None:
            return TierAnswer(self.tier, self._no_bundle(), (), False)
        if not in_tier(self.framework, path, self.tier):
            return self._above_tier(selection, path)
        placed = _selected(self.framework, selection, path)
        if placed is not None:
            return self._placed(path, *placed)
        return self._not_selected(path)

    # placed: selection holds or offers it; the paths explain how

    def _placed(self, path: DocPath, placement: str, cost: Cost) -> TierAnswer:
        best = self._best(self.in_tier, path, cost)
        if placement in ("chunk", "offered"):
            best = self._offering(path, cost) or best
        routes, more = self._routes(self.in_tier, path, best)
        decisive = routes[0] if best is not None else None
        return TierAnswer(self.tier, self._placed_verdict(path, placement, cost, decisive), routes, more)

    def _placed_verdict(self, path: DocPath, placement: str, cost: Cost, route: Route | None) -> Verdict:
        load = LOAD_KINDS[cost[0]]
        doc = self.framework.documents[path]
        if placement == "entry":
            return Verdict(placement, load, "the bundle is built for it")
        if placement == "core":
            what = "a host rule with no 'paths:'" if doc.role == "rule" else "a core file"
            return Verdict(placement, load, f"always loaded: {what}, at the start of every bundle")
        if placement == "section":
            return Verdict(placement, load, "a section of its own in the bundle")
        if placement == "inline" and route is not None and route.steps:
            step = route.steps[-1]
            return Verdict(placement, load, f"its text stands where {step.span} {VERBS.get(step.kind, 'names')} it",
                           evidence=(step,))
        if placement == "role" and doc.role == "rule":
            return Verdict(placement, load, "deferred: a rule with 'paths:', offered in every bundle (the host "
                                            "reads it when a matching file is touched)")
        if placement == "role":
            return Verdict(placement, load, f"deferred: every bundle offers each {doc.role} (the config's "
                                            "'offered'), by its trigger")
        return self._deferred_verdict(placement, load, route)

    def _deferred_verdict(self, placement: str, load: str, route: Route | None) -> Verdict:
        why, evidence = self._deferral(route)
        soft = next((s for s in route.steps if s.soft), None) if route is not None else None
        if placement == "offered" and soft is not None:
            because = f"deferred: offered because {_step_deferral(self.framework, soft)}"
            rest = "" if evidence == (soft,) else f"; {why}"
            return Verdict(placement, load, because + rest, evidence=tuple(dict.fromkeys((soft, *evidence))))
        return Verdict(placement, load, f"deferred: a chunk the bundle's index lists; {why}", evidence=evidence)

    def _deferral(self, route: Route | None) -> tuple[str, tuple[Step, ...]]:
        """Which step of the path made the module on_demand or lazy, in words."""
        if route is None or route.deferred_by is None:
            return "the selection placed it so", ()
        if route.deferred_by < 0:
            doc = self.framework.documents[route.start]
            return f"{route.start} is offered in every bundle as a {doc.role}, {doc.load}", ()
        step = route.steps[route.deferred_by]
        return _step_deferral(self.framework, step), (step,)

    def _offering(self, path: DocPath, cost: Cost) -> list[str] | None:
        """The shortest path that offers ``path`` as a chunk of its own at ``cost`` (a path that embeds
        it in another module's chunk does not)."""
        view = nx.subgraph_view(self.in_tier, filter_edge=_edge_cost_within(self.in_tier, self.framework, cost))
        try:
            candidates = itertools.islice(nx.shortest_simple_paths(view, _START, path), MAX_PATHS)
            return next((nodes for nodes in candidates if self._offers(view, nodes, cost)), None)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            return None

    def _offers(self, view: nx.DiGraph, nodes: list[str], cost: Cost) -> bool:
        route = self._route(view, nodes, cost)
        return route.holder is None and LOAD_RANK[route.load] == cost[0]

    # not selected: embedded in a chunk, behind a module above the tier, left out by a condition, unreached

    def _not_selected(self, path: DocPath) -> TierAnswer:
        best = self._best(self.in_tier, path)
        if best is not None:
            routes, more = self._routes(self.in_tier, path, best)
            return TierAnswer(self.tier, self._embedded_verdict(routes[0]), routes, more)
        routes, more = self._routes(self.graph, path)
        if routes:
            return TierAnswer(self.tier, self._behind_verdict(routes), routes, more)
        return self._unreached(path)

    def _embedded_verdict(self, route: Route) -> Verdict:
        if route.holder is None:
            return self._deferred_verdict("offered" if route.soft else "chunk", route.load, route)
        why, evidence = self._deferral(route)
        holder = route.holder
        return Verdict("in-chunk", route.load, f"deferred: its text is inside the chunk of {holder}; {why}",
                       evidence=evidence)

    def _behind_verdict(self, routes: tuple[Route, ...]) -> Verdict:
        blockers = tuple(dict.fromkeys(b for r in routes if (b := self._blocker(r)) is not None))
        named = ", ".join(f"{b} (tier {self.framework.documents[b].tier})" for b in blockers)
        return Verdict("behind-above-tier", None, f"left out: reached only through {named}, above {self.tier}",
                       blockers=blockers)

    def _blocker(self, route: Route) -> DocPath | None:
        nodes = [route.start, *(s.target for s in route.steps)]
        return next((n for n in nodes[:-1] if not in_tier(self.framework, n, self.tier)), None)

    def _above_tier(self, selection: Selection, path: DocPath) -> TierAnswer:
        doc = self.framework.documents[path]
        routes, more = self._routes(self.graph, path)
        dropped = next((d for d in selection.dropped if d.path == path), None)
        where = "; one line in the bundle says what was left out" if dropped and dropped.inline else ""
        reached = "; the paths below would bring it in at a tier that includes it" if routes else \
            "; nothing from this command reaches it either"
        reason = f"left out: its tier is {doc.tier}, above {self.tier}{where}{reached}"
        return TierAnswer(self.tier, Verdict("above-tier", None, reason), routes, more)

    def _unreached(self, path: DocPath) -> TierAnswer:
        static = self._static_graph()
        routes, more = self._routes(static, path)
        if routes:
            missing = tuple(dict.fromkeys(s for r in routes for s in r.steps
                                          if not self.graph.has_edge(s.source, s.target)))
            spans = ", ".join(str(s.span) for s in missing[:3])
            reason = (f"not reached at {self.tier}: the reference at {spans} is not in the text at this tier "
                      "(a condition leaves it out)")
            return TierAnswer(self.tier, Verdict("conditional", None, reason, evidence=missing), routes, more)
        return TierAnswer(self.tier, self._unreached_verdict(path), (), False)

    def _unreached_verdict(self, path: DocPath) -> Verdict:
        referrers = tuple(Step(source, path, e.kind, e.span, e.soft, e.load)
                          for source, _, data in sorted(self.framework.graph.in_edges(path, data=True))
                          for e in data["edges"])
        if referrers:
            spans = ", ".join(f"{s.span} ({s.kind})" for s in referrers[:3])
            more = f" and {len(referrers) - 3} more" if len(referrers) > 3 else ""
            verb = "refers" if len(referrers) == 1 else "refer"
            return Verdict("unreached", None, f"nothing reaches it from this command; {spans}{more} {verb} to it, "
                                              "and this command does not reach it", evidence=referrers)
        named = named_in_text(self.framework, path)
        if named is not None:
            return Verdict("unreached", None, f"nothing in the framework refers to it; {named} names it in text "
                                              "only (not a reference tokeffc follows: a rule or an extractor can "
                                              "make it one)")
        return Verdict("unreached", None, "nothing in the framework refers to it, or names it")

    def _no_bundle(self) -> Verdict:
        tier = self.framework.documents[self.entry.path].tier if self.entry.path else self.tier
        return Verdict("no-bundle", None, f"'{self.entry.id}' has no bundle at {self.tier}: its tier is {tier}")

    def _static_graph(self) -> nx.DiGraph:
        """The references as written, whatever the tier's text keeps (to find one a condition leaves out)."""
        if self._static is None:
            self._static = self._written_graph()
        return self._static

    def _written_graph(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(self.framework.documents)
        for source, target, data in self.framework.graph.edges(data=True):
            for edge in data["edges"]:
                _add_step(graph, self.framework, Step(source, target, edge.kind, edge.span, edge.soft, edge.load))
        graph.add_edges_from((u, v, d) for u, v, d in self.graph.out_edges(_START, data=True))
        return nx.subgraph_view(graph, filter_node=lambda n: n == _START or in_tier(self.framework, n, self.tier))

    # paths

    def _best(self, view: nx.DiGraph, path: DocPath, cost: Cost | None = None) -> list[str] | None:
        """The shortest path whose every step is at most as lazy as ``cost`` (else the least lazy there is)."""
        for level in ((cost,) if cost else ()) + LEVELS:
            allowed = _edge_cost_within(view, self.framework, level)
            try:
                return nx.shortest_path(nx.subgraph_view(view, filter_edge=allowed), _START, path)
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                continue
        return None

    def _routes(self, view: nx.DiGraph, path: DocPath,
                first: list[str] | None = None) -> tuple[tuple[Route, ...], bool]:
        """Up to MAX_PATHS paths, ``first`` first, then the shortest; and whether more exist."""
        try:
            shortest = list(itertools.islice(nx.shortest_simple_paths(view, _START, path), MAX_PATHS + 1))
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            shortest = []
        if first is None and shortest:
            first = self._best(view, path)
        known = [first] if first else []
        known += [p for p in shortest if p != first]
        level = _route_level(first, view, self.framework)
        routes = tuple(self._route(view, nodes, level if index == 0 else ANY) for index, nodes in
                       enumerate(known[:MAX_PATHS]))
        return routes, len(known) > MAX_PATHS

    def _route(self, view: nx.DiGraph, nodes: list[str], level: Cost) -> Route:
        start = DocPath(nodes[1])
        data = view.edges[_START, start]
        pairs = itertools.pairwise(nodes[1:])
        steps = tuple(_cheapest(self.framework, view.edges[u, v]["steps"], level) for u, v in pairs)
        return evaluate_route(self.framework, start, data["start_as"], data["cost"], steps)


def _route_level(nodes: list[str] | None, view: nx.DiGraph, framework: Framework) -> Cost:
    """The least lazy level the path fits in (its steps are then chosen within it)."""
    if not nodes:
        return ANY
    for level in LEVELS:
        allowed = _edge_cost_within(view, framework, level)
        if all(allowed(u, v) for u, v in itertools.pairwise(nodes)):
            return level
    return ANY


def _cheapest(framework: Framework, steps: tuple[Step, ...], level: Cost) -> Step:
    return next((s for s in steps if _within(step_cost(framework, s), level)), steps[0])


def evaluate_route(framework: Framework, start: DocPath, start_as: str, start_cost: Cost,
                   steps: tuple[Step, ...]) -> Route:
    """What a path alone gives the module: its load, whether it is only offered, which step deferred it,
    and the chunk that holds it when it is embedded in a deferred file."""
    rank, soft = start_cost
    deferred_by: int | None = -1 if rank else None
    holder: DocPath | None = None
    for index, step in enumerate(steps):
        cost = step_cost(framework, step)
        embedded = step.kind in INLINE_KINDS and cost[0] == 0
        holder = (holder or step.source) if rank and embedded else None
        if cost[0] > rank:
            rank, deferred_by = cost[0], index
        soft = soft or cost[1]
    return Route(start, start_as, steps, LOAD_KINDS[rank], soft, deferred_by, holder)


def _held(selections) -> Iterator[DocPath]:
    for selection in selections:
        yield from selection.immediate
        yield from (chunk.path for chunk in selection.chunks)


def _selected(framework: Framework, selection: Selection, path: DocPath) -> tuple[str, Cost] | None:
    """Where the selection put ``path``, if it holds or offers it."""
    if path == selection.entry.path:
        return "entry", (0, False)
    if path in selection.main:
        return "core", (0, False)
    if path in selection.sections:
        return "section", (0, False)
    if path in selection.immediate:
        return "inline", (0, False)
    for chunk in selection.chunks:
        if chunk.path == path:
            offered = chunk.via == path and path in {d.path for d in offered_documents(framework)}
            placement = "role" if offered else "offered" if chunk.soft else "chunk"
            return placement, (LOAD_RANK[chunk.load], chunk.soft)
    return None


def _step_deferral(framework: Framework, step: Step) -> str:
    if step.soft:
        return f"{step.span} names it in prose ({step.kind}, a soft reference)"
    if step.load:
        return f"the {KINDS[step.kind].noun} at {step.span} sets load: {step.load}"
    doc = framework.documents[step.target]
    return f"{step.target} loads {doc.load} ({load_origin(framework.config, doc)}), reached at {step.span}"


def load_origin(config: Config, doc: Document) -> str:
    """Where a document's load comes from: its front matter, a rule, or the host's rule for rules."""
    if doc.role == "rule" and doc.meta_value("paths"):
        return "a host rule with 'paths:' is offered for the files it names"
    if _own_load(doc) is not None:
        return f"its front matter, {doc.path}"
    rule = config.rule_for(doc.path)
    if rule is not None and rule.load:
        return f"the rule matching {', '.join(rule.match)}"
    return "its default"


def _own_load(doc: Document) -> Any:
    split = split_front_matter(doc.head) if doc.head else None
    if split is None or split.front_matter is None:
        return None
    parsed = try_read_yaml(split.front_matter, doc.path, 2)
    ours = parsed.data.get("tokeffc") if parsed is not None and isinstance(parsed.data, dict) else None
    return ours.get("load") if isinstance(ours, dict) else None


def named_in_text(framework: Framework, path: DocPath) -> str | None:
    """The first file:line of another file whose text names ``path`` (its file name, or its name without extension)."""
    stem = posixpath.splitext(posixpath.basename(path))[0]
    pattern = re.compile(rf"(?<![\w-]){re.escape(stem)}(?![\w-])")
    for doc in framework.documents.values():
        match = pattern.search(doc.text) if doc.path != path and stem in doc.text else None
        if match:
            return f"{doc.path}:{doc.text.count(chr(10), 0, match.start()) + 1}"
    return None


# --- output ---------------------------------------------------------------------------------------

def render_why(why: Why, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(why_json(why), indent=2, sort_keys=True) + "\n"
    return "\n".join(why_lines(why)) + "\n"


def why_lines(why: Why) -> list[str]:
    lines = [f"{why.framework} {why.version}: module {why.module_id} ({why.module}), command '{why.command}'"]
    for tiers, answer in _grouped(why.answers):
        verdict = answer.verdict
        load = f", {verdict.load}" if verdict.load else ""
        lines.append(f"{', '.join(tiers)}: {verdict.placement}{load}: {printable(verdict.reason)}")
        for number, route in enumerate(answer.routes, start=1):
            lines += _route_lines(number, route, number == 1 and answer.decided)
        if answer.more:
            lines.append(f"  more paths exist; these are {MAX_PATHS}, the shortest")
    return lines


def _grouped(answers: tuple[TierAnswer, ...]) -> Iterator[tuple[list[str], TierAnswer]]:
    """Tiers with the same answer, together."""
    for _, group in itertools.groupby(answers, key=lambda a: (a.verdict, a.routes, a.more)):
        members = list(group)
        yield [a.tier for a in members], members[0]


START_WORDS = {"core": "always loaded", "entry": "the entry", "focus": "named by the agent command",
               "offered": "offered in every bundle by its role"}


def _route_lines(number: int, route: Route, decides: bool) -> list[str]:
    label = " (decides it)" if decides else ""
    start = START_WORDS[route.start_as] + (f", {route.load}" if route.deferred_by == -1 else "")
    lines = [f"  path {number}{label}: from {route.start} ({start}); {_gives(route)}"]
    for index, step in enumerate(route.steps):
        flags = (", soft" if step.soft else "") + (f", load: {step.load}" if step.load else "")
        mark = f"   <- made it {route.load}" if index == route.deferred_by else ""
        lines.append(f"      {step.span}  {step.kind}{flags} -> {step.target}{mark}")
    return [printable(line) for line in lines]


def _gives(route: Route) -> str:
    if route.holder is not None:
        return f"it would stand inside the {route.load} chunk of {route.holder}"
    if route.load == "immediate":
        return "it would load at once" if route.steps else "it is this file"
    return f"it would be {'offered as ' if route.soft else ''}{_a(route.load)} {route.load} chunk"


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def why_json(why: Why) -> dict[str, Any]:
    """The stable JSON answer (schema ``tokeffc.why/1``)."""
    return {"schema": SCHEMA, "framework": why.framework, "version": why.version, "command": why.command,
            "module": {"id": why.module_id, "path": why.module},
            "tiers": [_answer_json(a) for a in why.answers]}


def _answer_json(answer: TierAnswer) -> dict[str, Any]:
    verdict = answer.verdict
    return {"tier": answer.tier, "placement": verdict.placement, "in_bundle": verdict.in_bundle,
            "load": verdict.load, "reason": verdict.reason, "blockers": list(verdict.blockers),
            "evidence": [_step_json(s) for s in verdict.evidence],
            "paths": [_route_json(r, i == 0 and answer.decided) for i, r in enumerate(answer.routes)],
            "more_paths": answer.more}


def _route_json(route: Route, decides: bool) -> dict[str, Any]:
    return {"decides": decides, "from": route.start, "from_as": route.start_as, "load": route.load,
            "soft": route.soft, "deferred_by": route.deferred_by, "holder": route.holder,
            "steps": [_step_json(s) for s in route.steps]}


def _step_json(step: Step) -> dict[str, Any]:
    return {"from": step.source, "to": step.target, "kind": step.kind, "file": step.span.path,
            "line": step.span.line, "soft": step.soft, "load": step.load}


__all__ = ["MAX_PATHS", "SCHEMA", "Route", "Step", "TierAnswer", "Verdict", "Why", "bundle_roots",
           "evaluate_route", "explain", "explain_module", "find_entry", "find_module", "render_why", "step_cost",
           "tier_graph", "why_json", "why_lines"]
