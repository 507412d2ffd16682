"""The few Markdown facts the compiler needs: fenced code, inline code, front matter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_BLANK_RUN = re.compile(r"\n(?:[ \t\r]*\n)+")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)


@dataclass(frozen=True, slots=True)
class Split:
    """A file cut into front matter and body. ``head + body`` is the file as written."""

    front_matter: str | None  # the YAML between the fences, or None
    head: str  # the front matter with its fences and the blank lines after it
    body: str
    body_line: int  # 1-based line of the file where the body starts


def split_front_matter(text: str) -> Split:
    match = FRONT_MATTER.match(text)
    if not match:
        head_len = len(text) - len(text.lstrip("\r\n"))
        return Split(None, text[:head_len], text[head_len:], text[:head_len].count("\n") + 1)
    end = match.end()
    end += len(text[end:]) - len(text[end:].lstrip("\r\n"))
    return Split(match.group(1), text[:end], text[end:], text[:end].count("\n") + 1)


def fenced_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` of fenced code blocks, fence lines included.

    Only runs of three or more backticks or tildes are visited, so prose costs one fast scan.
    """
    spans, fence, start = [], None, 0
    for mark_start, mark_end in _fence_marks(text):
        line_start = text.rfind("\n", 0, mark_start) + 1
        indent = text[line_start:mark_start]
        if indent.strip(" \t"):
            continue  # not at the start of its line
        line_end = text.find("\n", mark_end)
        line_end = len(text) if line_end < 0 else line_end + 1
        marker, rest = text[mark_start:mark_end], text[mark_end:line_end]
        if fence is None:
            if len(indent.expandtabs()) <= 3:
                fence, start = marker, line_start
        elif marker[0] == fence[0] and len(marker) >= len(fence) and not rest.strip():
            spans.append((start, line_end))
            fence = None
    if fence is not None:
        spans.append((start, len(text)))
    return spans


def _fence_marks(text: str) -> list[tuple[int, int]]:
    """Runs of three or more backticks or tildes, in order (str.find is much faster than a regex)."""
    marks = []
    for char in "`~":
        triple, position = char * 3, text.find(char * 3)
        while position >= 0:
            end = position + 3
            while end < len(text) and text[end] == char:
                end += 1
            marks.append((position, end))
            position = text.find(triple, end)
    return sorted(marks)


def prose_and_code(text: str):
    """Yield ``(is_code, chunk)``: runs of whole lines, fenced code or prose, in order."""
    last = 0
    for start, end in fenced_spans(text):
        if start > last:
            yield False, text[last:start]
        yield True, text[start:end]
        last = end
    if last < len(text):
        yield False, text[last:]


HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_LIST_ITEM = re.compile(r"[ ]{0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")


def literal_spans(prose: str) -> list[tuple[int, int]]:
    """Ranges of prose that Markdown shows as written: inline code, HTML comments, indented code blocks."""
    spans = [m.span() for m in INLINE_CODE.finditer(prose)] if "`" in prose else []
    if "<!--" in prose:
        spans += [m.span() for m in HTML_COMMENT.finditer(prose)]
    if "\n    " in prose or "\n\t" in prose or prose.startswith(("    ", "\t")):
        spans += _indented_code(prose)
    return sorted(spans)


def _indented_code(prose: str) -> list[tuple[int, int]]:
    """Lines indented four columns or more after a blank line, outside a list (a list item's text may be
    indented that much); blank lines inside such a block belong to it."""
    spans, offset, previous_blank, in_list, in_code = [], 0, True, False, False
    for line in prose.splitlines(keepends=True):
        blank = not line.strip()
        expanded = line.expandtabs(4)
        indent = len(expanded) - len(expanded.lstrip(" "))
        if not blank and indent < 4:
            in_list = bool(_LIST_ITEM.match(line)) or (in_list and not previous_blank)
        if not blank:
            in_code = indent >= 4 and not in_list and (in_code or previous_blank)
        if in_code:
            spans.append((offset, offset + len(line)))
        offset, previous_blank = offset + len(line), blank
    return spans


def fenced_line_mask(lines: list[str]) -> list[bool]:
    """For each line (kept with its line ending), whether it belongs to a fenced code block."""
    spans = fenced_spans("".join(lines))
    if not spans:
        return [False] * len(lines)
    mask, offset, index = [], 0, 0
    for line in lines:
        while index < len(spans) and spans[index][1] <= offset:
            index += 1
        mask.append(index < len(spans) and spans[index][0] <= offset)
        offset += len(line)
    return mask


@lru_cache(maxsize=8192)
def split_blocks(text: str) -> tuple[str, ...]:
    """Cut text into blocks, each with the blank lines after it: ``"".join(result) == text``.

    Memoised: a build cuts the same text for counting, rendering and each tier.

    A block is a run of non-blank lines; a fenced code block is one block, blank lines and all.
    """
    spans = fenced_spans(text)
    blocks, last, fence = [], 0, 0
    for run in _BLANK_RUN.finditer(text):
        cut = run.end()
        if cut >= len(text):
            break
        while fence < len(spans) and spans[fence][1] <= cut:
            fence += 1
        if fence < len(spans) and spans[fence][0] < cut:
            continue  # a blank line inside fenced code does not end a block
        blocks.append(text[last:cut])
        last = cut
    if last < len(text):
        blocks.append(text[last:])
    return tuple(blocks)
