"""Parse one source file: its role, front matter as the host reads it, tokeffc's directives, body, references.

A file's front matter belongs to the framework and its host; tokeffc reads only the ``tokeffc:``
key, and rules in the config say the same for files that cannot be edited (the file's own key
wins). Front matter the host reads (commands, agents, skills, rules) becomes metadata; any other
file keeps its front matter as text, without the ``tokeffc:`` key.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NewType

from .config import LOAD_KINDS, Config
from .errors import Notice, Problems, Span, TokeffcError
from .markdown import Split, split_blocks, split_front_matter
from .references import (
    Reference,
    declared_references,
    field_references,
    link_references,
    mention_pattern_references,
    mention_references,
    prose_path_references,
)
from .rules import Rule, When
from .sources import DocPath, SourceFile
from .templating import BodyTemplate, plain_body, prepare_body
from .yamlio import read_yaml

DocId = NewType("DocId", str)  # a module's or entry's name in the release; never a path on disk

_UNSAFE_ID_CHARS = re.compile(r"[\x00-\x1f\\:*?\"<>|]")  # ids name release files on every OS
HOST_READ_ROLES = ("command", "agent", "skill", "rule")  # their front matter is the host's metadata
DIRECTIVES = ("id", "tier", "load", "when", "requires", "budget")
FORMATS = {".md": "markdown", ".markdown": "markdown", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass(frozen=True, slots=True)
class Document:
    path: DocPath
    id: DocId
    role: str  # core | command | agent | skill | rule | template | reference | module
    format: str  # markdown | yaml | json | text
    meta: tuple[tuple[str, Any], ...]  # front matter but the tokeffc key, JSON-safe, sorted
    tier: str  # lowest tier that includes it
    load: str
    when: str
    budget: int | tuple[tuple[str, int], ...] | None
    head: str  # front matter with its fences and the blank lines after: ``head + body`` is the file
    kept_head: str  # what of the head reaches the output ("" when the host reads it)
    template: BodyTemplate
    references: tuple[Reference, ...]
    sha256: str
    warnings: tuple[Notice, ...] = ()

    @property
    def body(self) -> str:
        return self.template.body

    @property
    def text(self) -> str:
        return self.head + self.template.body

    @property
    def name(self) -> str:
        """The name a model may ask for it by: the last part of its id."""
        return self.id.rsplit("/", 1)[-1]

    def meta_value(self, key: str) -> Any:
        return dict(self.meta).get(key)

    def budget_for(self, tier: str) -> int | None:
        if isinstance(self.budget, int) or self.budget is None:
            return self.budget
        return dict(self.budget).get(tier)


def parse_documents(sources: tuple[SourceFile, ...], config: Config) -> list[Document]:
    """Parse every source; every problem in every file is reported together."""
    documents: list[Document] = []
    problems: list[TokeffcError] = []
    for source in sources:
        try:
            documents.append(parse_document(source, config))
        except Problems as exc:
            problems += exc.problems
        except TokeffcError as exc:
            problems.append(exc)
    if problems:
        raise Problems(problems)
    return documents


def parse_document(source: SourceFile, config: Config) -> Document:
    rule = config.rule_for(source.path)
    role = _role(source, rule)
    fmt = file_format(source.path)
    front = _FrontMatter.read(source, config, rule)
    fields = _Directives(source, config, front, rule)
    directives = fields.collect()
    body_span = Span(source.path, front.split.body_line)
    templating = rule.templating if rule and rule.templating is not None else config.templating
    template = prepare_body(front.split.body, body_span, templating) if fmt != "json" else plain_body(
        front.split.body, body_span)
    meta = front.meta
    return Document(
        path=source.path,
        id=directives["id"],
        role=role,
        format=fmt,
        meta=tuple(sorted(meta.items())),
        tier=directives["tier"],
        load=_host_load(role, meta, directives["load"]),
        when=_host_when(role, meta, directives["when"]),
        budget=directives["budget"],
        head=front.split.head,
        kept_head="" if role in HOST_READ_ROLES else front.kept_head(),
        template=template,
        references=tuple(_references(source, config, meta, directives["requires"], template, body_span)),
        sha256=source.sha256,
        warnings=front.warnings,
    )


def file_format(path: str) -> str:
    lowered = path.lower()
    return next((fmt for ext, fmt in FORMATS.items() if lowered.endswith(ext)), "text")


def is_markdown(path: str) -> bool:
    """Only Markdown files have front matter; a YAML or text file is all body."""
    return file_format(path) == "markdown"


def source_units(path: str, text: str) -> list[str]:
    """A file cut as the compiler counts it: front matter, then the body's blocks."""
    split = split_front_matter(text) if is_markdown(path) else Split(None, "", text, 1)
    return [split.head, *split_blocks(split.body)]


def _role(source: SourceFile, rule: Rule | None) -> str:
    if source.role == "core":
        return "core"
    return rule.role if rule and rule.role else source.role


def _host_load(role: str, meta: dict, load: str) -> str:
    """A host rule with ``paths:`` applies only to matching files: tokeffc offers it instead of inlining it."""
    return "on_demand" if role == "rule" and meta.get("paths") and load == "immediate" else load


def _host_when(role: str, meta: dict, when: str) -> str:
    if role == "rule" and meta.get("paths") and not when:
        paths = meta["paths"] if isinstance(meta["paths"], list) else [meta["paths"]]
        return "when working on files matching " + ", ".join(map(str, paths))
    return when


def _references(source: SourceFile, config: Config, meta: dict, requires: tuple[Reference, ...],
                template: BodyTemplate, span: Span) -> Iterator[Reference]:
    yield from requires
    yield from (Reference(name, "include", None, Span(source.path, line)) for name, line in template.includes)
    body = template.body
    if file_format(source.path) not in ("markdown", "text"):
        return
    yield from mention_references(body, span)
    yield from declared_references(body, span, config.declared_load)
    for extractor in config.extractors:
        if not extractor.applies_to(source.path):
            continue
        if extractor.kind == "front_matter":
            yield from field_references(extractor, meta, Span(source.path, 1))
        elif extractor.kind == "mention":
            yield from mention_pattern_references(extractor, body, span)
        elif extractor.kind == "prose_paths":
            yield from prose_path_references(body, span)
        elif extractor.kind == "links":
            yield from link_references(body, span)


# --- front matter -----------------------------------------------------------------------------

_LENIENT_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(.*))?$")


@dataclass(frozen=True, slots=True)
class _FrontMatter:
    """A file's front matter as its host reads it, with tokeffc's own key set apart."""

    split: Split
    meta: dict[str, Any]  # the framework's and host's keys
    ours: Any  # the value of the tokeffc: key, or None
    lines: dict[tuple[str, ...], int]  # key path -> file line
    warnings: tuple[Notice, ...]

    @classmethod
    def read(cls, source: SourceFile, config: Config, rule: Rule | None) -> _FrontMatter:
        mode = rule.front_matter if rule and rule.front_matter else config.front_matter
        if not is_markdown(source.path) or mode == "content":
            return cls(Split(None, "", source.text, 1), {}, None, {}, ())
        split = split_front_matter(source.text)
        if split.front_matter is None:
            return cls(split, {}, None, {}, _unclosed_warning(source))
        data, lines, warning = _parse_front_matter(split.front_matter, source.path)
        if data is None:  # unreadable: the file is kept as text, and the user told where
            return cls(Split(None, "", source.text, 1), {}, None, {}, (warning,) if warning else ())
        ours = data.pop("tokeffc", None)
        return cls(split, data, ours, lines, (warning,) if warning else ())

    def kept_head(self) -> str:
        """The head as written, without the lines of the ``tokeffc:`` key (all of it if nothing else is left)."""
        if self.ours is None and ("tokeffc",) not in self.lines:
            return self.split.head
        if not self.meta:
            return ""
        tops = sorted(line for key, line in self.lines.items() if len(key) == 1)
        start = self.lines[("tokeffc",)]
        end = next((line for line in tops if line > start), None)
        lines = self.split.head.splitlines(keepends=True)
        closing = next(i for i in range(len(lines) - 1, 0, -1) if lines[i].strip() == "---") + 1
        end = closing if end is None else end
        return "".join(lines[: start - 1] + lines[end - 1:])


def _unclosed_warning(source: SourceFile) -> tuple[Notice, ...]:
    if source.text.startswith(("---\n", "---\r\n")):
        return (Notice(Span(source.path, 1), "front matter is never closed by a '---' line; the file is kept "
                       "as text"),)
    return ()


def _parse_front_matter(text: str, path: str) -> tuple[dict[str, Any] | None, dict[tuple[str, ...], int],
                                                       Notice | None]:
    """Strict YAML first (bounded: no alias bombs, no duplicate keys); then the lenient ``key: value``
    reading hosts fall back to; else unreadable. tokeffc's own key must always be read exactly."""
    try:
        doc = read_yaml(text, path, first_line=2, label="YAML front matter")
    except TokeffcError as exc:
        if re.search(r"^tokeffc\s*:", text, re.M):
            raise
        lenient = _lenient(text)
        if lenient is not None:
            return lenient, {(k,): 2 + i for i, k in _lenient_lines(text)}, None
        where = exc.span or Span(path, 2)
        return None, {}, Notice(where, f"{exc.message}; neither 'key: value' lines: the file is kept as text")
    if doc.data is None:
        return {}, {}, None
    if not isinstance(doc.data, dict):
        return None, {}, Notice(Span(path, 2), "front matter is not a mapping; the file is kept as text")
    return doc.data, dict(doc.key_lines), None


def _lenient(text: str) -> dict[str, Any] | None:
    """``key: value`` lines, values as text (how Claude Code reads agent descriptions full of colons)."""
    data: dict[str, Any] = {}
    key = None
    for line in text.splitlines():
        match = _LENIENT_KEY.match(line)
        if match:
            key = match.group(1)
            data[key] = (match.group(2) or "").strip()
        elif key is not None and (line.startswith((" ", "\t")) or not line.strip()):
            data[key] = (data[key] + "\n" + line.strip()).strip()
        elif line.strip():
            return None
    return data


def _lenient_lines(text: str) -> Iterator[tuple[int, str]]:
    for index, line in enumerate(text.splitlines()):
        match = _LENIENT_KEY.match(line)
        if match:
            yield index, match.group(1)


# --- tokeffc's directives ---------------------------------------------------------------------

class _Directives:
    """What the file's ``tokeffc:`` key (or, failing that, its rule) says, each error at its line."""

    def __init__(self, source: SourceFile, config: Config, front: _FrontMatter, rule: Rule | None):
        self.source, self.config, self.front, self.rule = source, config, front, rule
        self.ours = front.ours if front.ours is not None else {}

    def collect(self) -> dict[str, Any]:
        if not isinstance(self.ours, dict):
            raise self.error((), "'tokeffc:' must be a mapping", "e.g. tokeffc: {tier: standard}")
        unknown = sorted(set(map(str, self.ours)) - set(DIRECTIVES))
        if unknown:
            close = difflib.get_close_matches(unknown[0], DIRECTIVES, n=1)
            raise self.error((unknown[0],), f"unknown key 'tokeffc.{unknown[0]}'",
                             f"did you mean '{close[0]}'?" if close else f"known: {', '.join(DIRECTIVES)}")
        return {"id": self.identifier(), "tier": self.tier(), "load": self.load(), "when": self.when(),
                "budget": self.budget(), "requires": self.requires()}

    def value(self, key: str) -> Any:
        """The file's own value, else its rule's."""
        if key in self.ours:
            return self.ours[key]
        return getattr(self.rule, key, None) if self.rule else None

    def error(self, key: tuple[str, ...], message: str, hint: str) -> TokeffcError:
        line = self.front.lines.get(("tokeffc", *key)) or self.front.lines.get(("tokeffc",)) or 1
        if key and key[0] not in self.ours and self.rule:  # the value came from a rule
            return TokeffcError(f"{message} (from the rule at {self.config.span().path}:{self.rule.line})",
                                Span(self.source.path, 1), hint)
        return TokeffcError(message, Span(self.source.path, line), hint)

    def identifier(self) -> DocId:
        value = self.ours.get("id", self.source.default_id)
        if not isinstance(value, str):
            raise self.error(("id",), "'tokeffc.id' must be a string", 'quote it: id: "…"')
        parts = value.split("/")
        if _UNSAFE_ID_CHARS.search(value) or any(part in ("", ".", "..") for part in parts):
            raise self.error(("id",), f"id '{value}' is not a safe relative name",
                             "write it like a relative path: no '..', no leading or doubled '/', no '\\' or ':'")
        return DocId(value)

    def tier(self) -> str:
        value = self.value("tier")
        return self.config.tier_names[0] if value is None else self.tier_name(value, ("tier",))

    def tier_name(self, value: Any, key: tuple[str, ...]) -> str:
        names = self.config.tier_names
        if value not in names:
            close = difflib.get_close_matches(str(value), names, n=1)
            raise self.error(key, f"unknown tier '{value}'",
                             f"did you mean '{close[0]}'?" if close else f"tiers are: {', '.join(names)}")
        return value

    def load(self) -> str:
        value = self.value("load")
        return "immediate" if value is None else self.load_kind(value, ("load",))

    def load_kind(self, value: Any, key: tuple[str, ...]) -> str:
        if value not in LOAD_KINDS:
            raise self.error(key, f"unknown load '{value}'", f"use one of: {', '.join(LOAD_KINDS)}")
        return value

    def when(self) -> str:
        value = self.ours.get("when") if "when" in self.ours else self.rule.when if self.rule else None
        if isinstance(value, When):
            value = value.of(self.front.meta, self.front.split.body)
        if value is None:
            return ""
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
        return " ".join(value.split())

    def budget(self) -> int | tuple[tuple[str, int], ...] | None:
        value = self.value("budget")
        if value is None or _positive_int(value):
            return value
        if isinstance(value, dict) and value and all(_positive_int(v) for v in value.values()):
            return tuple(sorted((self.tier_name(t, ("budget",)), v) for t, v in value.items()))
        raise self.error(("budget",), "'budget' must be a positive integer or {tier: tokens}", "e.g. budget: 15000")

    def requires(self) -> tuple[Reference, ...]:
        value = self.value("requires")
        if value is None:
            return ()
        if isinstance(value, (str, dict)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise self.error(("requires",), "'requires' must be a list", "e.g. requires: [tdd/cycle]")
        line = self.front.lines.get(("tokeffc", "requires"), 1)
        return tuple(self._requirement(item, Span(self.source.path, line)) for item in value)

    def _requirement(self, item: Any, span: Span) -> Reference:
        if isinstance(item, str) and item:
            return Reference(item, "requires", None, span)
        if isinstance(item, dict) and isinstance(item.get("module"), str) and set(item) <= {"module", "load"}:
            load = self.load_kind(item["load"], ("requires",)) if "load" in item else None
            return Reference(item["module"], "requires", load, span)
        raise self.error(("requires",), f"bad requires entry {item!r}",
                         "write a module id, or {module: id, load: lazy}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
