"""The fidelity check: every difference between an output and its sources is one the README allows.

It reads only what a user has: the framework's files, the release's files and its manifest. For each
bundle and chunk, each source document it holds is aligned line by line with the output (difflib);
every source line missing from the output must be one of:

* whitespace (blank lines; lines compare without trailing blanks or CR);
* tokeffc's own syntax: its front-matter key, its tags, an ``@`` import line (the file's text or a
  one-line pointer stands instead), or text inside a ``{% if tokeffc.… %}`` block, line breaks
  included: text that ends its line with such an ``{% if %}`` keeps no line break of its own (the
  break is the first branch's), so when that branch is not taken the text joins the first line of the
  branch that is (after an ``{% elif %}`` or ``{% else %}``), or the first line after the block; an
  output line that is exactly such a join is read as the two lines it joins;
* front matter the host reads (commands, agents, skills, rules: carried to the manifest instead);
* checkpoint reasoning (or a ``reasoning_headings`` section) at a tier that compresses;
* an HTML comment, when ``strip_comments`` ran;
* a paragraph or section whose identical copy stands earlier in the same output, from another file,
  with a pointer line to it.

Every output line must come from a source it holds or be one of tokeffc's own lines. Every YAML or
JSON source an output holds stands in it byte for byte, so it parses to the same data.

A tree installed for Claude Code (``check_installed``) holds the same texts, laid out for the host,
and the README's rule for that target allows exactly two more differences:

* an ``@path`` mention (outside code, as Claude Code reads one) that names a file of the framework is
  written without its ``@``: tokeffc placed that file's text, or a line pointing to it, so the host
  must not attach it again; a mention of a run-time file or of nothing (the manifest's ``external``
  and ``missing``) keeps it;
* an entry's file begins with its source's front matter, line for line, without tokeffc's key; and a
  command's or agent's file comes after ``CLAUDE.md``, so a pointer may name a copy that stands there.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tokeffc.manifest import Manifest, read_manifest

HOST_READ_ROLES = ("command", "agent", "skill", "rule")
MENTION = re.compile(r"(?<![^\s(])@((?:\\ |[^\s`@()<>\"'\[\]{}|,;])+)")  # as Claude Code reads an @ import
MENTION_END = ".,;:!?)'\"]}>*_"
CODE_SPAN = re.compile(r"(`+)(?:(?!\1)(?!\n[ \t]*\n)[\s\S])+?\1")
STRUCTURE = [re.compile(p) for p in (
    r"^## Modules on request$",
    r"^When a trigger below applies, .+ before you go on\.$",
    r"^- `[^`]+` \([\w-]+, \d+ tokens(, only if needed)?\): .*$",
    r'^\(Module "[^"]+" is included above\.\)$',
    r'^\(Not loaded here: "[^"]+"; see "Modules on request"\.\)$',
    r'^\(Module "[^"]+", \d+ tokens, is left out at the \S+ tier; it belongs to \S+ and above\.\)$',
    r"^\(At the \S+ tier the always-loaded text differs from CLAUDE\.md's: this tier's follows, whole, and stands "
    r"in for it\.\)$",  # an installed command file at a tier whose core differs from CLAUDE.md's
)]
POINTER = re.compile(r'^\(Repeated text left out: the (?:paragraph|section) that begins "(.*)…" stands above, '
                     r'in "([^"]+)"\.\)$')
OUR_TAG = re.compile(r"\{%-?\s*(if|elif|else|endif|include)\b(.*?)-?%\}")
CHECKPOINT = re.compile(r"<checkpoint\b[^>]*>(.*?)</checkpoint>", re.S)
OUR_VALUE = re.compile(r"\{\{-?\s*tokeffc\s*\.\s*(tier|command|framework|version)\s*-?\}\}")
SHOWN_AS_WRITTEN = re.compile(r"<!--.*?-->|(?:\A\n*|\n[ \t]*\n)(?: {4}|\t)[^\n]*(?:\n(?: {4}|\t)[^\n]*)*", re.S)
CONCLUSION = re.compile(r"<conclusion>(.*?)</conclusion>", re.S)
IMPORT_LINE = re.compile(r"^\s*@\S+\.\w+\s*$")
FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")


@dataclass(frozen=True)
class Held:
    """What an installed file holds: its documents in order, and how it was laid out."""

    ids: tuple[str, ...]
    tier: str
    command: str
    head: str | None = None  # the document whose front matter heads the file
    after: str | None = None  # the installed file the host loads before it (CLAUDE.md)


@dataclass(frozen=True)
class Join:
    """Text before an ``{% if tokeffc.… %}`` that ends its line, and the lines it may run into."""

    text: str  # as written before the tag, trailing blanks included
    then: frozenset[str]  # the first line of each later branch, and the first line after the block


@dataclass
class Source:
    path: str
    role: str
    text: str
    lines: list[str]  # without line endings, CR and trailing blanks
    allowed: list[str]  # per line: why it may be missing ("" = it must stand in the output)
    joins: tuple[Join, ...] = ()  # texts that end their line with one of tokeffc's {% if %} tags


def check_fidelity(root: Path, files: dict[str, bytes], reasoning_headings: tuple[str, ...] = ()) -> list[str]:
    """Every problem, as 'output:line: ...' or 'source:line: ...'; an empty list means faithful."""
    manifest = read_manifest(files["manifest.json"])
    problems: list[str] = []
    checker = _Checker(root, manifest, reasoning_headings)
    checked = set()
    for bundle in manifest.bundles:
        ids = [m.id for m in bundle.modules]
        compress = manifest.tiers[bundle.tier].compress
        if (bundle.sha256, tuple(ids), compress, bundle.command) in checked:
            continue  # the same text from the same sources under the same rules (another tier)
        checked.add((bundle.sha256, tuple(ids), compress, bundle.command))
        problems += checker.check(bundle.path, files[bundle.path].decode("utf-8"), ids, bundle.tier, bundle.command)
    seen = set()
    for bundle in manifest.bundles:
        for chunk in bundle.chunks:
            if chunk.path not in seen:
                seen.add(chunk.path)
                text = files[chunk.path].decode("utf-8")
                problems += checker.check(chunk.path, text, list(chunk.modules), bundle.tier, bundle.command)
    return problems


def check_installed(root: Path, manifest_json: bytes, tree: dict[str, bytes], holds: dict[str, Held],
                    reasoning_headings: tuple[str, ...] = ()) -> list[str]:
    """The same check over the files of an installed tree, under the target's two extra rules."""
    checker = _Checker(root, read_manifest(manifest_json), reasoning_headings, installed=True)
    problems = []
    for name, held in sorted(holds.items()):
        context = tree[held.after].decode("utf-8") if held.after else ""
        problems += checker.check(name, tree[name].decode("utf-8"), list(held.ids), held.tier, held.command,
                                  held.head, context)
    return problems


class _Checker:
    def __init__(self, root: Path, manifest: Manifest, reasoning_headings: tuple[str, ...], installed: bool = False):
        self.root, self.manifest, self.headings = root, manifest, {h.lstrip("#").strip().lower()
                                                                    for h in reasoning_headings}
        self.paths = {**{k: v.path for k, v in manifest.modules.items()},
                      **{k: v.path for k, v in manifest.commands.items()}}
        self.roles = {**{k: v.role for k, v in manifest.modules.items()},
                      **{k: v.role for k, v in manifest.commands.items()}}
        self.passes = {p.name for p in manifest.passes}
        self.installed = installed
        self.unresolved = {(r.at, r.written) for r in (*manifest.external, *manifest.missing)}
        self._sources: dict[tuple[str, str, str], Source] = {}
        self._data: dict[str, object] = {}

    def check(self, name: str, text: str, ids: list[str], tier: str, command: str, head: str | None = None,
              context: str = "") -> list[str]:
        out = [line.rstrip(" \t\r") for line in text.split("\n")]
        out = _unjoined(out, [j for doc_id in ids for j in self.source(doc_id, tier, command).joins])
        claimed = [not line.strip() or any(p.match(line) for p in STRUCTURE) for line in out]
        problems, owned, start = [], [False] * len(out), 0
        if head is not None:
            start = self._head(name, out, claimed, owned, self.source(head, tier, command), problems)
        for doc_id in ids:  # in the order they were written: a line one document matched is not another's
            source = self.source(doc_id, tier, command)
            if source.path.lower().endswith((".yaml", ".yml", ".json")):
                problems += self._data_file(name, text, source)
            problems += self._align(name, out, claimed, owned, source, start, context)
            start = next((k for k in range(start, len(out)) if owned[k]), start)  # the next starts after it
        for index, line in enumerate(out):
            if not claimed[index] and not POINTER.match(line):
                problems.append(f"{name}:{index + 1}: text from no source it holds: {line[:80]!r}")
        return problems

    def source(self, doc_id: str, tier: str, command: str) -> Source:
        key = (doc_id, tier, command)
        if key not in self._sources:
            path = self.paths[doc_id]
            text = (self.root / path).read_text(encoding="utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
            values = {"tier": tier, "command": command, "framework": self.manifest.framework,
                      "version": self.manifest.version}
            text = _outside_code(text, lambda prose: OUR_VALUE.sub(lambda m: values[m.group(1)], prose))
            prose = path.lower().endswith((".md", ".markdown", ".txt"))
            if prose and self.manifest.tiers[tier].compress and "checkpoints" in self.passes:
                text = _conclude(text)  # the rule itself: a checkpoint stands as its conclusion
            lines = [line.rstrip(" \t") for line in text.split("\n")]
            if "strip_comments" in self.passes and path.lower().endswith((".md", ".markdown")):
                fenced = _fence_mask(lines)
                lines = [re.sub(r"<!--.*?-->", "", line).rstrip(" \t") if "-->" in line and not code else line
                         for line, code in zip(lines, fenced)]
            joins = tuple(_joins(lines)) if prose else ()
            allowed = self._allowed(path, self.roles[doc_id], lines, tier)
            if self.installed and path.lower().endswith((".md", ".markdown", ".txt")):
                lines = self._imports_as_words(path, lines)
            self._sources[key] = Source(path, self.roles[doc_id], text, lines, allowed, joins)
        return self._sources[key]

    def _imports_as_words(self, path: str, lines: list[str]) -> list[str]:
        """The lines with the '@' taken off each mention of a framework file (outside front matter and code)."""
        prose = ["" if code else line for line, code in zip(lines, _fence_mask(lines))]
        end = _front_matter_end(lines) if path.lower().endswith((".md", ".markdown")) else None
        for index in range(end + 1 if end is not None else 0):
            prose[index] = ""
        text = "\n".join(" " * len(line) if not kept else line for line, kept in zip(lines, prose))
        spans = [m.span() for m in CODE_SPAN.finditer(text)]
        cuts = []
        for match in MENTION.finditer(text):
            written = match.group(1).rstrip(MENTION_END).split("#", 1)[0].replace("\\ ", " ")
            stem, dot, extension = written.rsplit("/", 1)[-1].rpartition(".")
            line = text.count("\n", 0, match.start())
            if (not (stem and dot and extension.isalnum()) or any(a <= match.start() < b for a, b in spans)
                    or (f"{path}:{line + 1}", written) in self.unresolved):
                continue
            cuts.append((line, match.start() - (text.rfind("\n", 0, match.start()) + 1)))
        lines = list(lines)
        for line, column in reversed(cuts):
            lines[line] = lines[line][:column] + lines[line][column + 1:]
        return lines

    def _head(self, name: str, out: list[str], claimed: list[bool], owned: list[bool], source: Source,
              problems: list[str]) -> int:
        """The entry's front matter at the top, as written, without tokeffc's key: claimed, and skipped."""
        expected = _host_head(source.lines)
        if out[:len(expected)] != expected:
            problems.append(f"{name}:1: does not begin with the front matter of {source.path} (without tokeffc's key)")
            return 0
        for index in range(len(expected)):
            claimed[index] = owned[index] = True
        return len(expected)

    def _allowed(self, path: str, role: str, lines: list[str], tier: str) -> list[str]:
        allowed = ["" if line.strip() else "whitespace" for line in lines]
        markdown = path.lower().endswith((".md", ".markdown"))
        if markdown:
            _front_matter(lines, allowed, role)
        if markdown or path.lower().endswith(".txt"):
            _prose(lines, allowed, self.manifest.tiers[tier].compress and "checkpoints" in self.passes,
                   self.headings, "strip_comments" in self.passes)
        return allowed

    def _align(self, name: str, out: list[str], claimed: list[bool], owned: list[bool], source: Source,
               start: int, context: str = "") -> list[str]:
        free = [line if not owned[k] or not line.strip() else "\x00" for k, line in enumerate(out[start:], start)]
        matcher = difflib.SequenceMatcher(_blank, source.lines, free, autojunk=False)
        problems, text = [], "\n".join(out)
        for op, s1, s2, o1, o2 in matcher.get_opcodes():
            o1, o2 = o1 + start, o2 + start
            if op == "equal":
                for k in range(o1, o2):
                    claimed[k] = owned[k] = True
            elif op in ("delete", "replace"):
                problems += self._missing(name, text, out, o1, source, s1, s2, context)
        return problems

    def _missing(self, name: str, text: str, out: list[str], at: int, source: Source, s1: int, s2: int,
                 context: str = "") -> list[str]:
        problems, run = [], []
        for index in range(s1, s2 + 1):
            if index < s2 and (not source.allowed[index] or run and source.allowed[index] == "whitespace"):
                run.append(index)
                continue
            while run and not source.lines[run[-1]].strip():
                run.pop()
            if run and not self._deduplicated(text, out, at, source, run, context):
                problems.append(f"{source.path}:{run[0] + 1}: missing from {name} without a rule that allows it: "
                                f"{source.lines[run[0]][:80]!r}")
            run = []
        return problems

    def _deduplicated(self, text: str, out: list[str], at: int, source: Source, run: list[int],
                      context: str = "") -> bool:
        """A removed paragraph or section: its copy stands earlier (in the output, or in what the host loads
        before it), from another file, and a pointer names it."""
        removed = "\n".join(source.lines[run[0]:run[-1] + 1]).strip()
        normalised = " ".join(removed.split())
        for index, line in enumerate(out):
            match = POINTER.match(line)
            if not match or not normalised.startswith(match.group(1)):
                continue
            earlier = "\n".join([context, *out[:index]] if context else out[:index])
            other = self.paths.get(match.group(2)) or next(
                (p for i, p in self.paths.items() if i.endswith("/" + match.group(2))), None)
            if removed in earlier and other != source.path:
                return True
        return False

    def _data_file(self, name: str, text: str, source: Source) -> list[str]:
        """Byte for byte inside a bundle; a chunk file of its own must also parse to the same data."""
        body = source.text.strip("\n")
        if body not in text:
            return [f"{source.path}:1: YAML/JSON source does not stand byte for byte in {name}"]
        if not name.endswith((".yaml", ".yml", ".json")):
            return []
        if self._parsed(source.path, source.text) != self._parsed(name, text):
            return [f"{source.path}:1: parses differently in {name}"]
        return []

    def _parsed(self, key: str, text: str):
        if key not in self._data:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            self._data[key] = json.loads(text) if key.endswith(".json") else yaml.load(text, Loader=loader)
        return self._data[key]


def _conclude(text: str) -> str:
    """``<checkpoint>…<conclusion>X</conclusion>…</checkpoint>`` as ``X``, outside fenced code."""
    lines = text.split("\n")
    out, run, fenced = [], [], _fence_mask(lines)
    for line, code in zip(lines, fenced):
        if code:
            out.append(_conclusions("\n".join(run))) if run else None
            out.append(line)
            run = []
        else:
            run.append(line)
    if run:
        out.append(_conclusions("\n".join(run)))
    return "\n".join(out)


def _conclusions(text: str) -> str:
    """Each checkpoint as its conclusion, but one Markdown shows as written (in a code span, an HTML comment
    or an indented code block after a blank line)."""
    literal = [m.span() for m in CODE_SPAN.finditer(text)] + [m.span() for m in SHOWN_AS_WRITTEN.finditer(text)]

    def one(match: re.Match) -> str:
        conclusion = CONCLUSION.search(match.group(1))
        if conclusion is None or any(a <= match.start() < b for a, b in literal):
            return match.group(0)
        return conclusion.group(1).strip()

    return CHECKPOINT.sub(one, text)


def _outside_code(text: str, change) -> str:
    """``change`` applied to the text outside fenced code and code spans (where tokeffc's syntax is read)."""
    lines = text.split("\n")
    out, run = [], []
    for line, code in zip(lines, _fence_mask(lines)):
        if code:
            out += ([_outside_spans("\n".join(run), change)] if run else []) + [line]
            run = []
        else:
            run.append(line)
    return "\n".join(out + ([_outside_spans("\n".join(run), change)] if run else []))


def _outside_spans(prose: str, change) -> str:
    pieces, last = [], 0
    for match in CODE_SPAN.finditer(prose):
        pieces += [change(prose[last:match.start()]), match.group(0)]
        last = match.end()
    return "".join([*pieces, change(prose[last:])])


def _fence_mask(lines: list[str]) -> list[bool]:
    """Per line, whether it is fenced code (fence lines included), as CommonMark pairs fences: a fence
    closes only with the same character, at least as long, and nothing after it."""
    mask, opener = [], ""
    for line in lines:
        match = FENCE.match(line)
        if match and not opener:
            opener = match.group(1)
            mask.append(True)
        elif match and opener and match.group(1)[0] == opener[0] and len(match.group(1)) >= len(opener) \
                and not line[match.end():].strip():
            opener = ""
            mask.append(True)
        else:
            mask.append(bool(opener))
    return mask


def _blank(line: str) -> bool:
    return not line.strip() or line == "\x00"


def _front_matter_end(lines: list[str]) -> int | None:
    if not lines or lines[0].strip() != "---":
        return None
    return next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)


def _host_head(lines: list[str]) -> list[str]:
    """The front matter lines (and the blank lines after them) without the lines of tokeffc's key."""
    end = _front_matter_end(lines)
    if end is None:
        return []
    keys = [i for i in range(1, end) if re.match(r"[A-Za-z_][\w-]*\s*:", lines[i])]
    ours = [i for i in keys if lines[i].startswith("tokeffc:")]
    dropped = {i for start in ours for i in range(start, next((k for k in keys if k > start), end))}
    if keys and all(k in ours for k in keys):
        return []
    after = end + 1
    while after < len(lines) and not lines[after].strip():
        after += 1
    return [line for i, line in enumerate(lines[:after]) if i not in dropped]


def _front_matter(lines: list[str], allowed: list[str], role: str) -> None:
    if not lines or lines[0].strip() != "---":
        return
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        return
    if role in HOST_READ_ROLES:
        for i in range(0, end + 1):
            allowed[i] = "front matter the host reads"
        return
    keys = [i for i in range(1, end) if re.match(r"[A-Za-z_][\w-]*\s*:", lines[i])]
    ours = [i for i in keys if lines[i].startswith("tokeffc:")]
    for start in ours:
        stop = next((k for k in keys if k > start), end)
        for i in range(start, stop):
            allowed[i] = "tokeffc's front matter"
    if all(k in ours for k in keys):
        allowed[0] = allowed[end] = "tokeffc's front matter"


def _joins(lines: list[str]) -> list[Join]:
    """Each text that ends its line with an ``{% if tokeffc.… %}`` (outside code), with the lines it may run
    into: the line after each ``{% elif %}``/``{% else %}`` of that block and the line after its ``{% endif %}``."""
    tags = [(index, tag) for index, (line, fenced) in enumerate(zip(lines, _fence_mask(lines))) if not fenced
            for tag in OUR_TAG.finditer(line)]
    joins = []
    for position, (index, tag) in enumerate(tags):
        line = lines[index]
        before = OUR_TAG.sub("", line[:tag.start()])
        if tag.group(1) != "if" or "tokeffc." not in tag.group(2) or line[tag.end():].strip() or not before.strip():
            continue
        then, depth = set(), 0
        for later, other in tags[position + 1:]:
            kind = other.group(1)
            depth += kind == "if"
            if depth == 0 and kind in ("elif", "else", "endif") and later + 1 < len(lines):
                then.add(OUR_TAG.sub("", lines[later + 1]).rstrip(" \t"))
            if kind == "endif":
                if depth == 0:
                    break
                depth -= 1
        joins.append(Join(before, frozenset(then)))
    return joins


def _unjoined(out: list[str], joins: list[Join]) -> list[str]:
    """Each output line that is exactly such a join, read as the two lines it joins."""
    if not joins:
        return out
    lines = []
    for line in out:
        join = next((j for j in joins if line.startswith(j.text) and line[len(j.text):] in j.then), None)
        lines += [join.text.rstrip(" \t"), line[len(join.text):]] if join else [line]
    return lines


def _prose(lines: list[str], allowed: list[str], compress: bool, headings: set[str], comments: bool) -> None:
    stack, level = [], 0
    text = "\n".join(lines)
    for index, (line, fenced) in enumerate(zip(lines, _fence_mask(lines))):
        if fenced:
            continue
        if IMPORT_LINE.match(line):
            allowed[index] = "an @ import line"
        kept = line
        spans = [m.span() for m in CODE_SPAN.finditer(line)]
        for tag in (t for t in OUR_TAG.finditer(line) if not any(a <= t.start() < b for a, b in spans)):
            kind, argument = tag.group(1), tag.group(2)
            if kind == "if":
                stack.append("tokeffc." in argument)
            ours = kind == "include" or (stack and stack[-1])
            if kind == "endif" and stack:
                stack.pop()
            if ours:  # tokeffc's tag goes; the framework's text beside it stays
                kept = kept.replace(tag.group(0), "", 1)
                allowed[index] = "tokeffc's tag" if not kept.strip() else ""
        lines[index] = kept.rstrip(" \t") if kept.strip() else kept
        if any(stack) and not allowed[index]:
            allowed[index] = "text inside a tokeffc condition"
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*$", line)
        if heading and level and len(heading.group(1)) <= level:
            level = 0
        if heading and compress and heading.group(2).lower() in headings:
            level = len(heading.group(1))
        if level and compress:
            allowed[index] = "a reasoning section at a compressing tier"
    if comments:
        _spans(text, re.compile(r"<!--.*?-->", re.S), allowed, "an HTML comment (strip_comments)")


def _spans(text: str, regex: re.Pattern[str], allowed: list[str], why: str) -> None:
    for match in regex.finditer(text):
        first, last = text.count("\n", 0, match.start()), text.count("\n", 0, match.end())
        for i in range(first, last + 1):
            allowed[i] = allowed[i] or why
