"""``@`` mentions that must stop being imports once tokeffc has placed the file they name.

Claude Code attaches the file an ``@path`` names wherever the mention stands (line start, list item,
mid-sentence; never in code). tokeffc puts that file's text in the bundle (or a one-line pointer to
it, or a line saying the tier left it out), so in a tree for Claude Code each mention that names a
framework file loses its ``@``: the path stays, as words. A mention of a run-time file (``external``)
or of nothing keeps it: the host still attaches it, and tokeffc did not.
"""

from __future__ import annotations

from dataclasses import replace

from ..graph import Framework
from ..references import find_mentions
from ..rendering import Piece, RenderedDoc, Renderings
from ..sources import DocPath
from ..tokens import TokenCounter

IMPORT_KINDS = ("import", "attach")
STAGE = "claude-code imports"  # the step after the passes: tokens a document has once its @ are gone
_REF = "\x00R\x00\n"  # a reference stands here (as while rendering): mentions never span it


def without_imports(framework: Framework, renderings: Renderings, counter: TokenCounter) -> Renderings:
    """Every rendered document with the ``@`` taken off each mention that tokeffc resolved to a file."""
    done: dict[int, RenderedDoc] = {}
    docs = {}
    for key, rendered in renderings.docs.items():
        if id(rendered) not in done:
            done[id(rendered)] = _rewritten(rendered, _resolved(framework, key[0]), counter)
        docs[key] = done[id(rendered)]
    return Renderings(docs, renderings.written)


def _resolved(framework: Framework, path: DocPath) -> frozenset[str]:
    if framework.documents[path].format not in ("markdown", "text"):
        return frozenset()
    return frozenset(e.written for _, edges in framework.edges_from(path) for e in edges if e.kind in IMPORT_KINDS)


def _rewritten(rendered: RenderedDoc, resolved: frozenset[str], counter: TokenCounter) -> RenderedDoc:
    if not resolved:
        return rendered
    text, where = _joined(rendered.pieces)
    cuts = sorted(m.start for m in find_mentions(text) if m.written in resolved)
    if not cuts:
        return rendered
    pieces = [list(p.blocks) for p in rendered.pieces]
    for cut in reversed(cuts):
        piece, block, offset = _locate(where, cut)
        old = pieces[piece][block]
        pieces[piece][block] = old[:offset] + old[offset + 1:]
    new = tuple(replace(p, blocks=tuple(b)) if p.ref is None else p for p, b in zip(rendered.pieces, pieces))
    tokens = counter.count_units([b for p in new for b in p.blocks])
    return RenderedDoc(rendered.path, new, (*rendered.stages, (STAGE, tokens)))


def _joined(pieces: tuple[Piece, ...]) -> tuple[str, list[tuple[int, int, int]]]:
    """The body as the renderer scanned it (front matter kept as text left out), and where each block starts."""
    parts, where, offset = [], [], 0
    for index, piece in enumerate(pieces):
        if piece.protected:
            continue
        if piece.ref is not None:
            parts.append(_REF)
            offset += len(_REF)
            continue
        for number, block in enumerate(piece.blocks):
            where.append((offset, index, number))
            parts.append(block)
            offset += len(block)
    return "".join(parts), where


def _locate(where: list[tuple[int, int, int]], position: int) -> tuple[int, int, int]:
    """(piece, block, offset in the block) of a position in the joined text."""
    start, piece, block = max(w for w in where if w[0] <= position)
    return piece, block, position - start
