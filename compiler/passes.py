"""Optimisation passes on prompt text. None of them touches fenced code.

* normalise (lossless for the model): line endings, trailing spaces, blank-line runs, HTML comments;
* checkpoints (lossy by design): keep only the conclusion of ``<checkpoint>`` blocks, and drop
  sections under configured reasoning headings;
* dedupe (lossless): a block already emitted in the bundle is not emitted again.
"""

from __future__ import annotations

import re

from .markdown import INLINE_CODE, fenced_line_mask, prose_and_code

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_CHECKPOINT = re.compile(r"<checkpoint\b[^>]*>(.*?)</checkpoint>[ \t]*", re.S)
_CONCLUSION = re.compile(r"<conclusion>(.*?)</conclusion>", re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_STRUCTURE_ONLY = re.compile(r"^(#{1,6}[ \t].*|[-*_=\s|:]*)$")
MIN_DEDUPE_CHARS = 64  # shorter blocks (a "## Usage" heading, a rule line) are structure, not content


def normalise_text(text: str) -> str:
    """Same text for the model, fewer tokens. Idempotent; fenced code is kept byte for byte."""
    return text if _looks_normal(text) else normalise_text_fully(text)


def _looks_normal(text: str) -> bool:
    """True when normalise would change nothing: decided by a few fast substring scans."""
    if any(mark in text for mark in ("\r", "<!--", "\n\n\n", " \n", "\t\n")):
        return False
    first_line_blank = text[:1] in (" ", "\t", "\n") and text.lstrip(" \t")[:1] == "\n"
    return not first_line_blank and not text.endswith(("\n\n", " ", "\t"))


def normalise_text_fully(text: str) -> str:
    """``normalise_text`` without the shortcut (tests check that the two always agree)."""
    chunks = [(is_code, chunk if is_code else _normalise_prose(chunk))
              for is_code, chunk in prose_and_code(text.replace("\r\n", "\n").replace("\r", "\n"))]
    if chunks and not chunks[0][0]:
        chunks[0] = (False, chunks[0][1].lstrip("\n"))  # no blank lines before the first line
    if chunks and not chunks[-1][0]:
        last = chunks[-1][1]
        kept = last.rstrip("\n")
        chunks[-1] = (False, kept + "\n" if kept and last.endswith("\n") else kept)  # none after the last
    return "".join(chunk for _, chunk in chunks)


def _normalise_prose(text: str) -> str:
    """Comments out, trailing blanks off, runs of blank lines down to one (text starts a line)."""
    if "<!--" in text:
        text = _without_html_comments(text)
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return "\n" + text.lstrip("\n") if text.startswith("\n\n") else text


def _without_html_comments(text: str) -> str:
    """Drop ``<!-- … -->`` outside inline code; a comment alone on its line takes the line with it."""
    out, last = [], 0
    for match in _HTML_COMMENT.finditer(text):
        start, end = match.span()
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        if _in_code_span(text[line_start:line_end], start - line_start):
            continue
        if not text[line_start:start].strip(" \t") and not text[end:line_end].strip(" \t") and line_start >= last:
            start, end = line_start, min(line_end + 1, len(text))
        out.append(text[last:start])
        last = end
    out.append(text[last:])
    return "".join(out)


def _in_code_span(line: str, column: int) -> bool:
    return any(start <= column < end for start, end in (m.span() for m in INLINE_CODE.finditer(line)))


def compress_checkpoints(text: str) -> str:
    """``<checkpoint>…<conclusion>X</conclusion></checkpoint>`` becomes ``X``, outside fenced code."""
    if "<checkpoint" not in text:
        return text
    return "".join(chunk if is_code else _CHECKPOINT.sub(_conclusion_of, chunk)
                   for is_code, chunk in prose_and_code(text))


def _conclusion_of(match: re.Match) -> str:
    conclusion = _CONCLUSION.search(match.group(1))
    return match.group(0) if conclusion is None else conclusion.group(1).strip()


def drop_reasoning_sections(text: str, headings: tuple[str, ...]) -> str:
    """Drop each section whose heading is one of ``headings``, up to the next heading of its level or above."""
    wanted = {h.lstrip("#").strip().lower() for h in headings}
    lowered = text.lower()
    if not any(title in lowered for title in wanted):
        return text
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
    if len(stripped) < MIN_DEDUPE_CHARS or all(_STRUCTURE_ONLY.match(line) for line in stripped.splitlines()):
        return None
    return stripped
