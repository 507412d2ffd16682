"""A build as the command line runs it: served by the build cache when it can be, else compiled.

This module imports the compiler only on a cache miss, so a rebuild with nothing changed costs little
more than starting the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .cache import BuildCache, CachedRelease, ReleaseKey
from .errors import TokeffcError
from .layout import MANIFEST_NAME

if TYPE_CHECKING:
    from .pipeline import BuildResult, Progress


@dataclass(frozen=True, slots=True)
class BuildOptions:
    config_path: Path | None = None
    release_version: str | None = None
    commands: tuple[str, ...] = ()  # only these entries (ids); all when empty
    tiers: tuple[str, ...] = ()  # only these tiers; all when empty
    disabled_passes: tuple[str, ...] = ()
    exclude_dirs: tuple[Path, ...] = ()  # e.g. the output folder, when it sits inside the root
    preset: str | None = None
    overrides: tuple[tuple[str, object], ...] = ()  # config keys set by the caller (a plugin's name...)
    cache: Path | None = None  # the build cache's folder, or None for no cache

    @property
    def key(self) -> tuple:
        """What, besides the sources, the output depends on (the cache's key includes it)."""
        return (str(self.config_path), self.release_version, self.commands, self.tiers, self.disabled_passes,
                self.preset, self.overrides)


@dataclass(frozen=True, slots=True)
class Built:
    """What ``build`` and ``check`` print: the build report (plain data), and where it was written."""

    report: dict
    folder: Path | None
    archive: Path | None
    result: BuildResult | None  # None when the cache served the build (the compiler was not imported)

    @property
    def over(self) -> bool:
        return self.report["status"] == "over"


def build_cached(root: Path, out_dir: Path | None, options: BuildOptions, *, allow_over: bool = False,
                 progress: Progress | None = None, table_only: bool = False) -> Built:
    """Build and write (or, with ``out_dir`` None, only check), served by the build cache when it can be.

    A cache hit reads the report and, when ``out_dir`` already holds that very release, writes nothing.
    With ``table_only`` (a caller that prints the table, not the JSON), a hit reads only the report's
    table cut (``report.table_of``), and that is the report it returns.
    """
    cache = BuildCache(options.cache) if options.cache else None
    key = _key(cache, root, options) if cache else None
    if cache and key:
        hit = cache.get_release(key.key, table_only=table_only)
        served = _from_cache(cache, hit, out_dir, allow_over) if hit is not None else None
        if served is not None:
            return served
    from .tokens import spare_helper

    spare = spare_helper()  # loads the default encoding while the compiler is imported
    from .pipeline import compile_framework

    try:
        result = compile_framework(root, options, progress, spare)
    finally:
        if spare is not None:
            spare.end()  # a build takes it and ends it; one that failed before did not
    report = report_of(result)
    folder = archive = None
    if out_dir is not None and (not result.over_budget or allow_over):
        config = result.framework.config
        from .publish import write_release
        from .report import table_of

        folder, archive = write_release(out_dir, config.name, config.version, result.release.files)
        if cache and key and _unchanged_while_built(cache, key, root, options, result):
            release = result.release
            reports = {"report": report, "table": table_of(report)}
            cache.put_release(key.key, reports, archive.read_bytes(), release.release_id, config.name, config.version,
                              {**release.manifest.files, MANIFEST_NAME: release.release_id})
    return Built(_written(report, folder, archive), folder, archive, result)


def _key(cache: BuildCache, root: Path, options: BuildOptions) -> ReleaseKey:
    return cache.release_key(Path(root), options.config_path, (str(root), options.key), options.exclude_dirs)


def _unchanged_while_built(cache: BuildCache, key: ReleaseKey, root: Path, options: BuildOptions,
                           result: BuildResult) -> bool:
    """Whether every document the build compiled had the bytes the key was made of, and every file under
    the root still has them: a document edited while the build ran (even if the edit was undone since),
    or any file edited and left so, keeps this release out of the cache."""
    try:  # a plugin's documents are under its own root, inside the root the key walked
        inside = Path(result.framework.config.root).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return False
    prefix = "" if inside == "." else inside + "/"
    documents = ((f"{prefix}{doc.path}", doc.sha256) for doc in result.framework.documents.values())
    return key.matches(documents) and _key(cache, root, options) == key


def report_of(result: BuildResult) -> dict:
    from .report import build_report

    warnings = tuple(n.one_line(str(result.framework.config.root)) for n in result.notices)
    return build_report(result.manifest, result.release.release_id, bool(result.over_budget), warnings)


def _from_cache(cache: BuildCache, hit: CachedRelease, out_dir: Path | None, allow_over: bool) -> Built | None:
    """The build as the cache holds it; None when the output must be written and the entry's archive is damaged."""
    if out_dir is None or (hit.report["status"] == "over" and not allow_over):
        return Built(hit.report, None, None, None)
    folder, archive = Path(out_dir) / hit.name / hit.version, Path(out_dir) / f"{hit.name}-{hit.version}.tokb"
    if not _holds(cache, folder, archive, hit):
        try:
            files = release_files(hit.archive_path) if hit.archive_intact() else None
        except TokeffcError:  # the entry was replaced or removed meanwhile (a build sharing the cache)
            files = None
        if files is None:
            return None
        from .publish import write_release

        write_release(out_dir, hit.name, hit.version, files)
    return Built(_written(hit.report, folder, archive), folder, archive, None)


def _holds(cache: BuildCache, folder: Path, archive: Path, hit: CachedRelease) -> bool:
    """Whether the output already is this release: the folder's files, no more and no fewer, and the archive.

    A folder that is missing or cannot be read holds nothing: the release is written, or the writer says why."""
    held = {rel: digest.hex() for rel, digest in cache.tree_digests(folder)}
    return held == hit.files and cache.file_sha256(archive) == hit.archive_sha256


def release_files(archive: Path) -> tuple[tuple[str, bytes], ...]:
    """The files of a release archive, by their path inside the release, every rule checked."""
    from .pack import Archive

    opened = Archive(str(archive))
    try:
        return tuple(sorted(opened.members().items()))
    finally:
        opened.close()


def _written(report: dict, folder: Path | None, archive: Path | None) -> dict:
    return {**report, "written": {"folder": str(folder), "archive": str(archive)} if folder else None}
