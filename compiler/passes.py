"""Optimisation passes, as data: each says what it may change, whether that keeps the meaning, and when it runs.

Document passes rewrite one document's text for a tier, in the order listed; ``dedupe`` runs while
a bundle is assembled (it needs to know what already stands in the bundle). None of them touches
fenced code, front matter, or a YAML or JSON file. Savings are reported per pass, by name, so a new
pass needs an entry here and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .markdown import HTML_COMMENT, INLINE_CODE, fenced_line_mask, literal_spans, prose_and_code

PROSE_FORMATS = frozenset({"markdown", "text"})


@dataclass(frozen=True, slots=True)
class PassSettings:
    compress: bool  # the tier keeps only checkpoint conclusions
    reasoning_headings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pass:
    name: str
    lossless: bool  # a test proves the model reads the same thing
    default: bool  # on unless the config turns it off (lossy passes are opt-in or tier-gated)
    scope: str  # document | bundle
    formats: frozenset[str]  # the document formats it may touch
    summary: str
    apply: Callable[[str, PassSettings], str] | None = None
    tier_gated: bool = False  # runs only where the tier compresses

    def runs_on(self, fmt: str, settings: PassSettings) -> bool:
        return fmt in self.formats and (settings.compress or not self.tier_gated)


def _checkpoints(text: str, settings: PassSettings) -> str:
    return drop_reasoning_sections(compress_checkpoints(text), settings.reasoning_headings)


def _strip_comments(text: str, settings: PassSettings) -> str:
    return "".join(chunk if is_code else _without_html_comments(chunk) for is_code, chunk in prose_and_code(text))


def _normalise(text: str, settings: PassSettings) -> str:
    return normalise_text(text)


PASSES: tuple[Pass, ...] = (
    Pass("checkpoints", lossless=False, default=True, scope="document", formats=PROSE_FORMATS, tier_gated=True,
         summary="keeps only the <conclusion> of <checkpoint> blocks (and drops reasoning_headings sections) "
                 "on tiers that compress", apply=_checkpoints),
    Pass("strip_comments", lossless=False, default=False, scope="document", formats=frozenset({"markdown"}),
         summary="removes HTML comments from Markdown prose (they are often instructions: opt-in)",
         apply=_strip_comments),
    Pass("normalise", lossless=True, default=True, scope="document", formats=PROSE_FORMATS,
         summary="line endings, trailing spaces and tabs, runs of blank lines, blank lines at the ends",
         apply=_normalise),
    Pass("dedupe", lossless=True, default=True, scope="bundle", formats=frozenset({"markdown"}),
         summary="a paragraph or section already standing earlier in the bundle, from another file, "
                 "becomes a one-line pointer to it"),
)
PASS_NAMES = tuple(p.name for p in PASSES)
DOCUMENT_PASSES = tuple(p for p in PASSES if p.scope == "document")
PASS_BY_NAME = {p.name: p for p in PASSES}


def run_document_passes(text: str, fmt: str, enabled: tuple[str, ...],
                        settings: PassSettings) -> list[tuple[str, str]]:
    """``[(pass name, text after it)]`` for each enabled document pass that applies, in order."""
    stages = []
    for step in DOCUMENT_PASSES:
        if step.name in enabled and step.runs_on(fmt, settings) and step.apply is not None:
            text = step.apply(text, settings)
            stages.append((step.name, text))
    return stages


# --- normalise ---------------------------------------------------------------------------------

def normalise_text(text: str) -> str:
    """Same text for the model, fewer tokens: whitespace only. Idempotent; fenced code kept byte for byte."""
    return text if _looks_normal(text) else normalise_text_fully(text)


def _looks_normal(text: str) -> bool:
    """True when normalise would change nothing: decided by a few fast substring scans."""
    if any(mark in text for mark in ("\r", "\n\n\n", " \n", "\t\n")):
        return False
    first_line_blank = text[:1] in (" ", "\t", "\n") and text.lstrip(" \t")[:1] == "\n"
    return not first_line_blank and not text.endswith(("\n\n", " ", "\t"))


def normalise_text_fully(text: str) -> str:
    """``normalise_text`` without the shortcut (tests check that the two always agree)."""
    chunks = [(is_code, chunk if is_code else _normalise_prose(chunk.replace("\r\n", "\n").replace("\r", "\n")))
              for is_code, chunk in prose_and_code(text)]
    if chunks and not chunks[0][0]:
        chunks[0] = (False, chunks[0][1].lstrip("\n"))  # no blank lines before the first line
    if chunks and not chunks[-1][0]:
        last = chunks[-1][1]
        kept = last.rstrip("\n")
        chunks[-1] = (False, kept + "\n" if kept and last.endswith("\n") else kept)  # none after the last
    return "".join(chunk for _, chunk in chunks)


def _normalise_prose(text: str) -> str:
    """Trailing blanks off, runs of blank lines down to one (text starts a line)."""
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return "\n" + text.lstrip("\n") if text.startswith("\n\n") else text


# --- strip_comments ----------------------------------------------------------------------------


def _without_html_comments(text: str) -> str:
    """Drop ``<!-- … -->`` outside inline code; a comment alone on its line takes the line with it."""
    if "<!--" not in text:
        return text
    out, last = [], 0
    for match in HTML_COMMENT.finditer(text):
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


# --- checkpoints -------------------------------------------------------------------------------

_CHECKPOINT = re.compile(r"<checkpoint\b[^>]*>(.*?)</checkpoint>[ \t]*", re.S)
_CONCLUSION = re.compile(r"<conclusion>(.*?)</conclusion>", re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")


def compress_checkpoints(text: str) -> str:
    """``<checkpoint>…<conclusion>X</conclusion></checkpoint>`` becomes ``X``, outside code (fenced, indented,
    inline) and HTML comments."""
    if "<checkpoint" not in text:
        return text
    return "".join(chunk if is_code else _compress_prose(chunk) for is_code, chunk in prose_and_code(text))


def _compress_prose(prose: str) -> str:
    literal = literal_spans(prose)

    def conclusion_of(match: re.Match) -> str:
        conclusion = _CONCLUSION.search(match.group(1))
        shown_as_written = any(start <= match.start() < end for start, end in literal)
        return match.group(0) if conclusion is None or shown_as_written else conclusion.group(1).strip()

    return _CHECKPOINT.sub(conclusion_of, prose)


def drop_reasoning_sections(text: str, headings: tuple[str, ...]) -> str:
    """Drop each section whose heading is one of ``headings``, up to the next heading of its level or above."""
    wanted = {h.lstrip("#").strip().lower() for h in headings}
    lowered = text.lower()
    if not wanted or not any(title in lowered for title in wanted):
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


# --- dedupe ------------------------------------------------------------------------------------

MIN_DEDUPE_CHARS = 64  # shorter blocks cost less than the pointer that would replace them
_NOT_A_PARAGRAPH = re.compile(r"^[ \t]*(?:[-*+][ \t]|\d+[.)][ \t]|\||#{1,6}[ \t]|<|```|~~~|[-*_=]{3,}[ \t]*$)")


def dedupe_key(unit: tuple[str, ...]) -> str | None:
    """The key under which a unit (a paragraph, or a whole section from its heading) may be
    deduplicated, or None when it must stay: a block that is a list, a table, HTML, a fence or a rule
    is only ever deduplicated as part of a whole section."""
    text = "".join(unit).strip()
    if len(text) < MIN_DEDUPE_CHARS:
        return None
    if len(unit) == 1 and not heading_level(unit[0]):
        if unit[0][:1] in (" ", "\t") or any(_NOT_A_PARAGRAPH.match(line) for line in text.split("\n")):
            return None
    return text


def heading_level(block: str) -> int:
    """The level of a block that is a heading line (``## X`` -> 2), else 0."""
    if not block.startswith("#"):
        return 0
    match = _HEADING.match(block.split("\n", 1)[0])
    return len(match.group(1)) if match else 0
