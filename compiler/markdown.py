"""The few Markdown facts the compiler needs: fenced code, inline code, front matter."""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
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


def fenced_line_mask(lines: list[str]) -> list[bool]:
    """For each line, whether it belongs to a fenced code block (fence lines included)."""
    mask, fence = [], None
    for line in lines:
        if fence is None:
            opened = FENCE_OPEN.match(line)
            if opened:
                fence = opened.group(1)
            mask.append(fence is not None)
        else:
            mask.append(True)
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                fence = None
    return mask


def fenced_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` of fenced code blocks, fences included."""
    spans, offset, start = [], 0, None
    lines = text.splitlines(keepends=True)
    for line, fenced in zip(lines, fenced_line_mask(lines)):
        if fenced and start is None:
            start = offset
        elif not fenced and start is not None:
            spans.append((start, offset))
            start = None
        offset += len(line)
    if start is not None:
        spans.append((start, offset))
    return spans  # two fences back to back come out as one range, which is fine for protection


def split_blocks(text: str) -> list[str]:
    """Cut text into blocks, each with the blank lines after it: ``"".join(result) == text``.

    A block is a run of non-blank lines; a fenced code block is one block, blank lines and all.
    """
    lines = text.splitlines(keepends=True)
    blocks: list[str] = []
    current: list[str] = []
    in_blank_tail = False
    for line, fenced in zip(lines, fenced_line_mask(lines)):
        blank = not fenced and not line.strip()
        if current and in_blank_tail and not blank:
            blocks.append("".join(current))
            current = []
        current.append(line)
        in_blank_tail = blank
    if current:
        blocks.append("".join(current))
    return blocks
