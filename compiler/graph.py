"""Resolve references to files and build the dependency graph (networkx)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

import networkx as nx

from .config import Config
from .errors import Span, TokeffcError
from .parse import Document, Reference


@dataclass(frozen=True, slots=True)
class Edge:
    """One reference from a document to another, resolved."""

    kind: str  # requires | include | import | declared
    load: str | None
    span: Span
    written: str


@dataclass(frozen=True, slots=True)
class Framework:
    config: Config
    documents: Mapping[str, Document]  # by path, sorted
    graph: nx.DiGraph  # frozen; nodes are paths; edge attribute "edges": tuple[Edge, ...]
    unreached: tuple[str, ...]  # module paths no command or core file reaches
    core_order: tuple[str, ...]  # core files in the order the config lists them

    @property
    def core(self) -> tuple[Document, ...]:
        return tuple(self.documents[p] for p in self.core_order)

    @property
    def commands(self) -> tuple[Document, ...]:
        return tuple(d for d in self.documents.values() if d.kind == "command")

    @property
    def modules(self) -> tuple[Document, ...]:
        return tuple(d for d in self.documents.values() if d.kind == "module")

    def edges_from(self, path: str) -> list[tuple[str, tuple[Edge, ...]]]:
        return [(target, data["edges"]) for target, data in self.graph.adj[path].items()]


def build_graph(config: Config, documents: list[Document],
                read_implicit: Callable[[str, Span], Document]) -> Framework:
    """Resolve every reference, load files reached only by reference, refuse cycles."""
    by_path = {d.path: d for d in documents}
    ids = _module_ids(documents)
    graph = nx.DiGraph()
    pending = sorted(by_path)
    while pending:
        path = pending.pop(0)
        graph.add_node(path)
        for ref in by_path[path].references:
            target = _resolve(ref, by_path[path], config, ids, by_path)
            if target not in by_path:
                by_path[target] = read_implicit(target, ref.span)
                ids.setdefault(by_path[target].id, target)
                pending.append(target)
            edge = Edge(ref.kind, ref.load, ref.span, ref.written)
            old = graph.edges[path, target]["edges"] if graph.has_edge(path, target) else ()
            graph.add_edge(path, target, edges=(*old, edge))
    _refuse_cycles(graph)
    documents_sorted = MappingProxyType({p: by_path[p] for p in sorted(by_path)})
    core_order = tuple(d.path for d in documents if d.kind == "core")
    return Framework(config, documents_sorted, nx.freeze(graph), _unreached(graph, documents_sorted), core_order)


def _module_ids(documents: list[Document]) -> dict[str, str]:
    """Module ids to paths; two modules, or two commands, with one id are an error."""
    ids: dict[str, str] = {}
    commands: dict[str, str] = {}
    for doc in sorted(documents, key=lambda d: d.path):
        seen = commands if doc.kind == "command" else ids
        if doc.id in seen:
            raise TokeffcError(f"{doc.kind} id '{doc.id}' is also used by {seen[doc.id]}", Span(doc.path, 1),
                               "give one of them another 'id:' in its front matter, or narrow the globs")
        seen[doc.id] = doc.path
    return ids


def _resolve(ref: Reference, doc: Document, config: Config, ids: dict[str, str], known: dict[str, Document]) -> str:
    """The root-relative path a reference names, trying the places its kind allows, in order."""
    if ref.kind == "requires" and ref.written in ids:
        return ids[ref.written]
    inside = [c for c in _candidates(ref, doc, config) if not _escapes(c)]
    if not inside:
        raise TokeffcError(f"'{ref.written}' escapes the framework root", ref.span,
                           "reference files inside the root only")
    for candidate in inside:
        if candidate in known or (config.root / candidate).is_file():
            return candidate
    raise TokeffcError(f"{_NOUNS[ref.kind]} '{ref.written}' not found", ref.span, _HINTS[ref.kind])


def _escapes(path: str) -> bool:
    return path == ".." or path.startswith(("../", "~")) or posixpath.isabs(path)


IMPLIED_EXTENSIONS = (".md", ".yaml", ".yml", ".txt")  # tried, in order, for a name written without one
_NOUNS = {"requires": "required module", "include": "include", "import": "import", "declared": "declared dependency"}
_HINTS = {
    "requires": "name a module id or a path relative to the root",
    "include": "include paths are relative to the framework root or to the including file",
    "import": "@paths are relative to the importing file, or mapped through 'aliases' or 'search_paths'",
    "declared": "type/name is looked up beside the declaring file's folder, from the root, then in 'search_paths'",
}


def _candidates(ref: Reference, doc: Document, config: Config) -> list[str]:
    written, here = ref.written, posixpath.dirname(doc.path)
    for prefix, replacement in config.aliases:
        if written.startswith(prefix):
            return [_normal(replacement + written[len(prefix):])]
    if written.startswith("~") or posixpath.isabs(written):
        return [written]  # refused as an escape: no alias maps it into the root
    relative, rooted = _normal(posixpath.join(here, written)), _normal(written)
    paths = [relative, rooted] if ref.kind == "import" else [rooted, relative]
    if ref.kind == "declared":  # "tasks/x.md" declared in agents/a.md means ../tasks/x.md first
        paths.insert(0, _normal(posixpath.join(posixpath.dirname(here), written)))
    paths += [_normal(posixpath.join(folder, written)) for folder in config.search_paths]
    if ref.kind in ("requires", "declared") and not posixpath.splitext(written)[1]:
        paths += [p + ext for ext in IMPLIED_EXTENSIONS for p in paths]
    return list(dict.fromkeys(paths))


def _normal(path: str) -> str:
    return posixpath.normpath(path) if path else "."


def _refuse_cycles(graph: nx.DiGraph) -> None:
    if nx.is_directed_acyclic_graph(graph):
        return
    cycle = nx.find_cycle(graph)
    steps = [f"{graph.edges[u, v]['edges'][0].span}" for u, v in cycle]
    chain = " -> ".join([*steps, cycle[0][0]])
    first = graph.edges[cycle[0]]["edges"][0].span
    raise TokeffcError(f"dependency cycle: {chain}", first,
                       "break the cycle: one of these must not depend on the other")


def _unreached(graph: nx.DiGraph, documents: Mapping[str, Document]) -> tuple[str, ...]:
    roots = [p for p, d in documents.items() if d.kind in ("command", "core")]
    reached = set(roots).union(*(nx.descendants(graph, r) for r in roots)) if roots else set()
    return tuple(p for p, d in documents.items() if d.kind == "module" and p not in reached)
