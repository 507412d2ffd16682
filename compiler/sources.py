"""Find and read a framework's files: one bounded walk, sorted, strict UTF-8, never outside the root.

The walk never follows a symlinked folder (so a loop cannot make it explode), never enters ``.git``
or a folder that holds a tokeffc release, and counts what it visits against a limit.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NewType

from .cache import SKIPPED_FOLDERS
from .config import Config
from .errors import Span, TokeffcError, raise_all
from .globs import glob_regex

DocPath = NewType("DocPath", str)  # a file's POSIX path relative to the framework root

MAX_WALKED_FILES = 200_000
MAX_DEPTH = 64
RELEASE_MARKERS = ("manifest.json",)


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: DocPath
    role: str  # core | command | module, before rules refine it
    default_id: str  # id before a rule or front matter may override it
    text: str  # decoded, BOM stripped, line endings as written
    sha256: str  # of the bytes on disk


@dataclass(frozen=True, slots=True)
class Tree:
    """Every file under the root the walk may read, by relative path (sorted)."""

    files: tuple[DocPath, ...]
    index: frozenset[str] = frozenset()

    @classmethod
    def of(cls, files: list[str]) -> Tree:
        ordered = tuple(sorted(DocPath(f) for f in files))
        return cls(ordered, frozenset(ordered))

    def matching(self, pattern: str) -> list[DocPath]:
        regex = glob_regex(pattern)
        return [f for f in self.files if regex.fullmatch(f)]

    def __contains__(self, path: object) -> bool:
        return path in self.index


def walk_tree(config: Config, exclude_dirs: tuple[Path, ...] = ()) -> Tree:
    """Every regular file under the root, bounded, skipping release folders and excluded paths."""
    found: list[str] = []
    excluded = {d.resolve() for d in exclude_dirs}
    own_config = _config_file(config)
    stack = [(config.root, "", 0)]
    while stack:
        folder, prefix, depth = stack.pop()
        for entry in _entries(folder, prefix):
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if _enters(entry, rel, excluded, depth, config):
                    stack.append((Path(entry.path), rel + "/", depth + 1))
            elif entry.is_file() and rel != own_config and not _is_excluded(config, rel):
                found.append(rel)
                if len(found) > MAX_WALKED_FILES:
                    raise TokeffcError(f"more than {MAX_WALKED_FILES:,} files under the root", Span(prefix or "."),
                                       "point tokeffc at the framework's folder, or add 'exclude:' globs")
    return Tree.of(found)


def _config_file(config: Config) -> str | None:
    """The config's path under the root: it holds settings, and is never read as a source."""
    try:
        return config.path.resolve().relative_to(config.root).as_posix()
    except (OSError, ValueError, RuntimeError):
        return None


def _entries(folder: Path, prefix: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        raise TokeffcError(f"cannot read folder: {exc.strerror}", Span(prefix.rstrip("/") or "."),
                           "check its permissions") from None


def _enters(entry: os.DirEntry, rel: str, excluded: set[Path], depth: int, config: Config) -> bool:
    if entry.name in SKIPPED_FOLDERS or _is_excluded(config, rel + "/"):
        return False
    if depth >= MAX_DEPTH:
        raise TokeffcError(f"folders nest deeper than {MAX_DEPTH} levels", Span(rel), "flatten the tree")
    path = Path(entry.path)
    return path.resolve() not in excluded and not is_release_folder(path)


def is_release_folder(path: Path) -> bool:
    """A folder holding a tokeffc release (its manifest), or an output folder of .tokb archives."""
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            with manifest.open("rb") as handle:
                return b'"tokeffc.manifest/' in handle.read(4096)
        except OSError:
            return False
    try:
        return any(name.endswith(".tokb") for name in os.listdir(path))
    except OSError:
        return False


def _is_excluded(config: Config, rel: str) -> bool:
    return any(glob_regex(pattern).fullmatch(rel.rstrip("/")) for pattern in config.exclude)


def id_from_pattern(rel: str, pattern: str) -> str:
    """A file's id: its path below the folders the glob names literally, without the extension.

    ``modules/quality/gates.md`` under ``modules/**/*.md`` is ``quality/gates``;
    ``SuperClaude/Commands/sc/x.md`` under ``**/[Cc]ommands/**/*.md`` is ``sc/x``.
    """
    anchor: list[str] = []
    for part in PurePosixPath(pattern).parts[:-1]:
        if part == "**" and not anchor:
            continue
        if "*" in part:
            break
        anchor.append(part)
    parts = PurePosixPath(rel).parts
    regexes = [glob_regex(a) for a in anchor]
    for start in range(len(parts) - len(anchor)):
        if all(r.fullmatch(parts[start + i]) for i, r in enumerate(regexes)):
            parts = parts[start + len(anchor):]
            break
    return named_id(PurePosixPath(*parts))


FOLDER_NAMED = ("SKILL.md",)  # a skill is named by its folder, as Claude Code names it


def named_id(path: PurePosixPath) -> str:
    """A path's id: without the extension, and a ``SKILL.md`` by its folder (``skills/tdd``)."""
    if path.name in FOLDER_NAMED and len(path.parts) > 1:
        return str(path.parent)
    return str(path.with_suffix(""))


def classify(config: Config, tree: Tree, injected: tuple[DocPath, ...] = ()) -> list[tuple[DocPath, str, str]]:
    """(path, role, default id) for every file the globs name: core in config order, then sorted.

    ``injected`` files (a session hook puts them in every session) are core, after the config's.
    """
    found: dict[DocPath, tuple[str, str]] = {}
    core: list[DocPath] = []
    core_lists = [_expand(config, tree, entry, must_match=not config.preset) for entry in config.core]
    for rel in [*(rel for matches in core_lists for rel in matches), *injected]:
        if rel not in found:
            found[rel] = ("core", named_id(PurePosixPath(rel)))
            core.append(rel)
    for role, patterns in (("command", config.commands), ("module", config.modules)):
        for pattern in patterns:
            for rel in _expand(config, tree, pattern, must_match=False):
                found.setdefault(rel, (role, id_from_pattern(rel, pattern)))
    found.update(_agents_by_name(config, found))
    rest = sorted(p for p in found if p not in core)
    return [(p, *found[p]) for p in (*core, *rest)]


def _agents_by_name(config: Config, found: dict[DocPath, tuple[str, str]]) -> dict[DocPath, tuple[str, str]]:
    """A file a rule makes an agent is known by its file's name, as its host calls it (``x`` for
    ``agents/x.md``), unless another file has that id or would take that name too."""
    names = {}
    for rel, (role, _) in found.items():
        rule = config.rule_for(rel)
        if (rule.role if rule and rule.role else role) == "agent":
            names[rel] = PurePosixPath(rel).stem
    taken = Counter([*(i for rel, (_, i) in found.items() if rel not in names), *names.values()])
    return {rel: (found[rel][0], name) for rel, name in names.items() if taken[name] == 1}


def _expand(config: Config, tree: Tree, pattern: str, must_match: bool) -> list[DocPath]:
    if PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
        raise TokeffcError(f"pattern '{pattern}' leaves the framework root", config.span("core"),
                           "use a path relative to the root")
    matches = tree.matching(pattern)
    if must_match and not matches:
        raise TokeffcError(f"'{pattern}' matches no file", config.span("core"),
                           "fix the path under 'core:' (relative to the root)")
    return matches


def read_source(config: Config, rel: str, role: str, default_id: str, span: Span | None) -> SourceFile:
    """Read one file under the root, refusing escapes, huge files, binaries and non-UTF-8."""
    path = config.root / rel
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        raise TokeffcError(f"cannot resolve '{rel}'", span or Span(rel), "fix the symlink") from None
    if not resolved.is_relative_to(config.root):
        raise TokeffcError(f"'{rel}' resolves outside the framework root", span or Span(rel),
                           "a symlink or path must stay inside the root")
    try:
        size = resolved.stat().st_size
        if size > config.max_file_bytes:
            raise TokeffcError(
                f"file is {_size(size)}, over the {_size(config.max_file_bytes)} limit",
                Span(rel, 1), "split it, or raise max_file_bytes in tokeffc.yaml")
        data = resolved.read_bytes()
    except OSError as exc:
        raise TokeffcError(f"cannot read '{rel}': {exc.strerror}", span or Span(rel), "check the file") from None
    return SourceFile(DocPath(rel), role, default_id, decode_source(data, rel), hashlib.sha256(data).hexdigest())


def decode_source(data: bytes, rel: str) -> str:
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise TokeffcError("binary file (NUL byte)", Span(rel, line), "keep only text files under the globs")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TokeffcError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", Span(rel, line),
                           "re-save the file as UTF-8") from None


def discover_sources(config: Config, tree: Tree, injected: tuple[DocPath, ...] = ()) -> tuple[SourceFile, ...]:
    """Read every file the globs name; problems in several files are reported together."""
    files, problems = [], []
    for rel, role, default_id in classify(config, tree, injected):
        try:
            files.append(read_source(config, rel, role, default_id, None))
        except TokeffcError as exc:
            problems.append(exc)
    raise_all(problems)
    return tuple(files)


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n:,} bytes"
