"""Every kind of reference tokeffc follows, in one registry, and the scanners that find them in text.

A kind says how its target is placed in a bundle and where its written path is looked up. Hard
references (``requires``, includes, ``@`` imports, declared lists, configured front-matter fields)
put their target in the bundle; soft ones (paths and links in prose, configured mentions) only
offer it as a chunk, and the text that names it stays as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import Span
from .markdown import INLINE_CODE, fenced_spans, prose_and_code
from .rules import Extractor
from .yamlio import try_read_yaml

TEXT_EXTENSIONS = (".md", ".markdown", ".yaml", ".yml", ".txt", ".json")
IMPLIED_EXTENSIONS = (".md", ".yaml", ".yml", ".txt")  # tried, in order, for a name written without one


@dataclass(frozen=True, slots=True)
class RefKind:
    name: str
    placement: str  # section | inline | attached | offered
    noun: str  # for messages: "include 'x' not found"
    lookup: tuple[str, ...]  # where a written path is tried, in order: here, root, pack, search, name
    implied_extensions: bool
    hint: str


KINDS: dict[str, RefKind] = {k.name: k for k in (
    RefKind("requires", "section", "required module", ("id", "root", "here", "search", "name"), True,
            "name a module id or a path relative to the root"),
    RefKind("include", "inline", "include", ("root", "here", "search", "name"), False,
            "include paths are relative to the framework root or to the including file"),
    RefKind("import", "inline", "import", ("here", "root", "search", "name"), False,
            "@paths are relative to the importing file, or mapped through 'aliases' or 'search_paths'"),
    RefKind("attach", "attached", "@ mention", ("here", "root", "search", "name"), False,
            "@paths are relative to the importing file, or mapped through 'aliases' or 'search_paths'"),
    RefKind("declared", "section", "declared dependency", ("pack", "root", "search", "name"), True,
            "type/name is looked up beside the declaring file's folder, from the root, then in 'search_paths'"),
    RefKind("field", "section", "front-matter reference", ("glob",), False,
            "the extractor's target glob names no file for this value"),
    RefKind("mention", "section", "mention", ("glob",), False,
            "the extractor's target glob names no file for this name"),
    RefKind("path", "offered", "path in prose", ("here", "root", "search"), False, ""),
    RefKind("link", "offered", "link", ("here", "root"), False, ""),
)}


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference as written, before it is resolved to a file."""

    written: str  # a path, an id, or (kinds field and mention) the target glob with the name filled in
    kind: str  # a key of KINDS
    load: str | None  # a load set on this edge (immediate, on_demand, lazy), or None for the target's own
    span: Span
    soft: bool = False  # only offer the target; never an error when it is missing

    @property
    def spec(self) -> RefKind:
        return KINDS[self.kind]


# --- @ mentions (Claude Code imports) --------------------------------------------------------

_MENTION = re.compile(r"(?<![^\s(])@((?:\\ |[^\s`@()<>\"'\[\]{}|,;])+)")  # "\ " escapes a space
_TRAILING = ".,;:!?)'\"]}>*_"
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+")


@dataclass(frozen=True, slots=True)
class Mention:
    start: int  # of the '@'
    end: int
    written: str  # the file it names: without a ``#fragment``, ``\ `` read as a space
    alone: bool  # the mention is all its line holds: an import that stands in for the file


def find_mentions(text: str) -> list[Mention]:
    """``@path`` where Claude Code treats it as an import: at a line start or after whitespace,
    outside fenced code and code spans (also spans that wrap a line), naming a file with an extension."""
    if "@" not in text:
        return []
    found, offset = [], 0
    for is_code, chunk in prose_and_code(text):
        if not is_code and "@" in chunk:
            found += _mentions_in_prose(chunk, offset)
        offset += len(chunk)
    return found


def _mentions_in_prose(chunk: str, offset: int) -> list[Mention]:
    hidden = [m.span() for m in _CODE_SPANS.finditer(chunk)] if "`" in chunk else []
    found = []
    for match in _MENTION.finditer(chunk):
        if any(start <= match.start() < end for start, end in hidden):
            continue
        token = match.group(1).rstrip(_TRAILING)
        written = token.split("#", 1)[0].replace("\\ ", " ")  # as the host reads it
        if not _looks_like_file(written):
            continue
        end = match.start(1) + len(token)
        line_start = chunk.rfind("\n", 0, match.start()) + 1
        line_end = chunk.find("\n", end)
        line_end = len(chunk) if line_end < 0 else line_end
        alone = not chunk[line_start:match.start()].strip() and not chunk[end:line_end].strip()
        found.append(Mention(offset + match.start(), offset + end, written, alone))
    return found


_CODE_SPANS = re.compile(r"(`+)(?:(?!\1)(?!\n[ \t]*\n)[\s\S])+?\1")


def _looks_like_file(written: str) -> bool:
    name = written.rsplit("/", 1)[-1]
    stem, dot, extension = name.rpartition(".")
    return bool(dot and stem and extension and extension.isalnum() and not written.endswith("/"))


def mention_references(body: str, start: Span) -> Iterator[Reference]:
    for mention in find_mentions(body):
        line = start.line + body.count("\n", 0, mention.start)
        yield Reference(mention.written, "import" if mention.alone else "attach", None, Span(start.path, line))


_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")  # a blank line, with either line ending


def attach_point(text: str, position: int) -> int:
    """Where a mention's file is placed: after the paragraph or list that holds the mention (at the start
    of the blank line that ends it, never inside a fenced block that follows it)."""
    blank = _BLANK_LINE.search(text, position)
    point = len(text) if blank is None else blank.start() + 1
    if "```" in text or "~~~" in text:  # a fence that starts before that point ends the paragraph there
        point = next((end for start, end in fenced_spans(text) if position <= end and start < point), point)
    return point


# --- BMAD-style declared dependency lists ----------------------------------------------------

_YAML_FENCE = re.compile(r"[ \t]*(```+|~~~+)[ \t]*ya?ml\b", re.I)


def declared_references(body: str, start: Span, load: str) -> Iterator[Reference]:
    """``dependencies: {tasks: [x.md]}`` inside fenced YAML: each name is ``<type>/<name>``."""
    for fence_line, inside in yaml_fences(body, start):
        for written, line in _dependency_entries(inside):
            yield Reference(written, "declared", load, Span(start.path, fence_line + 1 + line))


def yaml_fences(body: str, start: Span) -> Iterator[tuple[int, str]]:
    """(line of the opening fence, the YAML inside) for each fenced YAML block."""
    if "```" not in body and "~~~" not in body:
        return
    offset = 0
    for is_code, chunk in prose_and_code(body):
        if is_code and _YAML_FENCE.match(chunk):
            inside = chunk.split("\n", 1)[1] if "\n" in chunk else ""
            inside = inside.rstrip("\n").rsplit("\n", 1)[0] if inside.rstrip().endswith(("```", "~~~")) else inside
            yield start.line + body.count("\n", 0, offset), inside
        offset += len(chunk)


def _dependency_entries(text: str) -> Iterator[tuple[str, int]]:
    """(``type/name``, 0-based line) for each entry under a top-level ``dependencies`` mapping."""
    if "dependencies:" not in text:
        return
    doc = try_read_yaml(text, "", first_line=0)
    if doc is None or not isinstance(doc.data, dict) or not isinstance(doc.data.get("dependencies"), dict):
        return
    for kind, names in doc.data["dependencies"].items():
        for index, name in enumerate(names if isinstance(names, list) else ()):
            if isinstance(name, str) and name:
                yield f"{kind}/{name}", doc.key_lines.get(("dependencies", kind, str(index)), 0)


# --- configured extractors -------------------------------------------------------------------

def field_references(extractor: Extractor, meta: dict, span: Span) -> Iterator[Reference]:
    """A front-matter list (``personas: [architect]``) naming files through the extractor's target glob."""
    value = meta.get(extractor.field or "")
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    for name in names:
        if isinstance(name, str) and _NAME.fullmatch(name):
            yield _targeted("field", extractor, name, span)


def mention_pattern_references(extractor: Extractor, body: str, start: Span) -> Iterator[Reference]:
    """Names the extractor's pattern finds in prose (outside code), each naming a file by its target glob."""
    regex, offset, seen = extractor.regex, 0, set()
    if regex is None:
        return
    for is_code, chunk in prose_and_code(body):
        if not is_code:
            for match in regex.finditer(_without_code_spans(chunk)):
                name = match.group("name")
                if name and _NAME.fullmatch(name) and name.lower() not in seen:
                    seen.add(name.lower())
                    line = start.line + body.count("\n", 0, offset + match.start())
                    yield _targeted("mention", extractor, name, Span(start.path, line))
        offset += len(chunk)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _targeted(kind: str, extractor: Extractor, name: str, span: Span) -> Reference:
    load = None if extractor.load == "soft" else extractor.load
    return Reference((extractor.target or "").replace("{name}", name), kind, load, span, extractor.load == "soft")


_PROSE_PATH = re.compile(r"(?<![\w/.@-])((?:\.{1,2}/|/)?\.?[\w{}][\w{}.-]*(?:/[\w{}.-]+)*\.(?:md|markdown|yaml|yml|txt|json))\b")  # noqa: E501
_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>#]+)(?:#[^)\s]*)?>?(?:\s+\"[^\"]*\")?\s*\)")


def prose_path_references(body: str, start: Span) -> Iterator[Reference]:
    """Relative file paths written in prose or code spans (``Read `.claude/rules/x.md` ``): soft."""
    yield from _scan(body, start, _PROSE_PATH, "path", include_spans=True)


def link_references(body: str, start: Span) -> Iterator[Reference]:
    """Markdown links to local files (``[tracing](root-cause-tracing.md)``): soft."""
    yield from _scan(body, start, _LINK, "link", include_spans=False)


def _scan(body: str, start: Span, regex: re.Pattern[str], kind: str, include_spans: bool) -> Iterator[Reference]:
    offset, seen = 0, set()
    for is_code, chunk in prose_and_code(body):
        if not is_code:
            text = chunk if include_spans else _without_code_spans(chunk)
            for match in regex.finditer(text):
                written = match.group(1)
                if "://" not in written and not written.startswith(("mailto:", "#")) and written not in seen:
                    seen.add(written)
                    line = start.line + body.count("\n", 0, offset + match.start())
                    yield Reference(written.lstrip("/"), kind, None, Span(start.path, line), soft=True)
        offset += len(chunk)


def _without_code_spans(text: str) -> str:
    """The text with code spans blanked out (same length, so offsets still hold)."""
    if "`" not in text:
        return text
    return INLINE_CODE.sub(lambda m: " " * len(m.group(0)), text)
