"""Join rendered documents into bundle and chunk texts, counting every token exactly.

Text is written as a list of units, each owned by the document it came from (or by the
bundle's own structure: index, reference lines). The total is the exact count of the
joined text; each document's share is the exact count of what it kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import jinja2

from .graph import Framework
from .passes import dedupe_key
from .rendering import Renderer, StageTokens
from .selection import Placement, Selection, embedded_paths, in_tier
from .tokens import TokenCounter


_UNKNOWN = object()
SEGMENT_PARTS = ("core", "modules", "command")


@dataclass(frozen=True, slots=True)
class DocShare:
    """One document inside a bundle or chunk: its tokens at each stage, and what it emitted."""

    path: str
    id: str
    stages: StageTokens
    emitted: int

    @property
    def saved(self) -> dict[str, int]:
        s = self.stages
        return {"compressed": s.rendered - s.compressed, "normalised": s.compressed - s.normalised,
                "deduped": s.normalised - self.emitted}


@dataclass(frozen=True, slots=True)
class Text:
    """An emitted file's content and its exact accounting."""

    data: bytes  # the UTF-8 bytes written
    tokens: int
    docs: tuple[DocShare, ...]  # in emission order
    structure: int  # tokens of the compiler's own lines: index, references
    sha256: str

    segments: tuple[tuple[str, int, int], ...] = ()  # (part, bytes, tokens), covering the text in order

    @classmethod
    def of(cls, text: str, tokens: int, docs: tuple[DocShare, ...], structure: int,
           segments: tuple[tuple[str, int, int], ...] = ()) -> "Text":
        data = text.encode("utf-8")
        return cls(data, tokens, docs, structure, hashlib.sha256(data).hexdigest(), segments)

    @property
    def cache_key(self) -> str:
        return self.sha256[:16]


@dataclass(frozen=True, slots=True)
class Chunk:
    path: str  # the module's source path
    id: str
    tier: str
    content: Text

    @property
    def file(self) -> str:
        return f"chunks/{self.id}.{self.content.sha256[:12]}.md"


@dataclass(frozen=True, slots=True)
class Bundle:
    command: str  # the command's id
    tier: str
    selection: Selection
    content: Text
    chunks: tuple[tuple[Placement, Chunk], ...]

    @property
    def file(self) -> str:
        return f"bundles/{self.command}/{self.tier}.md"


class Assembler:
    """Builds bundle and chunk texts for one build; chunks are shared across bundles."""

    def __init__(self, framework: Framework, renderer: Renderer, counter: TokenCounter, passes: tuple[str, ...]):
        self.framework = framework
        self.renderer = renderer
        self.counter = counter
        self.dedupe = "dedupe" in passes
        self.templates = _template_environment()
        self._chunks: dict[tuple[str, str, str], Chunk] = {}
        self._dedupe_keys: dict[str, str | None] = {}  # the same blocks recur in every bundle

    def block_key(self, block: str) -> str | None:
        """The block's dedupe key, or None when dedupe is off or the block must always stay."""
        key = self._dedupe_keys.get(block, _UNKNOWN)
        if key is _UNKNOWN:
            key = self._dedupe_keys[block] = dedupe_key(block) if self.dedupe else None
        return key

    def bundle(self, selection: Selection) -> Bundle:
        command = self.framework.documents[selection.command]
        chunks = tuple((p, self.chunk(p.path, selection.tier, command.id)) for p in selection.chunks)
        writer = _Writer(self, selection.tier, command.id, {p.path for p in selection.chunks})
        for doc in self.framework.core:
            writer.emit_top_level(doc.path)
        writer.mark()
        for path in selection.sections:
            if path not in writer.seen_docs:
                writer.emit_top_level(path)
        writer.mark()
        if chunks:
            writer.separate()
            writer.structure(self.render_template("index.md.j2", chunks=[self._index_row(p, c) for p, c in chunks]))
        writer.emit_top_level(selection.command)
        return Bundle(command.id, selection.tier, selection, writer.finish(), chunks)

    def chunk(self, path: str, tier: str, command: str) -> Chunk:
        """A deferred module's own text; shared by every bundle unless its text names the command."""
        doc, documents = self.framework.documents[path], self.framework.documents
        inside = embedded_paths(self.framework, self.renderer, path, tier, command)
        key = (path, tier, command if any("command" in documents[p].template.variables for p in inside) else "")
        if key not in self._chunks:
            writer = _Writer(self, tier, command, set())
            writer.emit_doc(path)
            self._chunks[key] = Chunk(path, doc.id, tier, writer.finish())
        return self._chunks[key]

    def render_template(self, name: str, **values) -> str:
        return self.templates.get_template(name).render(**values)

    def _index_row(self, placement: Placement, chunk: Chunk) -> dict:
        doc = self.framework.documents[placement.path]
        return {"id": doc.id, "load": placement.load, "when": doc.when, "tokens": chunk.content.tokens,
                "cache_key": chunk.content.cache_key}


class _Writer:
    """Scratch state for one text: units in order, documents and blocks already written."""

    def __init__(self, assembler: Assembler, tier: str, command: str, deferred: set[str]):
        self.a = assembler
        self.tier, self.command, self.deferred = tier, command, deferred
        self.units: list[str] = []
        self.kept: dict[str, list[str]] = {}
        self.seen_docs: set[str] = set()
        self.seen_blocks: set[str] = set()
        self.marks: list[int] = []  # unit indexes where the core and the shared modules end

    def mark(self) -> None:
        """End a segment here (core, then shared modules); the rest is the command's part."""
        self.separate()
        self.marks.append(len(self.units))

    def emit_top_level(self, path: str) -> None:
        self.separate()
        self.emit_doc(path)

    def separate(self) -> None:
        """A blank line between top-level documents; the first starts the text."""
        if self.units and not "".join(self.units[-2:]).endswith("\n\n"):
            self.structure("\n")

    def emit_doc(self, path: str) -> None:
        self.seen_docs.add(path)
        kept = self.kept.setdefault(path, [])
        for piece in self.a.renderer.render(path, self.tier, self.command).pieces:
            if piece.target is not None:
                self.emit_reference(piece.target)
                continue
            self._emit_blocks(piece.blocks, kept)
        if self.units and not self.units[-1].endswith("\n"):
            self.structure("\n")  # whatever follows starts on a line of its own

    def _emit_blocks(self, blocks: tuple[str, ...], kept: list[str]) -> None:
        """Append the blocks not already in this text (dedupe); the hottest loop of a build."""
        key_of, seen, units = self.a.block_key, self.seen_blocks, self.units
        for block in blocks:
            key = key_of(block)
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            kept.append(block)
            units.append(block)

    def emit_reference(self, target: str) -> None:
        framework = self.a.framework
        if not in_tier(framework, target, self.tier):
            return  # pruned for this tier: the include leaves no trace
        doc = framework.documents[target]
        if target in self.seen_docs:
            self.structure(self.a.render_template("reference.md.j2", id=doc.id))
        elif target in self.deferred or doc.load != "immediate":
            self.structure(self.a.render_template("deferred.md.j2", id=doc.id, load=doc.load, when=doc.when))
        else:
            self.emit_doc(target)

    def structure(self, text: str) -> None:
        self.units.append(text)

    def _share(self, path: str, kept: list[str]) -> DocShare:
        rendered = self.a.renderer.render(path, self.tier, self.command)
        everything = sum(len(p.blocks) for p in rendered.pieces)
        # Nothing deduped away: what it emitted is its normalised text, already counted.
        emitted = rendered.tokens.normalised if len(kept) == everything else self.a.counter.count_units(kept)
        return DocShare(path, self.a.framework.documents[path].id, rendered.tokens, emitted)

    def finish(self) -> Text:
        counter = self.a.counter
        docs = tuple(self._share(path, blocks) for path, blocks in self.kept.items())
        total = counter.count_units(self.units)
        bounds = [0, *self.marks, len(self.units)] if self.marks else []
        segments = tuple((part, "".join(self.units[start:end]), counter.count_units(self.units[start:end]))
                         for part, start, end in zip(SEGMENT_PARTS, bounds, bounds[1:]))
        return Text.of("".join(self.units), total, docs, total - sum(d.emitted for d in docs),
                       tuple((part, len(text.encode("utf-8")), tokens) for part, text, tokens in segments))


def _template_environment() -> jinja2.Environment:
    # The compiler's own templates ship inside the package and are trusted.
    folder = resources.files("tokeffc.templates")
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
        undefined=jinja2.StrictUndefined,
    )
