"""Render every document for every tier: tokeffc's tags, references marked, then the document passes.

A rendered document is a sequence of pieces: runs of its own text (cut into blocks) and references
to other documents, standing where an include or a lone ``@path`` line stood, or just after the
paragraph that mentions an ``@path`` mid-sentence. Each is counted after every step, so savings
per pass come from these counts and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .entries import Entry
from .graph import Framework
from .markdown import split_blocks
from .parse import DocId, Document, source_units
from .passes import PassSettings, run_document_passes
from .references import attach_point, find_mentions
from .sources import DocPath
from .templating import INCLUDE_SENTINEL, TemplateContext, render_body
from .tokens import TokenCounter

_REF_LINE = re.compile(r"\x00R(\d+)\x00\n")


@dataclass(frozen=True, slots=True)
class Ref:
    target: DocPath
    kind: str  # include | import | attach


@dataclass(frozen=True, slots=True)
class Piece:
    blocks: tuple[str, ...] = ()  # the document's own text, cut into blocks
    ref: Ref | None = None  # or a reference standing here
    protected: bool = False  # front matter kept as text: never deduplicated


@dataclass(frozen=True, slots=True)
class RenderedDoc:
    path: DocPath
    pieces: tuple[Piece, ...]
    stages: tuple[tuple[str, int], ...]  # ("rendered", n), then (pass name, n) for each pass that ran

    @property
    def tokens(self) -> int:
        return self.stages[-1][1]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(p.ref for p in self.pieces if p.ref is not None)


RenderKey = tuple[DocPath, str, str]  # (path, tier, entry id or "" when the text does not name it)


@dataclass(frozen=True, slots=True)
class Renderings:
    """Every document rendered for every tier (and entry, where its text names the entry)."""

    docs: Mapping[RenderKey, RenderedDoc]
    written: Mapping[DocPath, int]  # tokens of each file as written, front matter included

    def get(self, framework: Framework, path: DocPath, tier: str, entry: DocId) -> RenderedDoc:
        doc = framework.documents[path]
        return self.docs[(path, tier, entry if "command" in doc.template.variables else "")]


def template_context(framework: Framework, tier: str, entry: DocId) -> TemplateContext:
    """The one place the values templates see are built: ``tokeffc.command`` is the entry's id."""
    config = framework.config
    return TemplateContext(tier=tier, command=entry, framework=config.name, version=config.version)


def render_all(framework: Framework, entries: tuple[Entry, ...], counter: TokenCounter,
               passes: tuple[str, ...]) -> Renderings:
    """Every text first, then every count: the texts are made while the counter's tokenizer may still be
    priming the sources beside them (see :meth:`TokenCounter.prime`); only counting waits for it."""
    renderer = _Renderer(framework, passes)
    drafts: dict[RenderKey, _Draft] = {}
    for tier in framework.config.tier_names:
        for path, doc in framework.documents.items():
            names = [e.id for e in entries] if "command" in doc.template.variables else [DocId("")]
            for name in names:
                drafts[(path, tier, name)] = renderer.render(doc, tier, name)
    unique = {id(draft): draft for draft in drafts.values()}  # tiers that rendered a document alike share one
    to_count = {key: draft.to_count() for key, draft in unique.items()}
    sources = [source_units(path, doc.text) for path, doc in framework.documents.items()]
    stages = [units for wanted in to_count.values() for units in wanted if units is not None]
    totals = iter(counter.count_each(sources + stages))  # one request for every text not known yet
    written = {path: next(totals) for path in framework.documents}
    counted = {key: draft.counted([None if units is None else next(totals) for units in to_count[key]])
               for key, draft in unique.items()}
    return Renderings({key: counted[id(draft)] for key, draft in drafts.items()}, written)


@dataclass(frozen=True, slots=True)
class _Draft:
    """A document rendered, not yet counted: its text after each step, and its final pieces."""

    path: DocPath
    stages: tuple[tuple[str, str], ...]  # ("rendered", text), then (pass name, text) for each pass that ran
    pieces: tuple[Piece, ...]
    head: str  # front matter kept as text, or ""

    def to_count(self) -> list[list[str] | None]:
        """For each stage, the units of its text as counted; None where the pass changed nothing."""
        wanted: list[list[str] | None] = []
        for index, (_, text) in enumerate(self.stages):
            if index and text == self.stages[index - 1][1]:
                wanted.append(None)
            elif index == len(self.stages) - 1:
                wanted.append([b for piece in self.pieces for b in piece.blocks])
            else:
                wanted.append([self.head, *_own_blocks(text)])  # "" counts as nothing
        return wanted

    def counted(self, totals: list[int | None]) -> RenderedDoc:
        """The document with each stage's count (``totals`` as :meth:`to_count` asked: None, the count stands)."""
        counts: list[tuple[str, int]] = []
        for (name, _), total in zip(self.stages, totals):
            counts.append((name, counts[-1][1] if total is None else total))
        return RenderedDoc(self.path, self.pieces, tuple(counts))


class _Renderer:
    """Scratch state for render_all: the same text with the same passes renders once."""

    def __init__(self, framework: Framework, passes: tuple[str, ...]):
        self.framework, self.passes = framework, passes
        self._done: dict[tuple, _Draft] = {}
        self._targets = {path: {(e.kind, e.written): target for target, edges in framework.edges_from(path)
                                for e in edges} for path in framework.documents}

    def render(self, doc: Document, tier: str, entry: DocId) -> _Draft:
        config = self.framework.config
        body = render_body(doc.template, template_context(self.framework, tier, entry))
        compress = config.tier(tier).compress and compressible(body, config.reasoning_headings)
        settings = PassSettings(compress, config.reasoning_headings)
        key = (doc.path, body, settings.compress)  # so tiers that render a document alike share one result
        if key not in self._done:
            self._done[key] = self._render(doc, body, settings)
        return self._done[key]

    def _render(self, doc: Document, body: str, settings: PassSettings) -> _Draft:
        marked, refs = self._mark_references(doc, body)
        stages = [("rendered", marked)] + run_document_passes(marked, doc.format, self.passes, settings)
        head = (Piece(blocks=(doc.kept_head,), protected=True),) if doc.kept_head else ()
        pieces = head + tuple(_pieces(stages[-1][1], refs))
        return _Draft(doc.path, tuple(stages), pieces, doc.kept_head)

    def _mark_references(self, doc: Document, body: str) -> tuple[str, list[Ref]]:
        """Includes and ``@`` mentions that resolved become reference lines (``\\x00R<n>\\x00``)."""
        refs: list[Ref] = []
        targets = self._targets[doc.path]

        def mark(kind: str, written: str) -> str | None:
            target = targets.get((kind, written))
            if target is None:
                return None
            refs.append(Ref(target, kind))
            return f"\x00R{len(refs) - 1}\x00\n"

        if "\x00I" in body:  # an include that names nothing (on_missing: warn) stays as written
            body = INCLUDE_SENTINEL.sub(
                lambda m: (mark("include", m.group(1)) or f'{{% include "{m.group(1)}" %}}\n')[:-1], body)
        if "@" in body and doc.format in ("markdown", "text"):
            body = _mark_mentions(body, mark)
        return body, refs


def compressible(body: str, headings: tuple[str, ...]) -> bool:
    """Whether compressing could change this text (a checkpoint, or a reasoning heading's words)."""
    lowered = body.lower() if headings else ""
    return "<checkpoint" in body or any(h.lstrip("#").strip().lower() in lowered for h in headings)


def _mark_mentions(body: str, mark) -> str:
    """A lone ``@path`` line is replaced by its reference; a mention in a sentence or list item stays
    as written, and its reference stands after the paragraph or list that holds it."""
    inserts: list[tuple[int, int, str]] = []  # (start, end, replacement)
    for mention in find_mentions(body):
        if mention.alone:
            line = mark("import", mention.written)
            if line:
                start = body.rfind("\n", 0, mention.start) + 1
                end = body.find("\n", mention.end)
                inserts.append((start, len(body) if end < 0 else end + 1, line))
        else:
            line = mark("attach", mention.written)
            if line:
                point = attach_point(body, mention.end)
                inserts.append((point, point, _own_paragraph(body, point) + line))
    for start, end, text in sorted(inserts, key=lambda i: (i[0], i[1]), reverse=True):
        body = body[:start] + text + body[end:]
    return body


def _own_paragraph(body: str, point: int) -> str:
    """What goes before a reference line at ``point`` so that the text it stands for is a block of its own,
    never a continuation of the paragraph before it (a blank line before; the blank line at ``point``, or the
    end of the text, after)."""
    if point == 0:
        return ""
    return "\n" if body[point - 1] == "\n" else "\n\n"


def _pieces(text: str, refs: list[Ref]):
    last = 0
    for match in _REF_LINE.finditer(text):
        if match.start() > last:
            yield Piece(blocks=tuple(split_blocks(text[last:match.start()])))
        yield Piece(ref=refs[int(match.group(1))])
        last = match.end()
    if last < len(text):
        yield Piece(blocks=tuple(split_blocks(text[last:])))


def _own_blocks(text: str) -> tuple[str, ...]:
    if "\x00" in text:
        text = _REF_LINE.sub("", text)
    return split_blocks(text)
