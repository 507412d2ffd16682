"""Rules by glob and reference extractors: what a config (or a preset) says about files it cannot edit.

A rule says for the files it matches what their own ``tokeffc:`` front matter could say; the first
matching rule wins, like ``.gitattributes``. An extractor finds references where a framework writes
them (a front-matter list, a name in prose) and says where they point.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .globs import glob_regex

ROLES = ("core", "command", "agent", "skill", "rule", "template", "reference", "module")
FRONT_MATTER_MODES = ("host", "content")  # read as metadata, or kept as the file's own text
EXTRACTOR_KINDS = ("front_matter", "mention", "prose_paths", "links")
EDGE_LOADS = ("immediate", "on_demand", "lazy", "soft")
RULE_KEYS = ("match", "role", "tier", "load", "when", "templating", "front_matter", "requires", "budget")
EXTRACTOR_KEYS = ("kind", "field", "pattern", "target", "load", "match", "ignore_case")


@dataclass(frozen=True, slots=True)
class When:
    """A trigger: written out, or taken from the file: a front-matter field, or the first line of its
    body that a pattern matches (its first group; ``heading`` means the first Markdown heading)."""

    text: str = ""
    field: str | None = None
    line: str | None = None

    def of(self, meta: dict, body: str) -> str:
        if self.field is not None:
            value = meta.get(self.field, "")
            return value if isinstance(value, str) else str(value)
        if self.line is not None:
            pattern = r"^#{1,6}[ \t]+(.+?)[ \t#]*$" if self.line == "heading" else self.line
            match = _compiled(pattern, False, re.M).search(body)
            return (match.group(1) if match and match.groups() else match.group(0) if match else "").strip()
        return self.text


@dataclass(frozen=True, slots=True)
class Rule:
    match: tuple[str, ...]
    line: int  # in the config, for messages
    role: str | None = None
    tier: str | None = None
    load: str | None = None
    when: When | None = None
    templating: bool | None = None
    front_matter: str | None = None
    requires: tuple[Any, ...] = ()
    budget: Any = None

    def matches(self, path: str) -> bool:
        return any(glob_regex(pattern).fullmatch(path) for pattern in self.match)


@dataclass(frozen=True, slots=True)
class Extractor:
    """Where a framework writes references tokeffc would not otherwise see."""

    kind: str  # front_matter | mention | prose_paths | links
    line: int
    load: str = "soft"  # immediate | on_demand | lazy | soft (offered; the text stays as written)
    field: str | None = None  # front_matter: the list field
    pattern: str | None = None  # mention: a regex with a (?P<name>...) group
    target: str | None = None  # a glob with {name}
    match: tuple[str, ...] = ()  # which files it reads; empty: every file (hidden folders too)
    ignore_case: bool = True

    def applies_to(self, path: str) -> bool:
        return not self.match or any(glob_regex(pattern).fullmatch(path) for pattern in self.match)

    @property
    def regex(self) -> re.Pattern[str] | None:
        if self.pattern is None:
            return None
        return _compiled(self.pattern, self.ignore_case)


_COMPILED: dict[tuple[str, bool, int], re.Pattern[str]] = {}


def _compiled(pattern: str, ignore_case: bool, flags: int = 0) -> re.Pattern[str]:
    key = (pattern, ignore_case, flags)
    if key not in _COMPILED:
        _COMPILED[key] = re.compile(pattern, (re.I if ignore_case else 0) | flags)
    return _COMPILED[key]


def first_rule(rules: tuple[Rule, ...], path: str) -> Rule | None:
    for rule in rules:
        if rule.matches(path):
            return rule
    return None


Problem = Callable[[tuple[str, ...], str, str], None]  # (key path, message, hint)


class RuleReader:
    """Checks ``rules:`` and ``extractors:`` entries, reporting through the config's problem list."""

    def __init__(self, problem: Problem, lines: dict[tuple[str, ...], int], tiers: tuple[str, ...],
                 load_kinds: tuple[str, ...], name: str = ""):
        self.problem, self.lines, self.tiers, self.load_kinds = problem, lines, tiers, load_kinds
        self.name = name  # the framework's (a plugin's) name: "{plugin}" in a pattern stands for it

    def rules(self, value: Any, key: str = "rules") -> tuple[Rule, ...]:
        if not isinstance(value, list):
            self.problem((key,), f"'{key}' must be a list of {{match: glob, ...}}", "see README, 'Rules'")
            return ()
        return tuple(r for i, item in enumerate(value) if (r := self.rule(item, (key, str(i)))) is not None)

    def rule(self, item: Any, where: tuple[str, ...]) -> Rule | None:
        if not isinstance(item, dict) or "match" not in item:
            self.problem(where, f"{'.'.join(where)} must be a mapping with 'match:'", 'e.g. - match: "docs/**"')
            return None
        self._unknown(item, RULE_KEYS, where)
        return Rule(
            match=self._globs(item["match"], (*where, "match")),
            line=self._line(where),
            role=self._choice(item, "role", ROLES, where),
            tier=self._choice(item, "tier", self.tiers, where),
            load=self._choice(item, "load", self.load_kinds, where),
            when=self._when(item.get("when"), (*where, "when")),
            templating=self._flag(item, "templating", where),
            front_matter=self._choice(item, "front_matter", FRONT_MATTER_MODES, where),
            requires=tuple(item.get("requires", ())) if isinstance(item.get("requires", ()), list) else (),
            budget=item.get("budget"),
        )

    def extractors(self, value: Any) -> tuple[Extractor, ...]:
        if not isinstance(value, list):
            self.problem(("extractors",), "'extractors' must be a list", "see README, 'Extractors'")
            return ()
        found = (self.extractor(item, ("extractors", str(i))) for i, item in enumerate(value))
        return tuple(e for e in found if e is not None)

    def extractor(self, item: Any, where: tuple[str, ...]) -> Extractor | None:
        if not isinstance(item, dict) or item.get("kind") not in EXTRACTOR_KINDS:
            self.problem(where, f"{'.'.join(where)} needs kind: one of {', '.join(EXTRACTOR_KINDS)}", "")
            return None
        self._unknown(item, EXTRACTOR_KEYS, where)
        kind = item["kind"]
        if isinstance(item.get("pattern"), str):
            item = {**item, "pattern": item["pattern"].replace("{plugin}", re.escape(self.name))}
        needs = {"front_matter": ("field", "target"), "mention": ("pattern", "target")}.get(kind, ())
        for key in needs:
            if not isinstance(item.get(key), str) or not item[key]:
                self.problem((*where, key), f"a {kind} extractor needs '{key}'", "see README, 'Extractors'")
                return None
        if kind == "mention" and not self._pattern_ok(item["pattern"], item.get("ignore_case", True), where):
            return None
        return Extractor(kind=kind, line=self._line(where),
                         load=self._choice(item, "load", EDGE_LOADS, where) or "soft",
                         field=item.get("field"), pattern=item.get("pattern"), target=item.get("target"),
                         match=self._globs(item["match"], (*where, "match")) if "match" in item else (),
                         ignore_case=bool(item.get("ignore_case", True)))

    def _pattern_ok(self, pattern: str, ignore_case: bool, where: tuple[str, ...]) -> bool:
        try:
            regex = _compiled(pattern, bool(ignore_case))
        except re.error as exc:
            self.problem((*where, "pattern"), f"pattern is not a valid regular expression ({exc})", "")
            return False
        if "name" not in regex.groupindex:
            self.problem((*where, "pattern"), "pattern needs a (?P<name>...) group", "it names the target")
            return False
        return True

    def _globs(self, value: Any, where: tuple[str, ...]) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            self.problem(where, f"{'.'.join(where)} must be a glob or a list of globs", 'e.g. "skills/*/SKILL.md"')
            return ()
        return tuple(values)

    def _choice(self, item: dict, key: str, allowed: tuple[str, ...], where: tuple[str, ...]) -> Any:
        value = item.get(key)
        if value is not None and value not in allowed:
            self.problem((*where, key), f"{'.'.join(where)}.{key} must be one of {', '.join(allowed)}",
                         f"got {value!r}")
            return None
        return value

    def _flag(self, item: dict, key: str, where: tuple[str, ...]) -> bool | None:
        value = item.get(key)
        if value is not None and not isinstance(value, bool):
            self.problem((*where, key), f"{'.'.join(where)}.{key} must be true or false", "")
            return None
        return value

    def _when(self, value: Any, where: tuple[str, ...]) -> When | None:
        if value is None:
            return None
        if isinstance(value, str):
            return When(value)
        if isinstance(value, dict) and set(value) == {"front_matter"} and isinstance(value["front_matter"], str):
            return When(field=value["front_matter"])
        if isinstance(value, dict) and set(value) == {"line"} and isinstance(value["line"], str):
            if value["line"] == "heading" or self._regex_ok(value["line"], (*where, "line")):
                return When(line=value["line"])
            return None
        self.problem(where, f"{'.'.join(where)} must be text, {{front_matter: field}} or {{line: pattern}}",
                     "e.g. when: {front_matter: description}, or when: {line: heading}")
        return None

    def _regex_ok(self, pattern: str, where: tuple[str, ...]) -> bool:
        try:
            re.compile(pattern)
        except re.error as exc:
            self.problem(where, f"not a valid regular expression ({exc})", "")
            return False
        return True

    def _unknown(self, item: dict, allowed: tuple[str, ...], where: tuple[str, ...]) -> None:
        for key in sorted(map(str, item)):
            if key not in allowed:
                self.problem((*where, key), f"unknown key '{key}' in {'.'.join(where)}",
                             f"known keys: {', '.join(allowed)}")

    def _line(self, where: tuple[str, ...]) -> int:
        return self.lines.get(where) or self.lines.get(where[:1]) or 0
