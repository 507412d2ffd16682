"""The Claude Code target: a project's ``CLAUDE.md`` and ``.claude/`` tree, as Claude Code uses them.

Layout (paths relative to the project root)::

    CLAUDE.md                               what loads at session start: the session bundle
    .claude/commands/<id>.md                a command (a BMAD agent: <agent>.md; its commands: <agent>/<command>.md)
    .claude/commands/<id>-<tier>.md         the same command at another tier (--tier T2, --all-tiers)
    .claude/agents/<name>.md                a subagent
    .claude/skills/<name>/SKILL.md          a skill: its own text compiled; its files as chunks
    .claude/rules/<name>.md                 a rule with ``paths:``: the host reads it when a matching file is touched
    .claude/tokeffc/<name>.md               a module on request, by the shortest end of its id that names it
                                            alone (another tier's: .claude/tokeffc/<tier>/<name>.md)
    .claude/tokeffc/ledger.json             the files this install wrote, with their sha256

Claude Code loads ``CLAUDE.md`` first in every session (and in every subagent), so a command's or an
agent's file holds its bundle without what ``CLAUDE.md`` already holds. Modules on request are files
the index names by path, for the Read tool. Skills are listed by the host, so no index offers them
again. Every entry keeps its front matter as written, without tokeffc's key.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import yaml

from ..assemble import Assembler, Bundle, Chunk, short_names
from ..baseline import Baselines, measure_baselines
from ..budgets import BudgetCheck
from ..entries import SESSION_ID, Entry
from ..errors import Notice, Span, TokeffcError, UsageError
from ..graph import Framework
from ..markdown import split_front_matter
from ..parse import Document
from ..pipeline import BuildOptions, BuildResult, compile_framework, plugin_builds
from ..rendering import Renderings, render_all
from ..selection import Placement, Selection, chunk_children, in_tier, is_path_rule, select_bundles
from ..sources import DocPath
from ..yamlio import read_yaml
from .imports import without_imports
from .ledger import LEDGER, Changes, apply_changes, plan_changes

TARGET = "claude-code"
OWN_CORE = ("(At the {tier} tier the always-loaded text differs from CLAUDE.md's: this tier's follows, "
            "whole, and stands in for it.)\n\n")
CHUNKS = ".claude/tokeffc"
DEFAULT_INTO = ("dist", "claude-code")  # under the framework's root


@dataclass(frozen=True, slots=True)
class InstallOptions:
    build: BuildOptions = BuildOptions()  # config, preset, passes; ``commands`` limits what is installed
    tiers: tuple[str, ...] = ()  # the first is installed as <id>.md (default: the smallest tier every entry has)
    all_tiers: bool = False  # every other tier too, as <id>-<tier>.md
    into: Path | None = None  # the project (default: ROOT/dist/claude-code)
    allow_over: bool = False  # install even when a bundle is over its budget


@dataclass(frozen=True, slots=True)
class InstalledFile:
    path: str  # relative to the project root
    data: bytes
    kind: str  # session | command | agent | skill | rule | chunk
    name: str  # the entry's or the module's id
    tier: str
    tokens: int  # exact: tiktoken's count of ``data``
    structure: int  # tokens of tokeffc's own lines (index, pointers, left-out lines, separators)
    sources: tuple[str, ...]  # ids of the documents whose text it holds, in order
    head: str | None = None  # the document whose front matter heads the file
    baseline: int | None = None  # command, agent: what the host loads for it today (host rule)


@dataclass(frozen=True, slots=True)
class SessionStart:
    """What Claude Code loads in every session with this install, against what it loads today."""

    claude_md: int
    listing: int  # skills' names and descriptions, as the baseline counts them
    baseline: int  # the host baseline's always-loaded tokens (listing included)

    @property
    def tokens(self) -> int:
        return self.claude_md + self.listing


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything an install writes, before it is written."""

    project: Path
    result: BuildResult
    tiers: tuple[str, ...]  # the primary tier first
    files: tuple[InstalledFile, ...]  # sorted by path
    session: SessionStart
    over: tuple[BudgetCheck, ...]  # installed bundles over their budget
    notices: tuple[Notice, ...] = ()

    @property
    def owner(self) -> str:
        config = self.result.framework.config
        return f"{config.name} {config.version}"


@dataclass(frozen=True, slots=True)
class Installed:
    layout: Layout
    changes: Changes | None  # None: nothing written (a bundle over budget)

    @property
    def written(self) -> bool:
        return self.changes is not None


def install_claude_code(root: Path, options: InstallOptions = InstallOptions()) -> Installed:
    """Compile ROOT, lay it out for Claude Code and install it (unless a bundle is over budget)."""
    layout = plan_claude_code(root, options)
    if layout.over and not options.allow_over:
        return Installed(layout, None)
    changes = plan_changes(layout.project, {f.path: f.data for f in layout.files}, layout.owner)
    apply_changes(changes)
    return Installed(layout, changes)


def plan_claude_code(root: Path, options: InstallOptions = InstallOptions()) -> Layout:
    """Compile ROOT and lay out every file of the install, with exact counts; nothing is written."""
    root, build = _one_plugin(Path(root), options.build)
    project = _project(root, options.into)
    inside = (project,) if project.resolve().is_relative_to(root.resolve()) else ()  # never read back as a source
    result = compile_framework(root, replace(build, commands=(), tiers=(), exclude_dirs=(*build.exclude_dirs, *inside)))
    entries = _entries(result, build.commands)
    tiers = _tiers(result.framework, entries, options)
    return _Layouter(result, tiers).layout(project, entries)


def _one_plugin(root: Path, build: BuildOptions) -> tuple[Path, BuildOptions]:
    builds = plugin_builds(root, build)
    if len(builds) > 1:
        raise UsageError(f"'{root}' is a marketplace of {len(builds)} plugins",
                         hint="install one plugin at a time: pass its folder as ROOT")
    return builds[0]


def _project(root: Path, into: Path | None) -> Path:
    if into is None:
        return root.joinpath(*DEFAULT_INTO)
    project = Path(into)
    if not project.is_dir():
        raise UsageError(f"--into '{into}' is not a folder", hint="pass the root folder of an existing project")
    inside = root.resolve() == project.resolve() or root.resolve().is_relative_to((project / ".claude").resolve())
    if inside:
        raise UsageError(f"--into '{into}' holds the framework's own sources",
                         hint="install into another project (the default is ROOT/dist/claude-code)")
    return project


def _entries(result: BuildResult, asked: tuple[str, ...]) -> tuple[Entry, ...]:
    entries = tuple(e for e in result.entries if e.role != "session")
    _refuse_unknown("command", asked, [e.id for e in entries])
    return tuple(e for e in entries if not asked or e.id in asked)


def _tiers(framework: Framework, entries: tuple[Entry, ...], options: InstallOptions) -> tuple[str, ...]:
    """The primary tier first (asked, or the smallest that every entry has), then the others asked for."""
    config = framework.config
    _refuse_unknown("tier", options.tiers, config.tier_names)
    smallest = max((config.tier_rank(e.tier) for e in entries), default=0)
    primary = options.tiers[0] if options.tiers else config.tier_names[smallest]
    others = config.tier_names if options.all_tiers else options.tiers
    return tuple(dict.fromkeys((primary, *others)))


def _refuse_unknown(what: str, asked: tuple[str, ...], known) -> None:
    for name in asked:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            raise UsageError(f"unknown {what} '{name}'",
                             hint=f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known) or 'none'}")


class _Layouter:
    """Scratch state for one layout: the path assembler, the session per tier, the files so far."""

    def __init__(self, result: BuildResult, tiers: tuple[str, ...]):
        self.result, self.tiers, self.primary = result, tiers, tiers[0]
        self.framework = framework = result.framework
        self.renderings = without_imports(framework, _with_session(result), result.counter)
        self.assembler = Assembler(framework, self.renderings, result.counter, result.passes,
                                   _Locator(framework, self.primary), how="path")
        self.sessions = {s.tier: s for s in select_bundles(framework, self.renderings, (_session_entry(framework),))}
        self.skills = tuple(d.path for d in framework.of_role("skill") if in_tier(framework, d.path, self.primary))
        self.hosted = (*self.skills, *_path_rules(framework, self.primary))  # the host offers these itself
        self.installed = _without_offered(self.sessions[self.primary], self.hosted)
        self.files: dict[str, InstalledFile] = {}
        self.bundles: list[Bundle] = []
        self.released = {(b.selection.entry.id, b.tier): b for b in result.bundles}
        self.prefixes: dict[str, Bundle] = {}
        self.host = host_baselines(result, self.renderings)

    def layout(self, project: Path, entries: tuple[Entry, ...]) -> Layout:
        claude_md = self._session()
        for path in self.hosted:
            self._chunk(path, self.installed)
        for entry in entries:
            for tier in self._tiers_of(entry):
                self._entry(entry, tier)
        for bundle in self.bundles:
            for placement, _ in bundle.chunks:
                self._chunk(placement.path, bundle.selection)
        files = tuple(sorted(self.files.values(), key=lambda f: f.path))
        return Layout(project, self.result, self.tiers, files, self._session_start(claude_md), self._over(files),
                      tuple(_agents_without_read(self.framework, files)))

    def _tiers_of(self, entry: Entry) -> list[str]:
        """The primary tier (or the entry's smallest, when that is above it), then the other tiers it has."""
        config = self.framework.config
        first = self.primary if config.tier_rank(entry.tier) <= config.tier_rank(self.primary) else entry.tier
        if entry.role == "skill":
            return []  # installed as a skill from its own text, like every skill
        if entry.role == "agent":
            return [first]  # the host knows an agent by its name: the primary tier only
        others = (t for t in self.tiers[1:] if config.tier_rank(entry.tier) <= config.tier_rank(t))
        return [first, *(t for t in others if t != first)]

    def _session(self) -> int:
        """CLAUDE.md: the session bundle at the primary tier (nothing, when nothing is always loaded)."""
        bundle = self.assembler.bundle(self.installed)
        self.bundles.append(bundle)
        text = bundle.content.data
        if text.strip():
            self._add(self._file("CLAUDE.md", text, "session", SESSION_ID, self.primary, bundle, set()))
        return self._count(text)

    def _entry(self, entry: Entry, tier: str) -> None:
        prefix = self._prefix(tier)
        released = self.released[(entry.id, tier)]  # every entry has a bundle at each tier it has
        moved = self._moved(released, prefix)
        bundle = self.assembler.bundle(_view(released.selection, self.sessions[tier], self.installed, self.hosted,
                                             moved))
        self.bundles.append(bundle)
        if prefix.content.data == self._prefix(self.primary).content.data:
            body = _after(prefix.content.data, bundle.content.data, entry, self.framework)
            held = {d.path for d in prefix.content.docs}
        else:  # CLAUDE.md holds another tier's always-loaded text: this file carries its own tier's, whole
            body, held = OWN_CORE.format(tier=tier).encode("utf-8") + bundle.content.data, set()
        doc = self.framework.documents[entry.path] if entry.path else None
        head = host_head(doc) if doc else ""
        kind = {"agent": "agent", "skill": "skill"}.get(entry.role, "command")
        path = entry_path(entry, doc, tier, tier == self._tiers_of(entry)[0])
        self._add(self._file(path, head.encode("utf-8") + body, kind, entry.id, tier, bundle, held, head,
                             doc.id if head and doc else None, self._baseline(entry)))

    def _moved(self, released: Bundle, prefix: Bundle) -> tuple[DocPath, ...]:
        """Modules an always-loaded file names that CLAUDE.md defers but this entry loads at once: in the
        entry's file, they follow what CLAUDE.md holds (in the order the bundle had them)."""
        selection, session = released.selection, self.sessions[released.tier]
        named = {ref.target for d in prefix.content.docs
                 for ref in self.renderings.get(self.framework, d.path, released.tier, selection.entry.id).refs}
        order = {d.path: index for index, d in enumerate(released.content.docs)}
        moved = [p for p in named if p in selection.immediate and p not in session.immediate]
        return tuple(sorted(moved, key=lambda p: (order.get(p, len(order)), p)))

    def _prefix(self, tier: str) -> Bundle:
        """What CLAUDE.md holds, as this tier's bundles begin: the always-loaded files and their sections."""
        if tier not in self.prefixes:
            self.prefixes[tier] = self.assembler.bundle(_prefix(self.sessions[tier], self.installed))
        return self.prefixes[tier]

    def _chunk(self, path: DocPath, selection: Selection) -> None:
        """A module on request as the file the index names, and, in turn, every module its own index names."""
        waiting = [path]
        while waiting:
            current = waiting.pop()
            if self._chunk_file(current, selection):
                children = chunk_children(self.framework, self.renderings, selection.entry, selection.tier, current)
                waiting += [child.path for child in children]

    def _chunk_file(self, path: DocPath, selection: Selection) -> bool:
        """Add a module's file (a skill's with its front matter); False when that very file is there already."""
        chunk = self.assembler.chunk(path, selection)
        where = self.assembler.locator(chunk)
        doc = self.framework.documents[path]
        kind = "skill" if where.endswith("/SKILL.md") else "rule" if where.startswith(".claude/rules/") else "chunk"
        head = host_head(doc) if kind != "chunk" else ""
        data = head.encode("utf-8") + chunk.content.data
        if where in self.files and self.files[where].data == data:
            return False
        self._add(InstalledFile(where, data, kind, chunk.id, chunk.tier, self._count(data),
                                chunk.content.structure, tuple(d.id for d in chunk.content.docs),
                                doc.id if head else None))
        return True

    def _file(self, path: str, data: bytes, kind: str, name: str, tier: str, bundle: Bundle, held: set[DocPath],
              head: str = "", head_of: str | None = None, baseline: int | None = None) -> InstalledFile:
        docs = [d for d in bundle.content.docs if d.path not in held]
        tokens = self._count(data)
        structure = tokens - self._count(head.encode("utf-8")) - sum(d.emitted for d in docs)
        return InstalledFile(path, data, kind, name, tier, tokens, structure, tuple(d.id for d in docs), head_of,
                             baseline)

    def _add(self, file: InstalledFile) -> None:
        old = self.files.get(file.path)
        if file.path == LEDGER or old is not None and old.data != file.data:
            other = old.name if old else "the install ledger"
            raise TokeffcError(f"'{file.name}' and '{other}' would both be installed as {file.path}",
                               hint="rename one of them (a deferred module whose text reads tokeffc.command has "
                                    "one text per command: Claude Code reads one file)")
        self.files[file.path] = file

    def _count(self, data: bytes) -> int:
        return self.result.counter.count(data.decode("utf-8"))

    def _baseline(self, entry: Entry) -> int | None:
        return self.host.per_entry.get(entry.id)

    def _session_start(self, claude_md: int) -> SessionStart:
        listed = [self.framework.documents[p] for p in self.skills
                  if self.framework.documents[p].role in self.framework.config.listing]
        listing = self._count(listing_lines(listed).encode("utf-8")) if listed else 0
        return SessionStart(claude_md, listing, self.host.always_tokens)

    def _over(self, files: tuple[InstalledFile, ...]) -> tuple[BudgetCheck, ...]:
        installed = {(f.name, f.tier) for f in files if f.kind in ("command", "agent", "skill")}
        return tuple(c for c in self.result.checks if c.status == "over" and (c.command, c.tier) in installed)


# --- what each file holds -----------------------------------------------------------------------

def _session_entry(framework: Framework) -> Entry:
    return Entry(SESSION_ID, "session", None, framework.config.tier_names[0])


def _with_session(result: BuildResult) -> Renderings:
    """The build's renderings, with the session's own where a document's text names the entry."""
    if any(e.role == "session" for e in result.entries) or not any(
            "command" in d.template.variables for d in result.framework.documents.values()):
        return result.renderings
    extra = render_all(result.framework, (_session_entry(result.framework),), result.counter, result.passes)
    return Renderings({**extra.docs, **result.renderings.docs}, result.renderings.written)


def _listed(selection: Selection) -> set[DocPath]:
    """What a bundle's index lists (as the assembler decides): modules offered by what is in the bundle."""
    return {p.path for p in selection.chunks if p.via in selection.immediate or p.via == p.path}


def _path_rules(framework: Framework, tier: str) -> tuple[DocPath, ...]:
    """Rules the host reads on its own when a file matching their ``paths:`` is touched."""
    return tuple(d.path for d in framework.of_role("rule") if is_path_rule(d) and in_tier(framework, d.path, tier))


def _without_offered(selection: Selection, hosted: tuple[DocPath, ...]) -> Selection:
    """No index offers an installed skill or path rule for its own sake: Claude Code offers those already."""
    return replace(selection, chunks=tuple(p for p in selection.chunks if not _offered_by_host(p, hosted)))


def _offered_by_host(placement: Placement, hosted: tuple[DocPath, ...]) -> bool:
    return placement.path in hosted and placement.via == placement.path


def _prefix(session: Selection, installed: Selection) -> Selection:
    """The part of a tier's session that CLAUDE.md holds: its always-loaded files and their sections."""
    held = set(installed.sections)
    return replace(session, sections=tuple(s for s in session.sections if s in held), dropped=(), chunks=())


def _view(selection: Selection, session: Selection, installed: Selection, hosted: tuple[DocPath, ...],
          moved: tuple[DocPath, ...] = ()) -> Selection:
    """An entry's bundle laid out after CLAUDE.md: what CLAUDE.md holds comes first (and is cut away), then
    the modules CLAUDE.md defers but the entry loads at once (``moved``: deferred where CLAUDE.md names them,
    each with a section of its own, what it offers still listed), then the rest; CLAUDE.md's index and
    left-out lines are not repeated."""
    first = _prefix(session, installed).sections
    listed, dropped = _listed(installed), {d.path for d in installed.dropped}
    chunks = (p for p in selection.chunks if p.path not in listed and not _offered_by_host(p, hosted))
    return replace(selection, sections=(*first, *moved, *(s for s in selection.sections if s not in first + moved)),
                   immediate=selection.immediate - set(moved),
                   chunks=tuple(replace(p, via=p.path) if p.via in moved else p for p in chunks),
                   dropped=tuple(d for d in selection.dropped if d.path not in dropped))


def _after(prefix: bytes, text: bytes, entry: Entry, framework: Framework) -> bytes:
    """``text`` without its first part, which must be CLAUDE.md's (the always-loaded files) byte for byte."""
    cut = prefix.rstrip(b"\n") + b"\n" if prefix.strip() else b""
    if not text.startswith(cut):
        raise TokeffcError(f"'{entry.id}' changes the always-loaded text that CLAUDE.md holds",
                           _naming_entry(framework),
                           "Claude Code loads one CLAUDE.md for every command: keep always-loaded files free of "
                           "tokeffc.command, and let no command load at once a module they name but defer")
    return text[len(cut):].lstrip(b"\n")


def _naming_entry(framework: Framework) -> Span | None:
    names = [d.path for d in framework.documents.values() if "command" in d.template.variables]
    return Span(names[0], 1) if names else None


def host_baselines(result: BuildResult, renderings: Renderings) -> Baselines:
    """What Claude Code loads today, whatever baseline the config reports against (the host rule)."""
    framework = result.framework
    host = replace(framework, config=replace(framework.config, baseline="host"))
    return measure_baselines(host, result.entries, renderings, result.counter)


def listing_lines(docs: list[Document]) -> str:
    """The host's listing of skills, one line each, as the baseline counts it."""
    return "".join(f"- {d.meta_value('name') or d.name}: {' '.join(str(d.meta_value('description') or '').split())}\n"
                   for d in docs)


def _agents_without_read(framework: Framework, files: tuple[InstalledFile, ...]) -> Iterator[Notice]:
    """An agent whose ``tools`` leave out Read cannot open the modules its index names."""
    for file in files:
        if file.kind != "agent" or b"\n## Modules on request\n" not in b"\n" + file.data:
            continue
        doc = next(d for d in framework.documents.values() if d.id == file.name)
        tools = doc.meta_value("tools")
        names = tools if isinstance(tools, list) else str(tools).replace(",", " ").split() if tools else None
        if names is not None and "Read" not in names:
            yield Notice(Span(doc.path, 1), f"agent '{file.name}' has modules on request but its 'tools' leave out "
                                            "Read; add Read so that it can open them")


# --- names and front matter ----------------------------------------------------------------------

class _Locator:
    """Where a module on request is installed: the path its index line gives the Read tool."""

    def __init__(self, framework: Framework, primary: str):
        self.framework, self.primary = framework, primary
        self.names = short_names(framework)  # the shortest trailing part of its id no other document's ends with

    def __call__(self, chunk: Chunk) -> str:
        doc = self.framework.documents[chunk.path]
        if doc.role == "skill" and chunk.tier == self.primary:
            return f".claude/skills/{skill_name(doc)}/SKILL.md"
        if is_path_rule(doc) and chunk.tier == self.primary:
            return f".claude/rules/{rule_name(doc)}"
        extension = posixpath.splitext(chunk.path)[1] or ".md"
        folder = CHUNKS if chunk.tier == self.primary else f"{CHUNKS}/{chunk.tier}"
        return f"{folder}/{self.names[chunk.path]}{extension}"


def entry_path(entry: Entry, doc: Document | None, tier: str, first: bool) -> str:
    """A command at ``.claude/commands/<id>.md`` (``<id>-<tier>.md`` at another tier), an agent at
    ``.claude/agents/<name>.md``, a skill at ``.claude/skills/<name>/SKILL.md``."""
    if entry.role == "agent" and doc is not None:
        return f".claude/agents/{doc.name}.md"
    if entry.role == "skill" and doc is not None:
        return f".claude/skills/{skill_name(doc)}/SKILL.md"
    return f".claude/commands/{entry.id}{'' if first else '-' + tier}.md"


def skill_name(doc: Document) -> str:
    """A skill's folder name (Claude Code names a skill by its folder)."""
    path = PurePosixPath(doc.path)
    return path.parent.name if path.name == "SKILL.md" and path.parent.name else doc.name


def rule_name(doc: Document) -> str:
    """A rule's path under the rules folder, as written (``.claude/rules/api/auth.md`` -> ``api/auth.md``)."""
    parts = PurePosixPath(doc.path).parts
    last = max((i for i, part in enumerate(parts) if part == "rules"), default=len(parts) - 2)
    return "/".join(parts[last + 1:])


def host_head(doc: Document) -> str:
    """The document's front matter as the host reads it: as written, in its order, without tokeffc's key."""
    return without_our_key(doc.head, doc.path)


def without_our_key(head: str, where: str = "") -> str:
    """A head (front matter, its fences and the blank lines after) without the ``tokeffc:`` key's lines."""
    split = split_front_matter(head)
    if split.front_matter is None:
        return ""
    try:
        parsed = read_yaml(split.front_matter, where, first_line=2, label="YAML front matter")
    except TokeffcError:
        return head  # read leniently, as the host does: tokeffc's key is never in such a head
    if not isinstance(parsed.data, dict) or "tokeffc" not in parsed.data:
        return head
    rest = {k: v for k, v in parsed.data.items() if k != "tokeffc"}
    lines = head.splitlines(keepends=True)
    closing = next(i for i in range(len(lines) - 1, 0, -1) if lines[i].strip() == "---")  # its index
    if not rest:
        return ""
    if split.front_matter.lstrip().startswith("{"):  # a flow mapping: written anew, keys in the source's order
        return "---\n" + yaml.safe_dump(rest, sort_keys=False, allow_unicode=True, width=10 ** 6) + "".join(
            lines[closing:])
    start = parsed.key_lines[("tokeffc",)]
    end = min((line for key, line in parsed.key_lines.items() if len(key) == 1 and line > start), default=closing + 1)
    return "".join(lines[:start - 1] + lines[end - 1:])  # lines of the file: the head starts at line 1


__all__ = ["TARGET", "InstallOptions", "InstalledFile", "Installed", "Layout", "SessionStart",
           "install_claude_code", "plan_claude_code", "entry_path", "host_head", "without_our_key", "skill_name"]
