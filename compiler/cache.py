"""The build cache: content-addressed, on disk, never stale by construction.

Three kinds of entry live under the cache folder (``TOKEFFC_CACHE_DIR``, else ``$XDG_CACHE_HOME/tokeffc``,
else ``~/.cache/tokeffc``):

* ``releases/<key>/``: a whole build, keyed by everything its output depends on: the compiler's
  version and its own files' bytes, the options, the config file's bytes, and the path and bytes of
  every file under the root (so a reference that starts to resolve, a file added or removed, changes
  the key). It holds the release archive, the build report, the report's table cut (what a rebuild
  that prints the table reads) and the digest of each file of the release folder. A rebuild with
  nothing changed reads the report and, when the output already holds that release, writes nothing.
* ``files/<sha256 of a folder's path>.<FORMAT>.marshal``: for a root's files, an output folder's files and
  the folder an archive is in, each file's sha256 beside the stat signature it was read under
  (device, inode, size, mtime and ctime in nanoseconds), so that a rebuild reads only the files whose
  signature moved, as git's index does. A digest is recorded only for a file whose mtime and ctime
  were already ``SETTLED_NS`` in the past when it was read: any later write sets the ctime (which no
  tool can set back) past the recorded one, so a recorded digest is never trusted for bytes it was
  not taken from.
* ``counts/<encoding identity>.<FORMAT>.marshal``: token counts of texts already tokenized, keyed by a digest of
  the text, so that a rebuild after an edit tokenizes only what changed (and loads no encoding when
  nothing needs counting).

Entries are written to a temporary name and renamed into place, so two builds sharing the cache never
see half an entry; an entry whose digests do not match what it says it holds is ignored and rebuilt.
Every marshalled file is checked against a sha256 before marshal reads it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import marshal
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from . import __version__

FORMAT = 7  # bump when an entry's layout changes
SETTLED_NS = 2_000_000_000  # a file changed less than this long ago is read again by every build
MAX_COUNTS = 2_000_000  # digests kept per encoding; past this the store starts afresh
SKIPPED_FOLDERS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".tox"})  # a build never
# reads under these (sources.py walks the root by them too)


def cache_folder() -> Path:
    configured = os.environ.get("TOKEFFC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tokeffc"


@dataclass(frozen=True, slots=True)
class CachedRelease:
    report: dict[str, Any]  # the build report (or its table cut), ``written`` left empty
    archive_sha256: str  # what the entry's archive must hash to
    archive_path: Path
    release_id: str
    name: str
    version: str
    files: dict[str, str]  # every file of the release folder (manifest.json too): its sha256

    def archive_intact(self) -> bool:
        """Whether the entry's .tokb still matches its digest (read only when the output must be written)."""
        data = _read(self.archive_path)
        return data is not None and hashlib.sha256(data).hexdigest() == self.archive_sha256


class ReleaseKey(NamedTuple):
    """A build's cache key, and the sha256 of each file under the root that went into it."""

    key: str
    files: dict[str, str]  # relative path -> sha256 (hex)

    def matches(self, documents: Iterable[tuple[str, str]]) -> bool:
        """Whether these (path, sha256), every document a build compiled, are the files the key was made of."""
        return all(self.files.get(path) == sha256 for path, sha256 in documents)


class FileDigests:
    """Files' sha256, each remembered beside the stat signature it was read under (git's index, in small).

    A file whose signature is the recorded one is not read again. A digest is recorded only for a file
    whose mtime and ctime were already ``SETTLED_NS`` old when it was read (see the module's docstring).
    """

    def __init__(self, record: Path):
        self.record = record
        self.recorded = _load_sealed(record)
        self.kept: dict[str, tuple] = {}
        self.settled_before = time.time_ns() - SETTLED_NS

    def digest(self, key: str, path: Path | str, stat: os.stat_result) -> bytes | None:
        """The file's sha256 (None when it cannot be read); ``stat`` is the file's, taken before reading it."""
        signature = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        known = self.recorded.get(key)
        if type(known) is tuple and len(known) == 6 and known[:5] == signature and type(known[5]) is bytes:
            file_digest = known[5]
        else:
            data = _read(path)
            if data is None:
                return None
            file_digest = hashlib.sha256(data).digest()
        if max(stat.st_mtime_ns, stat.st_ctime_ns) < self.settled_before:
            self.kept[key] = (*signature, file_digest)
        return file_digest

    def save(self) -> None:
        """Write the record back, when what this build would record differs from what was recorded."""
        if self.kept != self.recorded:
            _write_file(self.record, _sealed(self.kept))


class BuildCache:
    """One cache folder; every method is safe to call when the folder is missing or damaged."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._code: str | None = None  # tokeffc's own files' digest, taken once

    # --- whole releases ---------------------------------------------------------------------

    def release_key(self, root: Path, config_path: Path | None, options: tuple, exclude: tuple[Path, ...]) \
            -> ReleaseKey:
        """What a build of ``root`` depends on, hashed: tokeffc, the options, the config and every file under it."""
        digest = hashlib.sha256(f"tokeffc {__version__} {self._code_digest()} cache {FORMAT} marshal {marshal.version} "
                                f"{sys.version_info[:2]}\0{options!r}\0".encode())
        config = Path(config_path) if config_path else Path(root) / "tokeffc.yaml"
        digest.update(_read(config) or b"<no config>")
        files = self.tree_digests(Path(root), {p.resolve() for p in exclude})
        for rel, file_digest in files:
            digest.update(f"\0{rel}\0".encode())
            digest.update(file_digest)
        return ReleaseKey(digest.hexdigest(), {rel: file_digest.hex() for rel, file_digest in files})

    def _code_digest(self) -> str:
        """tokeffc's own files (code and presets): a source checkout edited between builds misses the cache."""
        if self._code is None:
            digest = hashlib.sha256()
            for rel, file_digest in self.tree_digests(Path(__file__).resolve().parent, suffixes=(".py", ".yaml")):
                digest.update(f"{rel}\0".encode())
                digest.update(file_digest)
            self._code = digest.hexdigest()
        return self._code

    def tree_digests(self, root: Path, excluded: set[Path] | None = None, suffixes: tuple[str, ...] | None = None) \
            -> list[tuple[str, bytes]]:
        """(relative path, sha256) of every file under the root (only names ending in ``suffixes``), sorted."""
        known = self._digests(root)
        found = []
        for rel, path, stat in _tree(root, excluded or set()):
            file_digest = known.digest(rel, path, stat) if suffixes is None or rel.endswith(suffixes) else None
            if file_digest is not None:
                found.append((rel, file_digest))
        known.save()
        return found

    def file_sha256(self, path: Path) -> str | None:
        """One file's sha256 (hex) through the record of its folder; None when it is missing or unreadable."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        known = self._digests(path.parent)
        found = known.digest(path.name, path, stat)
        known.save()
        return found.hex() if found is not None else None

    def _digests(self, folder: Path) -> FileDigests:
        """The digests recorded for the files under ``folder`` (a root, or an output folder)."""
        name = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()
        return FileDigests(self.folder / "files" / f"{name}.{FORMAT}.marshal")

    def get_release(self, key: str, *, table_only: bool = False) -> CachedRelease | None:
        """The entry, with its report, or with ``table_only`` the report's table cut (each checked against
        its digest); the archive is checked when it is read."""
        entry = self.folder / "releases" / key
        part = "table" if table_only else "report"
        try:
            meta = json.loads((entry / "entry.json").read_bytes())
            report_bytes = (entry / f"{part}.marshal").read_bytes()
            if not isinstance(meta, dict) or hashlib.sha256(report_bytes).hexdigest() != meta.get(f"{part}_sha256"):
                return None  # damaged or truncated: rebuild
            report = _unmarshal(report_bytes)
            files = meta["files"]
            if not isinstance(report, dict) or not isinstance(files, dict):
                return None
            return CachedRelease(report, meta["archive_sha256"], entry / "release.tokb", meta["release_id"],
                                 meta["name"], meta["version"], files)
        except (OSError, ValueError, KeyError, EOFError, TypeError):
            return None

    def put_release(self, key: str, reports: Mapping[str, dict[str, Any]], archive: bytes, release_id: str,
                    name: str, version: str, files: Mapping[str, str]) -> None:
        """Store a build: ``reports`` holds its report (``"report"``) and the report's table cut (``"table"``)."""
        kept = {part: marshal.dumps(reports[part]) for part in ("report", "table")}  # plain data: fast to read back
        meta = {"release_id": release_id, "name": name, "version": version, "files": dict(files),
                "archive_sha256": hashlib.sha256(archive).hexdigest(),
                **{f"{part}_sha256": hashlib.sha256(data).hexdigest() for part, data in kept.items()}}
        entry = {"release.tokb": archive, **{f"{part}.marshal": data for part, data in kept.items()},
                 "entry.json": json.dumps(meta).encode()}
        self._publish(self.folder / "releases" / key, entry)

    # --- token counts -----------------------------------------------------------------------

    def counts(self, identity: str) -> dict[bytes, int]:
        """The counts kept for an encoding (``tokens.encoding_identity``), by a digest of each text."""
        data = _load_sealed(self._counts_path(identity))
        if not all(type(k) is bytes and type(v) is int for k, v in data.items()):
            return {}
        return data

    def put_counts(self, identity: str, counts: dict[bytes, int]) -> None:
        if len(counts) > MAX_COUNTS:
            counts = dict(list(counts.items())[-MAX_COUNTS // 2:])
        _write_file(self._counts_path(identity), _sealed(counts))

    def _counts_path(self, identity: str) -> Path:
        return self.folder / "counts" / f"{identity}.{FORMAT}.marshal"

    # --- housekeeping -----------------------------------------------------------------------

    def clear(self) -> int:
        """Remove every entry; returns how many bytes were freed."""
        import shutil

        size = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file()) if self.folder.is_dir() else 0
        shutil.rmtree(self.folder, ignore_errors=True)
        return size

    def _publish(self, target: Path, files: dict[str, bytes]) -> None:
        """A folder written whole under a temporary name, then renamed into place (or left to a twin)."""
        import shutil  # here, not above: a cache hit never writes, and shutil pulls in three compressors

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.parent / f".{target.name}.{os.getpid()}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            for name, data in files.items():
                (staging / name).write_bytes(data)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        except OSError:
            shutil.rmtree(target.parent / f".{target.name}.{os.getpid()}.tmp", ignore_errors=True)

def _write_file(target: Path, data: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        staging.write_bytes(data)
        os.replace(staging, target)
    except OSError:
        pass  # a cache that cannot be written is a slower build, not a failed one


def _read(path: Path | str) -> bytes | None:
    try:
        with open(path, "rb", buffering=0) as file:
            return file.read()
    except OSError:
        return None


def _unmarshal(data: bytes) -> Any:
    """``marshal.loads`` with the cycle collector paused: the tens of thousands of small dicts and lists a
    report holds would set it off again and again, for nothing (plain data has no cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return marshal.loads(data)
    finally:
        if was_enabled:
            gc.enable()


def _sealed(data: dict) -> bytes:
    """``data`` marshalled behind the sha256 of the bytes: a damaged file is told before marshal reads it
    (marshal trusts its input; a few garbage bytes can ask it for gigabytes)."""
    payload = marshal.dumps(data)
    return hashlib.sha256(payload).digest() + payload


def _load_sealed(path: Path) -> dict:
    """What :func:`_sealed` wrote to ``path``; empty when it is missing or damaged."""
    sealed = _read(path) or b""
    digest, payload = sealed[:32], sealed[32:]
    if len(digest) < 32 or hashlib.sha256(payload).digest() != digest:
        return {}
    try:
        data = _unmarshal(payload)
    except (ValueError, EOFError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _tree(root: Path, excluded: set[Path]) -> list[tuple[str, str, os.stat_result]]:
    """(relative path, path, stat) of every file under the root, sorted; the folders a build never reads skipped."""
    excluded_names = {p.name for p in excluded}
    stack, found = [(str(root), "")], []
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                # A real folder's resolved path ends in its own name: resolve only the ones that could match.
                if entry.name not in SKIPPED_FOLDERS and not (entry.name in excluded_names and
                                                      Path(entry.path).resolve() in excluded):
                    stack.append((entry.path, prefix + entry.name + "/"))
            elif entry.is_file():
                try:
                    found.append((prefix + entry.name, entry.path, entry.stat()))
                except OSError:
                    continue
    return sorted(found, key=lambda item: item[0])


