"""Render each document per tier: Jinja2, then the text passes, then pieces the emitter joins.

A rendered document is a sequence of pieces: runs of text (cut into blocks) and references
to other documents, standing where an include or an ``@path`` line stood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .graph import Framework
from .markdown import prose_and_code, split_blocks
from .parse import IMPORT_LINES, Document, source_units
from .passes import compress_checkpoints, drop_reasoning_sections, normalise_text
from .templating import INCLUDE_SENTINEL, render_body
from .tokens import TokenCounter

_REF_LINE = re.compile(r"\x00([IM])([^\x00]*)\x00\n?")
_KIND_OF = {"I": "include", "M": "import"}


@dataclass(frozen=True, slots=True)
class Piece:
    blocks: tuple[str, ...] = ()  # text, cut into blocks
    target: str | None = None  # or a reference to this document's path


@dataclass(frozen=True, slots=True)
class StageTokens:
    """Tokens of a document's own text (references excluded) after each stage."""

    written: int  # the file as written, front matter included
    rendered: int  # front matter gone, Jinja2 rendered for the tier
    compressed: int  # after checkpoints
    normalised: int  # after normalise


@dataclass(frozen=True, slots=True)
class RenderedDoc:
    path: str
    pieces: tuple[Piece, ...]
    tokens: StageTokens


class Renderer:
    """Renders documents on request, caching per (path, tier) or (path, tier, command).

    Scratch state for one build: created by the pipeline, dropped with it.
    """

    def __init__(self, framework: Framework, counter: TokenCounter, passes: tuple[str, ...]):
        self.framework = framework
        self.counter = counter
        self.passes = passes
        self._cache: dict[tuple, RenderedDoc] = {}
        self._passed: dict[tuple[str, str, bool], RenderedDoc] = {}  # same text, same passes: same result
        self._written: dict[str, int] = {}
        self._targets = {
            path: {(e.kind, e.written): target for target, edges in framework.edges_from(path) for e in edges}
            for path in framework.documents
        }

    def render(self, path: str, tier: str, command: str) -> RenderedDoc:
        doc = self.framework.documents[path]
        key = (path, tier, command if "command" in doc.template.variables else None)
        if key not in self._cache:
            self._cache[key] = self._render(doc, tier, command)
        return self._cache[key]

    def written_tokens(self, doc: Document) -> int:
        if doc.path not in self._written:
            self._written[doc.path] = self.counter.count_units(source_units(doc.path, doc.text))
        return self._written[doc.path]

    def written_counts(self) -> dict[str, int]:
        """Every document's tokens as written (front matter included), by path."""
        return {path: self.written_tokens(doc) for path, doc in self.framework.documents.items()}

    def _render(self, doc: Document, tier: str, command: str) -> RenderedDoc:
        config = self.framework.config
        context = {"tier": tier, "command": command, "framework": config.name, "version": config.version}
        rendered = render_body(doc.template, context)
        if doc.references:
            rendered = _mark_imports(rendered)
        compress = "checkpoints" in self.passes and config.tier(tier).compress
        key = (doc.path, rendered, compress)
        if key not in self._passed:
            self._passed[key] = self._apply_passes(doc, rendered, compress)
        return self._passed[key]

    def _apply_passes(self, doc: Document, rendered: str, compress: bool) -> RenderedDoc:
        headings = self.framework.config.reasoning_headings
        compressed = drop_reasoning_sections(compress_checkpoints(rendered), headings) if compress else rendered
        normalised = normalise_text(compressed) if "normalise" in self.passes else compressed
        pieces = tuple(self._pieces(doc.path, normalised))
        # The pieces' blocks are the normalised own text, cut exactly: count them, not the text again.
        normalised_tokens = self.counter.count_units([b for piece in pieces for b in piece.blocks])
        compressed_tokens = normalised_tokens if normalised is compressed else self._own_tokens(compressed)
        tokens = StageTokens(
            written=self.written_tokens(doc),
            rendered=compressed_tokens if compressed is rendered else self._own_tokens(rendered),
            compressed=compressed_tokens,
            normalised=normalised_tokens,
        )
        return RenderedDoc(doc.path, pieces, tokens)

    def _own_tokens(self, text: str) -> int:
        if "\x00" in text:
            text = _REF_LINE.sub("", text)
        return self.counter.count_units(split_blocks(text))

    def _pieces(self, path: str, text: str):
        last = 0
        for match in _REF_LINE.finditer(text):
            if match.start() > last:
                yield Piece(blocks=tuple(split_blocks(text[last:match.start()])))
            target = self._targets[path].get((_KIND_OF[match.group(1)], match.group(2)))
            # An @line that only appears after rendering was never resolved: keep it as text.
            yield Piece(target=target) if target else Piece(blocks=(f"@{match.group(2)}\n",))
            last = match.end()
        if last < len(text):
            yield Piece(blocks=tuple(split_blocks(text[last:])))


def _mark_imports(text: str) -> str:
    """Turn include sentinels and ``@path`` lines (outside fenced code) into reference lines."""
    if "\x00I" in text:
        text = INCLUDE_SENTINEL.sub(lambda m: f"\x00I{m.group(1)}\x00\n", text)
    if "@" not in text:
        return text
    return "".join(chunk if is_code else IMPORT_LINES.sub(lambda m: f"\x00M{m.group(1)}\x00", chunk)
                   for is_code, chunk in prose_and_code(text))
