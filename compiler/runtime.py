"""Load a compiled release at run time. Standard library and zstandard only.

    from tokeffc.runtime import Release
    rel = Release.open("dist/acme-1.4.0.tokb")   # verifies every sha256
    ctx = rel.context("task", tier="minimal")     # or complexity=3
    ctx.text, ctx.tokens, ctx.cache_key, ctx.chunks
    rel.chunk("quality/gates").text

Cache keys are content hashes: a cache keyed by them never needs invalidation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ArchiveError, Span
from .pack import ARCHIVE_SUFFIX, unpack_archive

MANIFEST_NAME = "manifest.json"
SCHEMA = "tokeffc.manifest/2"
COMPLEXITY_LEVELS = 5


# A release that cannot be trusted (missing, truncated, tampered) or does not hold what was asked.
ReleaseError = ArchiveError


@dataclass(frozen=True, slots=True)
class ChunkRef:
    id: str
    load: str  # on_demand | lazy
    when: str
    tokens: int
    cache_key: str
    path: str


@dataclass(frozen=True, slots=True)
class Context:
    command: str
    tier: str
    text: str
    tokens: int
    cache_key: str
    chunks: tuple[ChunkRef, ...]


@dataclass(frozen=True, slots=True)
class ChunkText:
    id: str
    text: str
    tokens: int
    cache_key: str


class Release:
    """A verified release: every file's sha256 matched the manifest when it was opened."""

    def __init__(self, manifest: dict, files: dict[str, bytes], source: str):
        self.manifest = manifest
        self._files = files
        self.source = source

    @classmethod
    def open(cls, path: str | Path) -> "Release":
        path = Path(path)
        files = _read_release(path)
        manifest_bytes = files.get(MANIFEST_NAME)
        if manifest_bytes is None:
            raise ReleaseError("no manifest.json in the release", Span(str(path)), "point at a tokeffc release")
        manifest = _parse_manifest(manifest_bytes, path)
        _verify(manifest, files, path)
        return cls(manifest, files, str(path))

    @property
    def release_id(self) -> str:
        return hashlib.sha256(self._files[MANIFEST_NAME]).hexdigest()

    @property
    def tiers(self) -> tuple[str, ...]:
        return tuple(sorted(self.manifest["tiers"], key=lambda t: self.manifest["tiers"][t]["rank"]))

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(sorted({b["command"] for b in self.manifest["bundles"]}))

    def tier_for_complexity(self, complexity: int) -> str:
        """Complexity 1-5 maps evenly onto the tiers, smallest first (3 tiers: 1-2, 3-4, 5)."""
        if not isinstance(complexity, int) or not 1 <= complexity <= COMPLEXITY_LEVELS:
            raise ValueError(f"complexity must be an integer from 1 to {COMPLEXITY_LEVELS}, got {complexity!r}")
        tiers = self.tiers
        return tiers[min(len(tiers) - 1, (complexity - 1) * len(tiers) // COMPLEXITY_LEVELS)]

    def context(self, command: str, tier: str | None = None, complexity: int | None = None) -> Context:
        """The bundle for a command at a tier; a command with no bundle there gets its next larger tier."""
        if (tier is None) == (complexity is None):
            raise ValueError("give exactly one of tier= or complexity=")
        wanted = tier if tier is not None else self.tier_for_complexity(complexity)
        if wanted not in self.tiers:
            raise ReleaseError(f"unknown tier '{wanted}'", hint=f"tiers are: {', '.join(self.tiers)}")
        entry = self._bundle_entry(command, wanted)
        return Context(
            command=command, tier=entry["tier"], text=self._text(entry["path"]), tokens=entry["tokens"],
            cache_key=entry["cache_key"],
            chunks=tuple(ChunkRef(c["id"], c["load"], c["when"], c["tokens"], c["cache_key"], c["path"])
                         for c in entry["chunks"]),
        )

    def chunk(self, module_id: str, tier: str | None = None, command: str | None = None) -> ChunkText:
        """A deferred module's text; name the tier (and command) when its text differs between them."""
        found = {}
        for bundle in self.manifest["bundles"]:
            if (tier is None or bundle["tier"] == tier) and (command is None or bundle["command"] == command):
                for c in bundle["chunks"]:
                    if c["id"] == module_id:
                        found[c["path"]] = c
        if not found:
            raise ReleaseError(f"no chunk '{module_id}'" + (f" at tier '{tier}'" if tier else ""),
                               hint="see a context's .chunks for the ids it lists")
        if len(found) > 1:
            raise ReleaseError(f"chunk '{module_id}' differs between tiers or commands", hint="pass tier= and command=")
        entry = next(iter(found.values()))
        return ChunkText(module_id, self._text(entry["path"]), entry["tokens"], entry["cache_key"])

    def _bundle_entry(self, command: str, tier: str) -> dict:
        entries = {b["tier"]: b for b in self.manifest["bundles"] if b["command"] == command}
        if not entries:
            raise ReleaseError(f"no command '{command}' in this release",
                               hint=f"commands are: {', '.join(self.commands)}")
        for candidate in self.tiers[self.tiers.index(tier):]:
            if candidate in entries:
                return entries[candidate]
        raise ReleaseError(f"command '{command}' has no bundle at tier '{tier}' or above",
                           hint=f"it has: {', '.join(entries)}")

    def _text(self, path: str) -> str:
        return self._files[path].decode("utf-8")


def _read_release(path: Path) -> dict[str, bytes]:
    if path.is_file() and path.name.endswith(ARCHIVE_SUFFIX):
        return _strip_prefix(unpack_archive(path), path)
    folder = path.parent if path.name == MANIFEST_NAME else path
    if not (folder / MANIFEST_NAME).is_file():
        raise ReleaseError("not a release: no manifest.json", Span(str(path)),
                           "pass a .tokb, a release folder or its manifest.json")
    manifest = _parse_manifest((folder / MANIFEST_NAME).read_bytes(), folder)
    files = {MANIFEST_NAME: (folder / MANIFEST_NAME).read_bytes()}
    for name in manifest.get("files", {}):
        if name.startswith("/") or ".." in name.split("/"):
            raise ReleaseError(f"manifest lists '{name}', outside the release", Span(str(folder)),
                               "rebuild the release")
        target = folder / name
        if not target.is_file():
            raise ReleaseError(f"missing file '{name}'", Span(str(folder)), "rebuild the release")
        files[name] = target.read_bytes()
    return files


def _strip_prefix(files: dict[str, bytes], path: Path) -> dict[str, bytes]:
    """Archive entries are ``<name>/<version>/<path>``: drop the two leading parts."""
    stripped = {}
    for name, data in files.items():
        parts = name.split("/", 2)
        if len(parts) != 3:
            raise ReleaseError(f"unexpected entry '{name}'", Span(str(path)), "the archive was not made by tokeffc")
        stripped[parts[2]] = data
    return stripped


def _parse_manifest(data: bytes, path: Path) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReleaseError(f"manifest.json is not valid JSON ({exc})", Span(str(path)), "rebuild the release") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise ReleaseError(f"manifest schema is not {SCHEMA}", Span(str(path)), "rebuild with this tokeffc version")
    return manifest


def _verify(manifest: dict, files: dict[str, bytes], path: Path) -> None:
    listed = manifest.get("files", {})
    for name, digest in sorted(listed.items()):
        data = files.get(name)
        if data is None:
            raise ReleaseError(f"missing file '{name}'", Span(str(path)), "rebuild the release")
        if hashlib.sha256(data).hexdigest() != digest:
            raise ReleaseError(f"'{name}' does not match its sha256 in the manifest (tampered or damaged)",
                               Span(str(path)), "rebuild the release or fetch it again")
    extra = sorted(set(files) - set(listed) - {MANIFEST_NAME})
    if extra:
        raise ReleaseError(f"'{extra[0]}' is not listed in the manifest", Span(str(path)), "rebuild the release")
