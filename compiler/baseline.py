"""What a bundle's saving is measured against: the load a user has today, never a load no user has.

``host`` (a preset's frameworks): what the host loads for the entry today. That is the always-loaded
set (core files and everything their ``@`` imports pull in, host rules, and the listing of skills
and agents the host shows in every session: name and description), plus the entry's body and the
files its ``@`` mentions attach; an agent command adds the resources it names. ``all`` (a
tokeffc-native framework, whose host is tokeffc's runtime): core + every module + the entry, as
written.
"""

from __future__ import annotations

from dataclasses import dataclass

from .entries import Entry
from .graph import Framework
from .markdown import split_blocks
from .parse import HOST_READ_ROLES
from .rendering import Renderings
from .selection import always_loaded
from .sources import DocPath
from .tokens import TokenCounter

ATTACHING_KINDS = ("include", "import", "attach")
RULES = {
    "host": "what the host loads today: the always-loaded set (core files and their @ imports, rules, the "
            "listing of what it lists, such as skills) plus the entry's body and the files its @ mentions attach",
    "all": "core + every module + the entry, each file as written",
}


@dataclass(frozen=True, slots=True)
class Baselines:
    kind: str  # host | all
    always: tuple[DocPath, ...]  # loaded for every entry (host), as written
    always_tokens: int  # including the listing
    per_entry: dict[str, int]  # entry id -> baseline tokens

    @property
    def rule(self) -> str:
        return RULES[self.kind]


def measure_baselines(framework: Framework, entries: tuple[Entry, ...], renderings: Renderings,
                      counter: TokenCounter) -> Baselines:
    if framework.config.baseline == "all":
        return _all(framework, entries, renderings)
    return _host(framework, entries, renderings, counter)


def _all(framework: Framework, entries: tuple[Entry, ...], renderings: Renderings) -> Baselines:
    written = renderings.written
    entry_roles = framework.config.entries
    shared = sum(n for p, n in written.items() if framework.documents[p].role not in entry_roles)
    per_entry: dict[str, int] = {e.id: shared + (written[e.path] if e.path else 0) for e in entries}
    return Baselines("all", (), shared, per_entry)


def _host(framework: Framework, entries: tuple[Entry, ...], renderings: Renderings,
          counter: TokenCounter) -> Baselines:
    always = attached_closure(framework, always_loaded(framework))
    listing = counter.count(listing_text(framework)) if framework.config.listing else 0
    always_tokens = sum(renderings.written[p] for p in always) + listing
    per_entry: dict[str, int] = {}
    for entry in entries:
        extra = attached_closure(framework, [p for p in (entry.path, *entry.focus) if p]) - always
        per_entry[entry.id] = always_tokens + sum(_host_tokens(framework, renderings, counter, p) for p in extra)
    return Baselines("host", tuple(sorted(always)), always_tokens, per_entry)


def listing_text(framework: Framework) -> str:
    """What the host lists in every session for skills and agents: one line each, name and description."""
    lines = []
    for doc in framework.of_role(*framework.config.listing):
        name = doc.meta_value("name") or doc.name
        description = doc.meta_value("description") or ""
        lines.append(f"- {name}: {' '.join(str(description).split())}\n")
    return "".join(lines)


def attached_closure(framework: Framework, starts: list[DocPath] | tuple[DocPath, ...]) -> set[DocPath]:
    """``starts`` and every file their includes and ``@`` mentions pull in, transitively."""
    seen, stack = set(), list(starts)
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        stack += [t for t, edges in framework.edges_from(path) if any(e.kind in ATTACHING_KINDS for e in edges)]
    return seen


def _host_tokens(framework: Framework, renderings: Renderings, counter: TokenCounter, path: DocPath) -> int:
    """A file as the host puts it in context: the body alone when the host reads the front matter."""
    doc = framework.documents[path]
    if doc.role in HOST_READ_ROLES and doc.head:
        return counter.count_units(split_blocks(doc.body))
    return renderings.written[path]
