"""Install files into a project without ever touching a file tokeffc did not write.

A ledger (``.claude/tokeffc/ledger.json``) lists every file an install wrote, with its sha256. The
next install writes what is new, replaces the owned files whose text changed, removes the owned files
it no longer writes, and refuses, before anything is written, a path the ledger does not own or an
owned file whose content changed since (the user edited it). Files are staged in a folder inside the
project, then moved into place; if a move fails, everything moved is put back.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError, Span, TokeffcError, raise_all

LEDGER = ".claude/tokeffc/ledger.json"
SCHEMA = "tokeffc.ledger/1"
MAX_LEDGER_BYTES = 16 << 20
STAGING_PREFIX = ".tokeffc-install-"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Owned:
    """What the ledger says an earlier install wrote."""

    owner: str  # "<framework> <version>"
    files: Mapping[str, str]  # path relative to the project -> sha256 of the bytes written


@dataclass(frozen=True, slots=True)
class Changes:
    """What an install will do, checked against the project before anything is written."""

    project: Path
    write: tuple[tuple[str, bytes], ...]  # new or changed files; the ledger last
    remove: tuple[str, ...]  # owned files the install no longer writes
    unchanged: tuple[str, ...]  # owned files whose bytes stay as they are
    previous: Owned | None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ledger_bytes(owner: str, files: Mapping[str, bytes]) -> bytes:
    data = {"schema": SCHEMA, "owner": owner, "files": {p: sha256(d) for p, d in sorted(files.items())}}
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def plan_changes(project: Path, files: Mapping[str, bytes], owner: str) -> Changes:
    """Every write and removal the install makes; raises one problem per path it must not touch."""
    project = Path(project)
    previous = read_ledger(project)
    owned = dict(previous.files) if previous else {}
    problems: list[TokeffcError] = []
    write, unchanged = [], []
    for path, data in sorted(files.items()):
        state = _state(project, path, owned, problems)
        if state == "same" and sha256(data) == owned[path]:
            unchanged.append(path)
        elif state in ("absent", "same"):
            write.append((path, data))
    remove = [path for path in sorted(set(owned) - set(files))
              if _state(project, path, owned, problems) == "same"]
    raise_all(problems)
    ledger = ledger_bytes(owner, files)
    current = project / LEDGER
    if previous is None or current.read_bytes() != ledger:
        write.append((LEDGER, ledger))
    return Changes(project, tuple(write), tuple(remove), tuple(unchanged), previous)


def _state(project: Path, path: str, owned: dict[str, str], problems: list[TokeffcError]) -> str:
    """absent (free to write), same (owned, as written), or a problem recorded (and "refused")."""
    target = project / path
    if not safe_path(path) or path == LEDGER:
        return _refuse(problems, target, "is not a path an install may write", "this is a bug in tokeffc")
    blocked = _blocked_folder(project, path)
    if blocked is not None:
        return _refuse(problems, blocked, "is in the way (a file or a link where a folder is needed)",
                       "move it away, or install into another folder with --into")
    if not os.path.lexists(target):
        return "absent"
    if target.is_symlink() or not target.is_file() or path not in owned:
        return _refuse(problems, target, "exists and tokeffc did not write it", _foreign_hint(path))
    if sha256(target.read_bytes()) != owned[path]:
        return _refuse(problems, target, "changed since tokeffc wrote it",
                       "tokeffc never overwrites or removes an edited file: keep your edit elsewhere, delete the "
                       "file, and install again")
    return "same"


def _foreign_hint(path: str) -> str:
    if path == "CLAUDE.md":
        return ("Claude Code also loads .claude/CLAUDE.md and CLAUDE.local.md: move your own text there, or install "
                "into another folder with --into")
    return "move it away, or install into another folder with --into"


def _refuse(problems: list[TokeffcError], where: Path, what: str, hint: str) -> str:
    problems.append(TokeffcError(f"'{where.name}' {what}", Span(str(where)), hint))
    return "refused"


def _blocked_folder(project: Path, path: str) -> Path | None:
    """The first folder on the way to ``path`` that is a link or not a folder, if any."""
    folder = project
    for part in path.split("/")[:-1]:
        folder = folder / part
        if folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir()):
            return folder
    return None


def safe_path(path: Any) -> bool:
    """A plain relative path inside the project: no '..', no absolute path, no backslash, normalised."""
    return (isinstance(path, str) and bool(path) and not path.startswith("/") and "\\" not in path
            and "\x00" not in path and posixpath.normpath(path) == path
            and not any(part in ("..", ".") for part in path.split("/")))


def read_ledger(project: Path) -> Owned | None:
    """The ledger of an earlier install, or None; a ledger tokeffc cannot trust is an error."""
    path = Path(project) / LEDGER
    if not os.path.lexists(path):
        return None
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_LEDGER_BYTES:
            raise ValueError("not a file of a ledger's size")
        return _owned(json.loads(path.read_bytes()))
    except (OSError, ValueError, RecursionError) as exc:
        raise TokeffcError(f"the install ledger is damaged ({exc})", Span(str(path)),
                           "tokeffc cannot tell its files from yours: restore the ledger, or delete the files "
                           "it wrote and the ledger, then install again") from None


def _owned(data: Any) -> Owned:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"schema is not {SCHEMA}")
    files, owner = data.get("files"), data.get("owner")
    if not isinstance(owner, str) or not isinstance(files, dict):
        raise ValueError("'owner' or 'files' missing")
    for path, digest in files.items():
        if not safe_path(path) or path == LEDGER or not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ValueError(f"bad entry {path!r}")
    return Owned(owner, dict(files))


def apply_changes(changes: Changes) -> None:
    """Stage every file in the project, then move them into place; on any failure, put everything back."""
    project = changes.project
    if not changes.write and not changes.remove:
        return
    try:
        project.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=project))
    except OSError as exc:
        raise _output_error(exc, project) from None
    try:
        _stage(staging / "new", changes.write)
        _Swap(project, staging).run(changes)
    except OSError as exc:
        raise _output_error(exc, project) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(project, changes.remove)


def _output_error(exc: OSError, project: Path) -> OutputError:
    where = exc.filename or project
    return OutputError(f"cannot install: {exc.strerror or exc}", Span(str(where)),
                       "nothing was changed; check the folder's permissions and free space")


def _stage(folder: Path, files: tuple[tuple[str, bytes], ...]) -> None:
    for path, data in files:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)


class _Swap:
    """Move old files aside and new ones in, remembering each step so that a failure can undo them all."""

    def __init__(self, project: Path, staging: Path):
        self.project, self.staging = project, staging
        self.saved: list[str] = []
        self.placed: list[str] = []
        self.made: list[Path] = []

    def run(self, changes: Changes) -> None:
        try:
            for path in (*changes.remove, *(p for p, _ in changes.write)):
                self._save(path)
            for path, _ in changes.write:
                self._place(path)
        except BaseException:
            self._undo()
            raise

    def _save(self, path: str) -> None:
        if os.path.lexists(self.project / path):
            aside = self.staging / "old" / path
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.project / path, aside)
            self.saved.append(path)

    def _place(self, path: str) -> None:
        target = self.project / path
        missing = [f for f in (target.parent, *target.parent.parents) if not f.exists()]
        for folder in reversed(missing):
            folder.mkdir()
            self.made.append(folder)
        os.replace(self.staging / "new" / path, target)
        self.placed.append(path)

    def _undo(self) -> None:
        for path in reversed(self.placed):
            (self.project / path).unlink(missing_ok=True)
        for path in reversed(self.saved):
            os.replace(self.staging / "old" / path, self.project / path)
        for folder in reversed(self.made):
            try:
                folder.rmdir()
            except OSError:
                pass


def _prune(project: Path, removed: tuple[str, ...]) -> None:
    """Folders the removals left empty go too (never the project's ``.claude`` itself)."""
    keep = {project, project / ".claude"}
    for path in removed:
        folder = (project / path).parent
        while folder not in keep and project in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
