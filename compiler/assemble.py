"""Join rendered documents into bundle and chunk texts, counting every token exactly.

Text is written as a list of units, each owned by the document it came from or by the bundle's
own structure (the index, reference, pointer and left-out lines, blank lines between files). The
total is the exact count of the joined text; each document's share is the exact count of what it
kept. ``dedupe`` runs here: a paragraph that already stands in the bundle, from another file, is
replaced by a one-line pointer to it.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources

import jinja2

from .graph import Framework
from .parse import DocId
from .passes import dedupe_key, heading_level
from .rendering import Ref, Renderings
from .selection import INLINE_KINDS, Placement, Selection, chunk_children, in_tier
from .sources import DocPath
from .tokens import TokenCounter, boundary_is_safe

SEGMENT_PARTS = ("core", "modules", "command")
POINTER_WORDS = 8
Locator = Callable[["Chunk"], str]  # how a model fetches a chunk: a tool call's id, or a file path


@dataclass(frozen=True, slots=True)
class DocShare:
    """One document inside a bundle or chunk: its tokens after each step, and what it emitted."""

    path: DocPath
    id: DocId
    stages: tuple[tuple[str, int], ...]  # ("rendered", n), then one per document pass that ran
    emitted: int

    @property
    def rendered(self) -> int:
        return self.stages[0][1]

    @property
    def saved(self) -> dict[str, int]:
        """Tokens each pass removed from this document (dedupe: what was replaced by pointers)."""
        saved = {name: before - after for (_, before), (name, after) in zip(self.stages, self.stages[1:])}
        saved["dedupe"] = self.stages[-1][1] - self.emitted
        return saved


@dataclass(frozen=True, slots=True)
class Text:
    """An emitted file's content and its exact accounting."""

    data: bytes  # the UTF-8 bytes written
    tokens: int
    docs: tuple[DocShare, ...]  # in emission order
    structure: int  # tokens of the compiler's own lines
    sha256: str
    segments: tuple[tuple[str, int, int], ...] = ()  # (part, bytes, tokens), covering the text in order

    @property
    def cache_key(self) -> str:
        return self.sha256[:16]


@dataclass(frozen=True, slots=True)
class Chunk:
    path: DocPath  # the module's source path
    id: DocId
    tier: str
    content: Text

    @property
    def file(self) -> str:
        extension = posixpath.splitext(self.path)[1] or ".md"
        return f"chunks/{self.id}.{self.content.sha256[:12]}{extension}"


@dataclass(frozen=True, slots=True)
class Bundle:
    selection: Selection
    content: Text
    chunks: tuple[tuple[Placement, Chunk], ...]

    @property
    def entry(self) -> DocId:
        return self.selection.entry.id

    @property
    def tier(self) -> str:
        return self.selection.tier

    @property
    def file(self) -> str:
        return f"bundles/{self.entry}/{self.tier}.md"


def tool_locator(chunk: Chunk) -> str:
    return chunk.id


def short_names(framework: Framework) -> dict[DocPath, str]:
    """What a model reads a document's name as: the shortest trailing part of its id (whole path parts)
    that no other document's id ends with; the runtime's ``load_module`` accepts it as well as the id."""
    suffixes = Counter(suffix for doc in framework.documents.values() for suffix in id_suffixes(doc.id))
    return {path: next(s for s in id_suffixes(doc.id) if suffixes[s] == 1 or s == doc.id)
            for path, doc in framework.documents.items()}


def id_suffixes(doc_id: str) -> list[str]:
    """``a/b/c`` -> ``c``, ``b/c``, ``a/b/c``."""
    parts = doc_id.split("/")
    return ["/".join(parts[i:]) for i in range(len(parts) - 1, -1, -1)]


class Assembler:
    """Builds bundle and chunk texts for one build; chunks are shared across bundles."""

    def __init__(self, framework: Framework, renderings: Renderings, counter: TokenCounter,
                 passes: tuple[str, ...], locator: Locator = tool_locator, how: str = "tool"):
        self.framework, self.renderings, self.counter = framework, renderings, counter
        self.dedupe = "dedupe" in passes
        self.locator, self.how = locator, how
        self.names = short_names(framework)
        self.templates = _template_environment()
        self._chunks: dict[tuple[DocPath, str, str], Chunk] = {}
        self._texts: dict[tuple, Chunk] = {}
        self._bundles: dict[tuple, Bundle] = {}
        self._units: dict[int, tuple[tuple[str, ...], list[tuple[int, str | None]]]] = {}
        self._entry_dependent: dict[DocPath, bool] = {}
        self._lines: dict[tuple, str] = {}

    def bundle(self, selection: Selection) -> Bundle:
        """The bundle's text; a selection another tier already assembled from the same renderings reuses it."""
        key = self._bundle_key(selection)
        if key not in self._bundles:
            self._bundles[key] = self._assemble(selection)
        done = self._bundles[key]
        return Bundle(selection, done.content, tuple((p, c) for (_, c), p in zip(done.chunks, selection.chunks)))

    def _bundle_key(self, selection: Selection) -> tuple:
        paths = sorted(selection.immediate | self._embedded_closure(tuple(p.path for p in selection.chunks)))
        rendered = tuple(id(self.renderings.get(self.framework, p, selection.tier, selection.entry.id)) for p in paths)
        tier = selection.tier if selection.dropped else ""  # a left-out line names the tier
        return (selection.entry, selection.main, selection.sections, selection.chunks, selection.dropped, tier,
                rendered)

    def _assemble(self, selection: Selection) -> Bundle:
        chunks = tuple((p, self.chunk(p.path, selection)) for p in selection.chunks)
        writer = _Writer(self, selection)
        for path in selection.main:
            writer.emit_top_level(path)
        writer.mark()
        for path in selection.sections:
            if path not in writer.seen_docs:
                writer.emit_top_level(path)
        for dropped in selection.dropped:
            if not dropped.inline:
                writer.emit_dropped(dropped.path)
        writer.mark()
        listed = [(p, c) for p, c in chunks if p.via in selection.immediate or p.via == p.path]
        writer.index([(p, c, self._module_text(p.path, selection).content.tokens) for p, c in listed])
        if selection.entry.path:
            writer.emit_top_level(selection.entry.path)
        return Bundle(selection, writer.finish(), chunks)

    def chunk(self, path: DocPath, selection: Selection) -> Chunk:
        """A deferred module's own text, then what it offers in turn; shared by every bundle unless its
        text names the entry."""
        children = chunk_children(self.framework, self.renderings, selection.entry, selection.tier, path)
        per_entry = self._names_entry(path) or any(self._names_entry(p.path) for p in children)
        key = (path, selection.tier, selection.entry.id if per_entry else "")
        if key not in self._chunks:
            writer = self._chunk_writer(path, selection)
            texts = [(p, self._module_text(p.path, selection)) for p in children]
            writer.index([(p, text, text.content.tokens) for p, text in texts])
            self._chunks[key] = Chunk(path, self.framework.documents[path].id, selection.tier, writer.finish())
        return self._chunks[key]

    def _embedded_closure(self, paths: tuple[DocPath, ...]) -> set[DocPath]:
        """``paths`` and every document any of them could embed (all inline references, every tier)."""
        seen, stack = set(), list(paths)
        while stack:
            path = stack.pop()
            if path not in seen:
                seen.add(path)
                stack += [t for t, edges in self.framework.edges_from(path) if any(e.kind in INLINE_KINDS
                                                                                  for e in edges)]
        return seen

    def _names_entry(self, path: DocPath) -> bool:
        """Whether the text of ``path`` or of anything it embeds reads ``tokeffc.command``."""
        if path not in self._entry_dependent:
            self._entry_dependent[path] = False  # a cycle of includes is refused earlier; this guards the walk
            embedded = [t for t, edges in self.framework.edges_from(path) if any(e.kind in INLINE_KINDS for e in edges)]
            self._entry_dependent[path] = "command" in self.framework.documents[path].template.variables or any(
                self._names_entry(t) for t in embedded)
        return self._entry_dependent[path]

    def dedupe_units(self, blocks: tuple[str, ...]) -> list[tuple[int, str | None]]:
        """Per block, the dedupe unit starting there (blocks it spans, key): the same blocks recur in
        every bundle, so they are cut once per build."""
        found = self._units.get(id(blocks))
        if found is None or found[0] is not blocks:
            units = [(span, dedupe_key(blocks[index:index + span])) for index, span in enumerate(_unit_spans(blocks))]
            found = self._units[id(blocks)] = (blocks, units)
        return found[1]

    def _module_text(self, path: DocPath, selection: Selection) -> Chunk:
        """A module's own text as its chunk begins (without what it offers in turn)."""
        key = (path, selection.tier, selection.entry.id, "text")
        if key not in self._texts:
            text = self._chunk_writer(path, selection).finish()
            self._texts[key] = Chunk(path, self.framework.documents[path].id, selection.tier, text)
        return self._texts[key]

    def _chunk_writer(self, path: DocPath, selection: Selection) -> _Writer:
        alone = Selection(replace(selection.entry, path=None), selection.tier, (), (), frozenset(), (), ())
        writer = _Writer(self, alone)
        writer.emit_doc(path)
        return writer

    def line(self, name: str, **values) -> str:
        """One of the compiler's own lines, from the templates shipped in the package."""
        key = (name, repr(sorted(values.items())))
        if key not in self._lines:
            self._lines[key] = self.templates.get_template(name).render(**values)
        return self._lines[key]

    def row(self, placement: Placement, chunk: Chunk, tokens: int) -> dict:
        """One index line's values; ``tokens`` is the module's own text (its chunk, before what it offers)."""
        doc = self.framework.documents[placement.path]
        locator = self.names[placement.path] if self.locator is tool_locator else self.locator(chunk)
        return {"id": doc.id, "locator": locator, "load": placement.load, "when": doc.when,
                "tokens": tokens, "soft": placement.soft, "role": doc.role}


class _Writer:
    """Scratch state for one text: units in order, documents and paragraphs already written."""

    def __init__(self, assembler: Assembler, selection: Selection):
        self.a, self.selection = assembler, selection
        self.tier, self.entry = selection.tier, selection.entry.id
        self.units: list[str] = []
        self.kept: dict[DocPath, list[str]] = {}
        self.seen_docs: set[DocPath] = set()
        self.paragraphs: dict[str, DocPath] = {}  # paragraph -> the file it first came from
        self.marks: list[int] = []

    def index(self, listed: list[tuple[Placement, Chunk, int]]) -> None:
        """The list of modules on request, with what each is, when to load it, how, and its size."""
        if listed:
            self.separate()
            rows = [self.a.row(p, c, tokens) for p, c, tokens in listed]
            self.structure(self.a.line("index.md.j2", how=self.a.how, rows=rows))

    def mark(self) -> None:
        """End a segment here (core, then shared modules); the rest is the entry's part."""
        self.separate()
        self.marks.append(len(self.units))

    def emit_top_level(self, path: DocPath) -> None:
        self.separate()
        self.emit_doc(path)

    def separate(self) -> None:
        """A blank line between top-level documents; the first starts the text."""
        if self.units and not "".join(self.units[-2:]).endswith("\n\n"):
            self.structure("\n")

    def emit_doc(self, path: DocPath) -> None:
        self.seen_docs.add(path)
        kept = self.kept.setdefault(path, [])
        dedupe = self.a.dedupe and self.a.framework.documents[path].format == "markdown"
        for piece in self.a.renderings.get(self.a.framework, path, self.tier, self.entry).pieces:
            if piece.ref is not None:
                self.emit_reference(piece.ref)
            else:
                self._emit_blocks(path, piece.blocks, kept, dedupe and not piece.protected)
        if self.units and not self.units[-1].endswith("\n"):
            self.structure("\n")  # whatever follows starts on a line of its own

    def _emit_blocks(self, path: DocPath, blocks: tuple[str, ...], kept: list[str], dedupe: bool) -> None:
        if not dedupe:
            kept += blocks
            self.units += blocks
            return
        keys, index = self.a.dedupe_units(blocks), 0
        while index < len(blocks):
            span, key = keys[index]
            if key is not None:
                first = self.paragraphs.setdefault(key, path)
                if first != path and self._pointer_pays(blocks[index:index + span], first, key):
                    index += span
                    continue
            kept.append(blocks[index])  # a section that stays is looked into: its parts may repeat
            self.units.append(blocks[index])
            index += 1

    def _pointer_pays(self, unit: tuple[str, ...], first: DocPath, key: str) -> bool:
        """Replace a repeated paragraph or section by a pointer to where it stands, when that is shorter."""
        words = " ".join(key.split()[:POINTER_WORDS])
        kind = "section" if heading_level(unit[0]) else "paragraph"
        pointer = self.a.line("pointer.md.j2", id=self.a.names[first], words=words, kind=kind)
        tail = unit[-1][len(unit[-1].rstrip("\n")):] or "\n"
        line = pointer.rstrip("\n") + tail
        if self.a.counter.count(line) >= self.a.counter.count_units(list(unit)):
            return False
        self.structure(line)
        return True

    def emit_reference(self, ref: Ref) -> None:
        framework, target = self.a.framework, ref.target
        doc = framework.documents[target]
        if not in_tier(framework, target, self.tier):
            self.emit_dropped(target)
        elif target in self.seen_docs:
            self.structure(self.a.line("reference.md.j2", id=self.a.names[target]))
        elif not self._loaded_here(target, doc.load):
            self.structure(self.a.line("deferred.md.j2", id=self.a.names[target], how=self.a.how))
        else:
            self.emit_doc(target)

    def _loaded_here(self, target: DocPath, load: str) -> bool:
        """In a bundle, what selection made immediate (a module a command names is inlined where the core
        imports it); in a chunk, what loads immediately by itself."""
        if self.selection.main or self.selection.entry.path:
            return target in self.selection.immediate
        return load == "immediate"

    def emit_dropped(self, path: DocPath) -> None:
        doc = self.a.framework.documents[path]
        tokens = self.a.renderings.written[path]
        self.structure(self.a.line("dropped.md.j2", id=self.a.names[path], tokens=tokens, tier=self.tier,
                                   from_tier=doc.tier))

    def structure(self, text: str) -> None:
        self.units.append(text)

    def finish(self) -> Text:
        """The text, with every count it needs from one :meth:`TokenCounter.count_each`."""
        bounds = [0, *self.marks, len(self.units)] if self.marks else []
        parts = [(part, self.units[start:end]) for part, start, end in zip(SEGMENT_PARTS, bounds, bounds[1:])]
        texts = ["".join(units) for _, units in parts]
        shown = [t for t in texts if t]
        # Where no pre-token crosses a mark, the whole is the sum of its segments: counted once, not twice.
        split_safely = bool(parts) and all(boundary_is_safe(left, right) for left, right in zip(shown, shown[1:]))
        rendered = {path: self.a.renderings.get(self.a.framework, path, self.tier, self.entry) for path in self.kept}
        partly = [path for path, kept in self.kept.items()  # a document some of whose blocks were left out
                  if len(kept) != sum(len(piece.blocks) for piece in rendered[path].pieces)]
        counts = iter(self.a.counter.count_each([units for _, units in parts] + [self.kept[p] for p in partly]
                                                + ([] if split_safely else [self.units])))
        segments = [(part, text, next(counts)) for (part, _), text in zip(parts, texts)]
        emitted = {path: next(counts) for path in partly}
        total = sum(n for _, _, n in segments) if split_safely else next(counts)
        docs = tuple(DocShare(path, self.a.framework.documents[path].id, r.stages, emitted.get(path, r.tokens))
                     for path, r in rendered.items())
        data = "".join(self.units).encode("utf-8")
        return Text(data, total, docs, total - sum(d.emitted for d in docs), hashlib.sha256(data).hexdigest(),
                    tuple((part, len(t.encode("utf-8")), tokens) for part, t, tokens in segments))


def _unit_spans(blocks: tuple[str, ...]) -> list[int]:
    """How many blocks from each one make one dedupe unit: a whole section from its heading (up to the next
    heading of its level or above), else one block."""
    levels = [heading_level(block) for block in blocks]
    spans = [1] * len(blocks)
    open_sections: list[int] = []  # indexes of headings whose section has not ended, levels rising
    for index, level in enumerate(levels):
        if level:
            while open_sections and levels[open_sections[-1]] >= level:
                ended = open_sections.pop()
                spans[ended] = index - ended
            open_sections.append(index)
    for started in open_sections:
        spans[started] = len(blocks) - started
    return spans


def _template_environment() -> jinja2.Environment:
    # The compiler's own templates ship inside the package and are trusted.
    folder = resources.files("tokeffc.templates")
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
        undefined=jinja2.StrictUndefined,
    )
