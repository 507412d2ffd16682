"""Resolve references to files and build the dependency graph (networkx).

A written path is tried in the places its kind allows (``references.KINDS``), after ``aliases``
rewrite a prefix. A path matching ``external:`` exists only at run time: it stays literal and is
listed. A hard reference to nothing is an error, or with ``on_missing: warn`` a listed warning; a
soft one that names nothing is simply not a reference.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from .config import Config
from .errors import Notice, Span, TokeffcError, raise_all
from .globs import glob_regex
from .parse import Document
from .references import IMPLIED_EXTENSIONS, KINDS, TEXT_EXTENSIONS, Reference
from .sources import DocPath, Tree

if TYPE_CHECKING:
    import networkx as nx

CYCLE_KINDS = ("requires", "include", "import", "attach")  # a cycle through these could never be laid out
INLINE_KINDS = ("include", "import", "attach")  # the target's text stands inside the referencing file's
MAX_INLINE_DEPTH = 64  # files embedded in files embedded in ...: deeper is an error at the reference


@dataclass(frozen=True, slots=True)
class Edge:
    """One reference from a document to another, resolved."""

    kind: str  # a key of references.KINDS
    load: str | None
    span: Span
    written: str
    soft: bool = False


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A reference kept as written: a run-time path (external) or a file that is not there (missing)."""

    written: str
    kind: str
    span: Span
    reason: str


@dataclass(frozen=True, slots=True)
class Framework:
    config: Config
    documents: Mapping[DocPath, Document]  # by path, sorted
    graph: nx.DiGraph  # frozen; nodes are paths; edge attribute "edges": tuple[Edge, ...]
    unreached: tuple[DocPath, ...]  # modules nothing reaches
    core_order: tuple[DocPath, ...]  # core files in the order the config lists them
    external: tuple[Unresolved, ...] = ()
    missing: tuple[Unresolved, ...] = ()
    _of_roles: dict[tuple[str, ...], tuple[Document, ...]] = field(default_factory=dict, init=False, compare=False,
                                                                   repr=False)  # replace() starts it empty

    @property
    def core(self) -> tuple[Document, ...]:
        return tuple(self.documents[p] for p in self.core_order)

    def of_role(self, *roles: str) -> tuple[Document, ...]:
        """The documents of these roles, by path (asked once per bundle: looked up once per build)."""
        if roles not in self._of_roles:
            self._of_roles[roles] = tuple(d for d in self.documents.values() if d.role in roles)
        return self._of_roles[roles]

    def edges_from(self, path: DocPath) -> list[tuple[DocPath, tuple[Edge, ...]]]:
        return [(target, data["edges"]) for target, data in self.graph.adj[path].items()]

    @property
    def warnings(self) -> tuple[Notice, ...]:
        notes = [w for d in self.documents.values() for w in d.warnings]
        notes += [Notice(m.span, f"{KINDS[m.kind].noun} '{m.written}' {m.reason}; kept as written")
                  for m in self.missing]
        return tuple(notes)


ReadImplicit = Callable[[DocPath, Span], Document]


def build_graph(config: Config, documents: list[Document], tree: Tree, read_implicit: ReadImplicit) -> Framework:
    """Resolve every reference, load files reached only by reference, refuse cycles."""
    import networkx as nx  # imported here: a build tokenizes its sources in a thread meanwhile

    resolver = _Resolver(config, documents, tree)
    graph = nx.DiGraph()
    by_path = resolver.known
    pending = sorted(by_path)
    while pending:
        path = pending.pop(0)
        graph.add_node(path)
        for ref in by_path[path].references:
            for target in resolver.resolve(ref, by_path[path]):
                if target not in by_path:
                    by_path[target] = read_implicit(target, ref.span)
                    resolver.add_id(by_path[target])
                    pending.append(target)
                if target != path:
                    _add_edge(graph, path, target, Edge(ref.kind, ref.load, ref.span, ref.written, ref.soft))
    raise_all(resolver.problems)
    _refuse_cycles(graph)
    _refuse_deep_nesting(graph)
    documents_sorted = MappingProxyType({p: by_path[p] for p in sorted(by_path)})
    core_order = tuple(d.path for d in documents if d.role == "core")
    return Framework(config, documents_sorted, nx.freeze(graph), _unreached(graph, documents_sorted, config),
                     core_order, tuple(resolver.external), tuple(resolver.missing))


def _add_edge(graph: nx.DiGraph, source: DocPath, target: DocPath, edge: Edge) -> None:
    old = graph.edges[source, target]["edges"] if graph.has_edge(source, target) else ()
    if edge not in old:
        graph.add_edge(source, target, edges=(*old, edge))


class _Resolver:
    """Where written paths point; scratch state for one graph build."""

    def __init__(self, config: Config, documents: list[Document], tree: Tree):
        self.config, self.tree = config, tree
        self.known: dict[DocPath, Document] = {d.path: d for d in documents}
        self.ids: dict[str, DocPath] = {}
        self.external: list[Unresolved] = []
        self.missing: list[Unresolved] = []
        self.problems: list[TokeffcError] = []  # every reference to nothing, reported together
        self._by_name: dict[str, list[DocPath]] | None = None
        _check_unique_ids(documents)
        for doc in sorted(documents, key=lambda d: d.path):
            self.add_id(doc)

    def add_id(self, doc: Document) -> None:
        if doc.role not in self.config.entries:
            self.ids.setdefault(doc.id, doc.path)

    def resolve(self, ref: Reference, doc: Document) -> list[DocPath]:
        """The files ``ref`` names (several for a glob), or none when it stays as written."""
        written = self._aliased(ref.written, doc)
        if self._is_external(written):
            self._note(self.external, ref, "exists only at run time (external)")
            return []
        places = self._candidates(ref, written, doc)
        candidates = [c for c in places if not _escapes(c)]
        found = [c for c in candidates if c in self.known or c in self.tree]
        if ref.kind == "mention":  # a pattern in prose: a name that matches no file is not a reference
            return found
        if ref.kind == "field":
            return found or self._unfound(ref, False, candidates)
        if found:
            return found[:1]
        return self._unfound(ref, bool(places) and not candidates or _escapes(written), candidates)

    def _unfound(self, ref: Reference, escapes: bool, candidates: list[DocPath]) -> list[DocPath]:
        if ref.soft:
            return []
        excluded = not escapes and any((self.config.root / c).is_file() for c in candidates)
        reason = "escapes the framework root" if escapes else \
            "is a file the config's 'exclude' leaves out (the host reads it)" if excluded else "is not in the framework"
        if self.config.on_missing == "warn":
            self._note(self.missing, ref, reason)
            return []
        if escapes:
            self.problems.append(TokeffcError(
                f"'{ref.written}' escapes the framework root", ref.span,
                "reference files inside the root only, or list run-time paths under 'external:'"))
        else:
            self.problems.append(TokeffcError(
                f"{KINDS[ref.kind].noun} '{ref.written}' {reason if excluded else 'not found'}", ref.span,
                KINDS[ref.kind].hint + "; or set 'on_missing: warn', or list it under 'external:'"))
        return []

    def _note(self, found: list[Unresolved], ref: Reference, reason: str) -> None:
        entry = Unresolved(ref.written, ref.kind, ref.span, reason)
        if entry not in found:
            found.append(entry)

    def _aliased(self, written: str, doc: Document) -> str:
        for prefix, replacement in self.config.aliases:
            if written.startswith(prefix):
                rest = written[len(prefix):]
                if replacement.startswith(("./", "../")):  # relative to the referencing file's folder
                    return _normal(posixpath.join(posixpath.dirname(doc.path), replacement, rest))
                return _normal(replacement + rest)
        return written

    def _is_external(self, written: str) -> bool:
        return any(glob_regex(pattern).fullmatch(written.lstrip("./") if written.startswith("./") else written)
                   for pattern in self.config.external)

    def _candidates(self, ref: Reference, written: str, doc: Document) -> list[DocPath]:
        if written.startswith("~") or posixpath.isabs(written):
            return []
        paths: list[str] = []
        for place in KINDS[ref.kind].lookup:
            paths += self._place(place, written, doc)
        if KINDS[ref.kind].implied_extensions and not posixpath.splitext(written)[1]:
            paths += [p + ext for ext in IMPLIED_EXTENSIONS for p in paths]
        return [DocPath(p) for p in dict.fromkeys(paths) if p != "."]

    def _place(self, place: str, written: str, doc: Document) -> list[str]:
        here = posixpath.dirname(doc.path)
        if place == "id":
            return [self.ids[written]] if written in self.ids else []
        if place == "here":
            return [_normal(posixpath.join(here, written))]
        if place == "root":
            return [_normal(written)]
        if place == "pack":  # "tasks/x.md" declared in agents/a.md means ../tasks/x.md first
            return [_normal(posixpath.join(posixpath.dirname(here), written))]
        if place == "search":
            return [_normal(posixpath.join(folder, written)) for folder in self.config.search_paths]
        if place == "glob":
            regex = glob_regex(written.lower())
            return [f for f in self.tree.files if regex.fullmatch(f.lower())]
        return self._named(written) if self.config.resolve_by_name else []

    def _named(self, written: str) -> list[str]:
        """A unique file of the framework with this file name (an installer flattened the layout)."""
        if self._by_name is None:
            self._by_name = {}
            for path in self.tree.files:
                if path.lower().endswith(TEXT_EXTENSIONS):
                    self._by_name.setdefault(posixpath.basename(path), []).append(path)
        matches = self._by_name.get(posixpath.basename(written), [])
        return list(matches) if len(matches) == 1 else []


def _check_unique_ids(documents: list[Document]) -> None:
    """Two modules, or two entries, with one id are an error."""
    seen: dict[tuple[bool, str], DocPath] = {}
    for doc in sorted(documents, key=lambda d: d.path):
        key = (doc.role in ("command", "agent"), doc.id)
        if key in seen:
            raise TokeffcError(f"{doc.role} id '{doc.id}' is also used by {seen[key]}", Span(doc.path, 1),
                               "give one of them another 'tokeffc: {id: …}', or narrow the globs")
        seen[key] = doc.path


def _escapes(path: str) -> bool:
    return path == ".." or path.startswith(("../", "~")) or posixpath.isabs(path)


def _normal(path: str) -> str:
    return posixpath.normpath(path) if path else "."


def _refuse_cycles(graph: nx.DiGraph) -> None:
    import networkx as nx

    hard = nx.DiGraph((u, v) for u, v, data in graph.edges(data=True)
                      if any(e.kind in CYCLE_KINDS and not e.soft for e in data["edges"]))
    if nx.is_directed_acyclic_graph(hard):
        return
    cycle = nx.find_cycle(hard)
    steps = [f"{_first_hard(graph, u, v).span}" for u, v in cycle]
    chain = " -> ".join([*steps, cycle[0][0]])
    raise TokeffcError(f"dependency cycle: {chain}", _first_hard(graph, *cycle[0]).span,
                       "break the cycle: one of these must not depend on the other")


def _refuse_deep_nesting(graph: nx.DiGraph) -> None:
    """Inline references chained deeper than MAX_INLINE_DEPTH: an error at the reference that goes too deep."""
    import networkx as nx

    inline = nx.DiGraph()
    for source, target, data in graph.edges(data=True):
        edges = [e for e in data["edges"] if e.kind in INLINE_KINDS and not e.soft]
        if edges:
            inline.add_edge(source, target, span=edges[0].span)
    depth: dict[str, int] = {}
    for node in reversed(list(nx.topological_sort(inline))):  # acyclic: cycles were refused
        for target, data in inline.adj[node].items():
            reached = depth.get(target, 0) + 1
            if reached > MAX_INLINE_DEPTH:
                raise TokeffcError(f"files embed files {reached} levels deep here (the limit is {MAX_INLINE_DEPTH})",
                                   data["span"], "flatten the chain of includes")
            depth[node] = max(depth.get(node, 0), reached)


def _first_hard(graph: nx.DiGraph, source: str, target: str) -> Edge:
    return next(e for e in graph.edges[source, target]["edges"] if e.kind in CYCLE_KINDS and not e.soft)


def _unreached(graph: nx.DiGraph, documents: Mapping[DocPath, Document], config: Config) -> tuple[DocPath, ...]:
    import networkx as nx

    roots = [p for p, d in documents.items() if d.role in ("core", "rule", *config.entries, *config.offered)]
    reached = set(roots).union(*(nx.descendants(graph, r) for r in roots)) if roots else set()
    return tuple(p for p in documents if p not in reached)
