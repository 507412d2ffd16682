"""Optimisation passes on prompt text. None of them touches fenced code.

* normalise (lossless for the model): line endings, trailing spaces, blank-line runs, HTML comments;
* checkpoints (lossy by design): keep only the conclusion of ``<checkpoint>`` blocks, and drop
  sections under configured reasoning headings;
* dedupe (lossless): a block already emitted in the bundle is not emitted again.
"""

from __future__ import annotations

import re

from .markdown import INLINE_CODE, fenced_line_mask

# A comment alone on its line goes with its line; one inside a line goes alone.
_HTML_COMMENT = re.compile(r"^[ \t]*<!--.*?-->[ \t]*(?:\n|\Z)|<!--.*?-->", re.S | re.M)
_CHECKPOINT = re.compile(r"<checkpoint\b[^>]*>(.*?)</checkpoint>[ \t]*", re.S)
_CONCLUSION = re.compile(r"<conclusion>(.*?)</conclusion>", re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_STRUCTURE_ONLY = re.compile(r"^(#{1,6}[ \t].*|[-*_=\s|:]*)$")
MIN_DEDUPE_CHARS = 64  # shorter blocks (a "## Usage" heading, a rule line) are structure, not content


def normalise_text(text: str) -> str:
    """Same text for the model, fewer tokens. Idempotent; fenced code is kept byte for byte."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for is_code, chunk in _prose_and_code(text):
        out.append(chunk if is_code else _normalise_prose(chunk))
    return _squeeze_blank_lines("".join(out))


def _normalise_prose(text: str) -> str:
    text = _without_html_comments(text)
    return "".join(line.rstrip() + "\n" if line.endswith("\n") else line.rstrip()
                   for line in text.splitlines(keepends=True))


def _without_html_comments(text: str) -> str:
    """Drop ``<!-- … -->`` outside inline code; a line left empty by it goes too."""
    spans = [m.span() for m in INLINE_CODE.finditer(text)]

    def in_code(pos: int) -> bool:
        return any(start <= pos < end for start, end in spans)

    return _HTML_COMMENT.sub(lambda m: m.group(0) if in_code(m.start()) else "", text)


def _squeeze_blank_lines(text: str) -> str:
    """No blank lines at the start or end, never two in a row."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pending_blank = False
    for line, fenced in zip(lines, fenced_line_mask(lines)):
        if not fenced and not line.strip():
            pending_blank = bool(out)
            continue
        if pending_blank:
            out.append("\n")
            pending_blank = False
        out.append(line)
    return "".join(out)


def compress_checkpoints(text: str) -> str:
    """``<checkpoint>…<conclusion>X</conclusion></checkpoint>`` becomes ``X``, outside fenced code."""
    return "".join(chunk if is_code else _CHECKPOINT.sub(_conclusion_of, chunk)
                   for is_code, chunk in _prose_and_code(text))


def _conclusion_of(match: re.Match) -> str:
    conclusion = _CONCLUSION.search(match.group(1))
    return match.group(0) if conclusion is None else conclusion.group(1).strip()


def drop_reasoning_sections(text: str, headings: tuple[str, ...]) -> str:
    """Drop each section whose heading is one of ``headings``, up to the next heading of its level or above."""
    if not headings:
        return text
    wanted = {h.lstrip("#").strip().lower() for h in headings}
    lines = text.splitlines(keepends=True)
    out, dropping_level = [], 0
    for line, fenced in zip(lines, fenced_line_mask(lines)):
        heading = None if fenced else _HEADING.match(line.rstrip("\n"))
        if heading and dropping_level and len(heading.group(1)) <= dropping_level:
            dropping_level = 0
        if heading and not dropping_level and heading.group(2).strip().lower() in wanted:
            dropping_level = len(heading.group(1))
        if not dropping_level:
            out.append(line)
    return "".join(out)


def dedupe_key(block: str) -> str | None:
    """The key under which a block counts as a repeat, or None when it must always stay."""
    stripped = block.strip()
    if len(stripped) < MIN_DEDUPE_CHARS or all(_STRUCTURE_ONLY.match(l) for l in stripped.splitlines()):
        return None
    return stripped


def _prose_and_code(text: str):
    """Yield ``(is_code, chunk)`` runs of whole lines: fenced code or prose."""
    lines = text.splitlines(keepends=True)
    run: list[str] = []
    run_is_code = False
    for line, fenced in zip(lines, fenced_line_mask(lines)):
        if run and fenced != run_is_code:
            yield run_is_code, "".join(run)
            run = []
        run_is_code = fenced
        run.append(line)
    if run:
        yield run_is_code, "".join(run)
