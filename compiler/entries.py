"""What gets a bundle: each entry document (commands, agents...), each command an agent declares
(BMAD's ``commands:``, with the resources it names), and the session start when asked for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import Notice, Span
from .graph import Framework
from .parse import DocId, Document
from .references import yaml_fences
from .sources import DocPath
from .yamlio import try_read_yaml

SESSION_ID = DocId("_session")


@dataclass(frozen=True, slots=True)
class Entry:
    id: DocId  # the bundle's name
    role: str  # command | agent | skill | session | agent-command
    path: DocPath | None  # the entry's own document (None for the session)
    tier: str  # its smallest tier
    parent: DocId | None = None  # an agent command's agent
    focus: tuple[DocPath, ...] = ()  # the resources an agent command names: loaded with it
    command: str = ""  # an agent command's name as the agent lists it


def find_entries(framework: Framework) -> tuple[tuple[Entry, ...], tuple[Notice, ...]]:
    config = framework.config
    entries = [Entry(d.id, d.role, d.path, d.tier) for d in framework.documents.values()
               if d.role in config.entries]
    notes: list[Notice] = []
    if config.agent_commands:
        for entry in list(entries):
            entries += _agent_commands(framework, entry, notes)
    if config.session or not entries:
        entries.append(Entry(SESSION_ID, "session", None, config.tier_names[0]))
    return tuple(entries), tuple(notes)


def _agent_commands(framework: Framework, agent: Entry, notes: list[Notice]) -> Iterator[Entry]:
    """One entry per declared command that names at least one of the agent's declared resources."""
    doc = framework.documents[agent.path]  # type: ignore[index]
    resources = _declared_resources(framework, doc)
    tiers = set(framework.config.tier_names)
    for name, description, line in _declared_commands(doc):
        focus = tuple(path for path, names in resources.items() if _names_any(description, names))
        if not focus:
            continue
        if name in tiers:
            notes.append(Notice(Span(doc.path, line), f"agent command '{name}' is named like a tier; no bundle"))
            continue
        yield Entry(DocId(f"{doc.id}/{name}"), "agent-command", doc.path, doc.tier, doc.id, focus, name)


def _declared_resources(framework: Framework, doc: Document) -> dict[DocPath, tuple[str, ...]]:
    """Each declared dependency's target, with the names a command may call it by (with and without extension)."""
    found: dict[DocPath, tuple[str, ...]] = {}
    for target, edges in framework.edges_from(doc.path):
        for edge in edges:
            if edge.kind == "declared":
                name = edge.written.rsplit("/", 1)[-1]
                stem = name.rsplit(".", 1)[0]
                found[target] = tuple(dict.fromkeys((name, stem)))
    return dict(sorted(found.items()))


def _names_any(description: str, names: tuple[str, ...]) -> bool:
    return _names_pattern(names).search(description) is not None


@lru_cache(maxsize=4096)
def _names_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """Any of the names, as a word of its own (an alternative that matches but is not one is backtracked)."""
    return re.compile(r"(?<![\w.-])(?:" + "|".join(map(re.escape, names)) + r")(?![\w-])")


_COMMAND_NAME = re.compile(r"^\*?([A-Za-z0-9][\w-]*)$")


def _declared_commands(doc: Document) -> Iterator[tuple[str, str, int]]:
    """(name, description, line) for each item of a top-level ``commands:`` in the document's fenced YAML."""
    for fence_line, inside in yaml_fences(doc.body, Span(doc.path, doc.head.count("\n") + 1)):
        if "commands:" not in inside:
            continue
        parsed = try_read_yaml(inside, "", first_line=0)  # as references.py reads it: one read serves both
        if parsed is not None and isinstance(parsed.data, dict):
            yield from _command_items(parsed.data.get("commands"), fence_line)


def _command_items(value: Any, line: int) -> Iterator[tuple[str, str, int]]:
    items = list(value.items()) if isinstance(value, dict) else [
        next(iter(i.items())) if isinstance(i, dict) and len(i) == 1 else tuple(str(i).split(":", 1))
        for i in value] if isinstance(value, list) else []
    for item in items:
        if len(item) != 2:
            continue
        name, description = str(item[0]).strip(), item[1]
        match = _COMMAND_NAME.match(name)
        if match:
            yield match.group(1), description if isinstance(description, str) else str(description), line
