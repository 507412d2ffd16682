"""Write a release: ``<out>/<name>/<version>/`` and ``<out>/<name>-<version>.tokb``, replaced as a pair.

Under an exclusive lock on ``<out>/.tokeffc.lock`` (``fcntl.flock``: two builds into one folder take
turns), a write goes:

1. **recover**: finish a write that was interrupted after its commit point (below), then remove
   stale staging folders (``<out>/.tokeffc-*``) of writes interrupted before it;
2. **stage**: the new folder and archive into a fresh ``<out>/.tokeffc-*/`` (``release/``, ``archive``);
3. **commit**: the journal ``<out>/.tokeffc.journal`` (written in the staging folder, fsynced, then
   renamed into place) names the staging folder, the two targets and the release id;
4. **swap**: the current folder moves into staging (``previous/``), the new folder moves in, the
   archive is replaced (``os.replace``);
5. **finish**: the journal is removed, then the staging folder (with the previous release in it).

Killed before the commit point, the previous pair is untouched and the next write removes the
staging folder; killed after it, the next write completes the swap from wherever it stopped. So
the folder and the archive always end up from the same build, and the previous release is always
either in place or in the journal's staging folder until the new one is. An error (not a kill)
during the swap undoes it. Every ``OSError`` becomes an :class:`OutputError` (exit 5) naming the
path. This guards against killed processes; surviving power loss would also need an fsync of every
file written, which tokeffc does not do.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError, Span
from .layout import ARCHIVE_SUFFIX, MANIFEST_NAME, RUNTIME_INDEX, safe_release_path
from .pack import pack_archive

LOCK_NAME = ".tokeffc.lock"
JOURNAL_NAME = ".tokeffc.journal"
STAGING_PREFIX = ".tokeffc-"
WRITERS = 4  # file writes and zstd release the GIL

# Fault injection, for tests only: called with each step's name once the step is done
# ("staging", "staged", "committed", "moved-previous", "moved-folder", "moved-archive",
# "journal-removed", "cleaned"). A test sets it in a subprocess to kill the writer there.
step_hook: Callable[[str], None] | None = None

_HINTS = {errno.EACCES: "check the folder's permissions, or choose another output folder with -o",
          errno.EPERM: "check the folder's permissions, or choose another output folder with -o",
          errno.EROFS: "the file system is read-only; choose another output folder with -o",
          errno.ENOSPC: "the disk is full; free some space and build again",
          errno.EDQUOT: "the disk quota is used up; free some space and build again",
          errno.ENOTDIR: "a part of the path is a file, not a folder; choose another output folder with -o",
          errno.EISDIR: "a folder is in the way; move it, or choose another output folder with -o",
          errno.EEXIST: "a file is in the way; move it, or choose another output folder with -o"}


def write_release(out_dir: Path, name: str, version: str, files: tuple[tuple[str, bytes], ...]) -> tuple[Path, Path]:
    """Write the release folder and its archive as a pair; returns their paths."""
    out = Path(out_dir)
    with output_errors(out):
        out.mkdir(parents=True, exist_ok=True)
        with _locked(out):
            recover(out)
            return _write(out, name, version, files)


def recover(out: Path) -> None:
    """Complete an interrupted swap (journal present), then remove stale staging folders.

    Call it holding the output folder's lock, as :func:`write_release` does (or with no writer running).
    """
    journal = out / JOURNAL_NAME
    if journal.exists():
        staging, folder, archive = _read_journal(journal, out)
        if staging.is_dir():
            _swap(staging, folder, archive)
        journal.unlink()
    for stale in sorted(out.glob(STAGING_PREFIX + "*")):
        if _is_staging(stale):
            shutil.rmtree(stale)


@contextmanager
def output_errors(where: Path) -> Iterator[None]:
    """Any OSError inside becomes an OutputError naming the path it concerns."""
    try:
        yield
    except OSError as exc:
        path = str(exc.filename or where)
        hint = _HINTS.get(exc.errno or 0, "check the output folder, or choose another with -o")
        raise OutputError(f"cannot write: {exc.strerror or exc}", Span(path), hint) from None


def _write(out: Path, name: str, version: str, files: tuple[tuple[str, bytes], ...]) -> tuple[Path, Path]:
    folder, archive = out / name / version, out / f"{name}-{version}{ARCHIVE_SUFFIX}"
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    committed = False
    try:
        _stage(staging, f"{name}/{version}", files)
        _make_room(folder, archive)
        _commit(out, staging, folder, archive, files)
        committed = True
        _swap_or_undo(out, staging, folder, archive)
        _finish(out, staging)
    finally:
        if not committed:
            shutil.rmtree(staging, ignore_errors=True)
    return folder, archive


def _stage(staging: Path, prefix: str, files: tuple[tuple[str, bytes], ...]) -> None:
    root = staging / "release"
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        archive_bytes = pool.submit(pack_archive, prefix, files, (MANIFEST_NAME, RUNTIME_INDEX))
        for directory in sorted({(root / path).parent for path, _ in files}):
            directory.mkdir(parents=True, exist_ok=True)
        written = [pool.submit((root / path).write_bytes, data) for path, data in files]
        for done, future in enumerate(written):
            future.result()  # re-raises the first failure
            if done == len(written) // 2:
                _step("staging")
        (staging / "archive").write_bytes(archive_bytes.result())
    _step("staged")


def _make_room(folder: Path, archive: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    if archive.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder has the archive's name", str(archive))


def _commit(out: Path, staging: Path, folder: Path, archive: Path, files) -> None:
    """The commit point: once the journal is in place, the new release wins."""
    release_id = hashlib.sha256(dict(files)[MANIFEST_NAME]).hexdigest()
    entry = {"staging": staging.name, "folder": folder.relative_to(out).as_posix(),
             "archive": archive.relative_to(out).as_posix(), "release_id": release_id}
    draft = staging / "journal"
    with open(draft, "wb") as handle:
        handle.write(json.dumps(entry, sort_keys=True).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(draft, out / JOURNAL_NAME)
    _step("committed")


def _swap(staging: Path, folder: Path, archive: Path) -> None:
    """Move the staged pair into place; safe to run again from any point it stopped at."""
    new, previous = staging / "release", staging / "previous"
    if new.is_dir():
        if folder.exists() and not previous.exists():
            os.rename(folder, previous)
            _step("moved-previous")
        os.rename(new, folder)
        _step("moved-folder")
    if (staging / "archive").is_file():
        os.replace(staging / "archive", archive)
        _step("moved-archive")


def _swap_or_undo(out: Path, staging: Path, folder: Path, archive: Path) -> None:
    try:
        _swap(staging, folder, archive)
    except OSError:
        try:
            _undo(staging, folder)
            (out / JOURNAL_NAME).unlink()
            shutil.rmtree(staging, ignore_errors=True)
        except OSError:
            pass  # the journal stays: the next write completes this one
        raise


def _undo(staging: Path, folder: Path) -> None:
    """Put the previous folder back (the archive is replaced last, atomically, so it is still the old one)."""
    new, previous = staging / "release", staging / "previous"
    if not new.exists() and folder.exists():
        os.rename(folder, new)
    if previous.exists():
        os.rename(previous, folder)


def _finish(out: Path, staging: Path) -> None:
    (out / JOURNAL_NAME).unlink()
    _step("journal-removed")
    shutil.rmtree(staging, ignore_errors=True)  # what is left, the next write removes
    _step("cleaned")


def _read_journal(journal: Path, out: Path) -> tuple[Path, Path, Path]:
    try:
        entry = json.loads(journal.read_bytes())
        staging, folder, archive = (entry[key] for key in ("staging", "folder", "archive"))
        if not (isinstance(staging, str) and staging.startswith(STAGING_PREFIX) and safe_release_path(staging)
                and "/" not in staging and all(isinstance(p, str) and safe_release_path(p) for p in (folder, archive))):
            raise ValueError("unexpected entries")
    except (ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"the journal of an interrupted build is unreadable ({exc})", Span(str(journal)),
                          "check the release in this folder, then delete the journal and build again") from None
    return out / staging, out / folder, out / archive


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``<out>/.tokeffc.lock`` exclusively: concurrent writes into one folder take turns."""
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _is_staging(path: Path) -> bool:
    """A folder tempfile.mkdtemp named for a write: the prefix and 8 random letters, digits or '_'."""
    tail = path.name[len(STAGING_PREFIX):]
    return len(tail) == 8 and all(c.isalnum() or c == "_" for c in tail) and path.is_dir() and not path.is_symlink()


def _step(name: str) -> None:
    if step_hook is not None:
        step_hook(name)
