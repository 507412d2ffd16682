"""Parse one source file: front matter, body template, and every reference with its line."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import yaml

from .config import LOAD_KINDS, SAFE_LOADER, Config, describe_yaml_error, key_lines
from .errors import Span, TokeffcError
from .markdown import Split, prose_and_code, split_blocks, split_front_matter
from .sources import SourceFile
from .templating import BodyTemplate, prepare_body

# A Claude Code import: a line that is only "@path/to/file.ext" (multi-line mode: find them in a text).
_UNSAFE_ID_CHARS = re.compile(r"[\x00-\x1f\\:*?\"<>|]")  # ids name release files on every OS
_YAML_FENCE = re.compile(r"[ \t]*(```+|~~~+)[ \t]*ya?ml\b", re.I)
IMPORT_LINES = re.compile(r"^[ \t]*@([^\s`@]+\.[A-Za-z0-9]+)[ \t]*$", re.M)


@dataclass(frozen=True, slots=True)
class Reference:
    """A dependency as written, before it is resolved to a file."""

    written: str
    kind: str  # requires | include | import | declared
    load: str | None  # a load kind set on this edge, or None for the module's own
    span: Span


@dataclass(frozen=True, slots=True)
class Document:
    path: str
    kind: str  # core | command | module
    id: str
    meta: tuple[tuple[str, Any], ...]  # front matter keys tokeffc does not interpret, sorted
    tier: str  # lowest tier that includes it
    load: str
    when: str
    budget: int | tuple[tuple[str, int], ...] | None
    head: str  # front matter fences and blank lines: ``head + template.body`` is the file
    template: BodyTemplate
    references: tuple[Reference, ...]
    sha256: str

    @property
    def body(self) -> str:
        return self.template.body

    @property
    def text(self) -> str:
        return self.head + self.template.body

    def budget_for(self, tier: str) -> int | None:
        if isinstance(self.budget, int) or self.budget is None:
            return self.budget
        return dict(self.budget).get(tier)


def parse_document(source: SourceFile, config: Config) -> Document:
    split = split_front_matter(source.text) if is_markdown(source.path) else Split(None, "", source.text, 1)
    front = _load_front_matter(split.front_matter, source.path)
    fields = _FrontMatter(source, config, front, split.front_matter)
    body_span = Span(source.path, split.body_line)
    template = prepare_body(split.body, body_span)
    references = (
        *fields.requires(),
        *(Reference(name, "include", None, Span(source.path, line)) for name, line in template.includes),
        *_import_lines(split.body, body_span),
        *_declared_lists(split.body, body_span, config.declared_load),
    )
    return Document(
        path=source.path,
        kind=source.kind,
        id=fields.identifier(source.default_id),
        meta=tuple(sorted((k, v) for k, v in front.items() if k not in _INTERPRETED)),
        tier=fields.tier(),
        load=fields.load(),
        when=fields.string("when", ""),
        budget=fields.budget(),
        head=split.head,
        template=template,
        references=references,
        sha256=source.sha256,
    )


def is_markdown(path: str) -> bool:
    """Only Markdown files have front matter; a YAML or text file is all body."""
    return path.lower().endswith((".md", ".markdown"))


def source_units(path: str, text: str) -> list[str]:
    """A file cut as the compiler counts it: front matter, then the body's blocks."""
    split = split_front_matter(text) if is_markdown(path) else Split(None, "", text, 1)
    return [split.head, *split_blocks(split.body)]


_INTERPRETED = ("id", "tier", "load", "when", "requires", "budget")


def _load_front_matter(text: str | None, path: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        problem, line = describe_yaml_error(exc, first_line=2)  # the YAML starts after the opening '---'
        raise TokeffcError(f"invalid YAML front matter: {problem}", Span(path, line),
                           "fix the YAML between the '---' lines") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TokeffcError("front matter must be a mapping", Span(path, 2), "write 'key: value' lines")
    return {str(k): v for k, v in data.items()}


def _import_lines(body: str, start: Span):
    if "@" not in body:
        return
    offset = 0
    for is_code, chunk in prose_and_code(body):
        if not is_code:
            for match in IMPORT_LINES.finditer(chunk):
                line = start.line + body.count("\n", 0, offset + match.start())
                yield Reference(match.group(1), "import", None, Span(start.path, line))
        offset += len(chunk)


def _declared_lists(body: str, start: Span, load: str):
    """BMAD-style ``dependencies: {tasks: [x.md]}`` inside fenced YAML: each name is ``<type>/<name>``."""
    if "dependencies:" not in body:
        return
    offset = 0
    for is_code, chunk in prose_and_code(body):
        if is_code and _YAML_FENCE.match(chunk):
            fence_line = start.line + body.count("\n", 0, offset)
            inside = chunk.split("\n", 1)[1].rstrip("\n").rsplit("\n", 1)[0]  # without the fence lines
            for written, line in _dependency_entries(inside):
                yield Reference(written, "declared", load, Span(start.path, fence_line + 1 + line))
        offset += len(chunk)


def _dependency_entries(text: str):
    """(``type/name``, 0-based line) for each entry under a top-level ``dependencies`` mapping."""
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return  # a code sample, not a declaration
    if not isinstance(root, yaml.MappingNode):
        return
    for key, value in root.value:
        if key.value == "dependencies" and isinstance(value, yaml.MappingNode):
            for kind, names in value.value:
                for name in names.value if isinstance(names, yaml.SequenceNode) else ():
                    if isinstance(name, yaml.ScalarNode) and name.value:
                        yield f"{kind.value}/{name.value}", name.start_mark.line


class _FrontMatter:
    """Typed access to the keys tokeffc interprets, with errors at the key's line."""

    def __init__(self, source: SourceFile, config: Config, data: dict[str, Any], text: str | None):
        self.source, self.config, self.data, self.text = source, config, data, text

    def error(self, key: str, message: str, hint: str) -> TokeffcError:
        return TokeffcError(message, Span(self.source.path, self._line(key)), hint)

    def _line(self, key: str) -> int:
        """The file line of a front matter key (the YAML starts on line 2, after '---')."""
        lines = key_lines(yaml.compose(self.text, Loader=SAFE_LOADER)) if self.text else {}
        return lines[(key,)] + 1 if (key,) in lines else 1

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"'{key}' must be a string", f"quote it: {key}: \"…\"")
        return value

    def identifier(self, default: str) -> str:
        """The document's id: it names files in the release, so it must stay a safe relative path."""
        value = self.string("id", default)
        parts = value.split("/")
        if _UNSAFE_ID_CHARS.search(value) or any(part in ("", ".", "..") for part in parts):
            raise self.error("id", f"id '{value}' is not a safe relative name",
                             "write it like a relative path: no '..', no leading or doubled '/', no '\\' or ':'")
        return value

    def tier(self) -> str:
        return self.tier_name(self.data.get("tier", self.config.tier_names[0]), "tier")

    def tier_name(self, value: Any, key: str) -> str:
        names = self.config.tier_names
        if value not in names:
            close = difflib.get_close_matches(str(value), names, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"tiers are: {', '.join(names)}"
            raise self.error(key, f"unknown tier '{value}'", hint)
        return value

    def load(self) -> str:
        return self.load_kind(self.data.get("load", "immediate"), "load")

    def load_kind(self, value: Any, key: str) -> str:
        if value not in LOAD_KINDS:
            raise self.error(key, f"unknown load '{value}'", f"use one of: {', '.join(LOAD_KINDS)}")
        return value

    def budget(self) -> int | tuple[tuple[str, int], ...] | None:
        value = self.data.get("budget")
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        if isinstance(value, dict) and all(isinstance(v, int) and v > 0 for v in value.values()):
            return tuple(sorted((self.tier_name(t, "budget"), v) for t, v in value.items()))
        raise self.error("budget", "'budget' must be a positive integer or {tier: tokens}", "e.g. budget: 15000")

    def requires(self) -> tuple[Reference, ...]:
        value = self.data.get("requires", [])
        if isinstance(value, (str, dict)):
            value = [value]
        if not isinstance(value, list):
            raise self.error("requires", "'requires' must be a list", "e.g. requires: [tdd/cycle]")
        span = Span(self.source.path, self._line("requires") if value else 1)
        return tuple(self._requirement(item, span) for item in value)

    def _requirement(self, item: Any, span: Span) -> Reference:
        if isinstance(item, str) and item:
            return Reference(item, "requires", None, span)
        if isinstance(item, dict) and isinstance(item.get("module"), str) and set(item) <= {"module", "load"}:
            load = self.load_kind(item["load"], "requires") if "load" in item else None
            return Reference(item["module"], "requires", load, span)
        raise self.error("requires", f"bad requires entry {item!r}", "write a module id, or {module: id, load: lazy}")
