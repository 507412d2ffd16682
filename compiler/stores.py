"""Where a release's files come from: a folder or a ``.tokb``. Standard library and zstandard only.

Both read one file at a time (``read``: bytes, or None when absent) or all of them under every rule
(``members``). Neither checks hashes: the runtime does, against its index. A folder is read through
file descriptors, one path component at a time with ``O_NOFOLLOW``: a symlink anywhere inside the
release is refused, as is anything but plain files and folders, and a file over the size cap is
refused after ``fstat``, before it is read.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import ReleaseError, Span
from .layout import ARCHIVE_SUFFIX, MANIFEST_NAME, MAX_FILE_BYTES, MAX_MEMBERS, MAX_NAME, safe_release_path
from .pack import Archive, OpenDescriptor


class Store:
    """A release's files by path: ``read`` one (None when absent), or ``members`` for all, checked."""

    def read(self, path: str) -> bytes | None:
        raise NotImplementedError

    def members(self) -> dict[str, bytes]:
        raise NotImplementedError

    def where(self, path: str) -> str:
        raise NotImplementedError

    def check_prefix(self, framework: str, version: str) -> None:
        """An archive's ``<name>/<version>/`` folder must be the release's own."""

    def close(self) -> None:
        """Release what the store holds open."""


class ArchiveStore(Store):
    def __init__(self, path: str):
        self.archive = Archive(path)

    def read(self, path: str) -> bytes | None:
        return self.archive.read(path)

    def members(self) -> dict[str, bytes]:
        return self.archive.members()

    def where(self, path: str) -> str:
        return self.archive.path

    def check_prefix(self, framework: str, version: str) -> None:
        if self.archive.prefix != f"{framework}/{version}":
            raise self.archive.error(f"archive holds '{self.archive.prefix}/', but the release is "
                                     f"{framework} {version}")

    def close(self) -> None:
        self.archive.close()


class FolderStore(OpenDescriptor, Store):
    """A release folder read through file descriptors: a symlink anywhere inside it is refused."""

    def __init__(self, folder: str):
        self.folder = folder
        self._fd = _open_at(None, folder, directory=True, where=folder, follow=True)

    def read(self, path: str) -> bytes | None:
        if self._fd < 0:
            raise ReleaseError("the release is closed", Span(self.folder), "open the release again")
        if not safe_release_path(path):
            return None
        parts, fds = path.split("/"), []
        try:
            fd = self._fd
            for depth, part in enumerate(parts[:-1], start=1):
                fd = _open_at(fd, part, directory=True, where=self.where("/".join(parts[:depth])))
                fds.append(fd)
            fds.append(_open_at(fd, parts[-1], directory=False, where=self.where(path)))
            return _read_fd(fds[-1], self.where(path))
        except FileNotFoundError:
            return None
        finally:
            for fd in fds:
                os.close(fd)

    def members(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        try:
            self._walk(self._fd, "", found)
        except FileNotFoundError as exc:
            raise ReleaseError("a file went away while the release was read", Span(exc.filename or self.folder),
                               "read it again once the build that replaces it has finished") from None
        return found

    def where(self, path: str) -> str:
        return os.path.join(self.folder, path) if path else self.folder

    def _walk(self, fd: int, prefix: str, found: dict[str, bytes]) -> None:
        with os.scandir(fd) as entries:
            names = sorted((entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries)
        for name, is_dir in names:
            path = prefix + name
            if len(found) >= MAX_MEMBERS or len(path) > MAX_NAME:
                raise ReleaseError(f"the release holds more than {MAX_MEMBERS:,} files, or too deep a path",
                                   Span(self.where(path)), "this is not a release tokeffc wrote")
            child = _open_at(fd, name, directory=is_dir, where=self.where(path))
            try:
                if is_dir:
                    self._walk(child, path + "/", found)
                else:
                    found[path] = _read_fd(child, self.where(path))
            finally:
                os.close(child)


def _open_at(fd: int | None, name: str, directory: bool, where: str, follow: bool = False) -> int:
    """Open ``name`` in the folder ``fd`` without following a symlink; FileNotFoundError passes through."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    flags |= os.O_DIRECTORY if directory else 0
    try:
        opened = os.open(name, flags, dir_fd=fd)
    except FileNotFoundError:
        if follow:
            raise ReleaseError("not a release: no such folder", Span(where), "pass a .tokb, a release folder or "
                               "its manifest.json") from None
        raise
    except OSError as exc:
        symlink = exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(fd, name)
        raise ReleaseError("is a symlink; a release holds only plain files and folders" if symlink else
                           f"cannot be read ({exc.strerror})", Span(where), "rebuild the release") from None
    if not directory and not stat.S_ISREG(os.fstat(opened).st_mode):
        os.close(opened)
        raise ReleaseError("is not a regular file; a release holds only plain files and folders", Span(where),
                           "rebuild the release")
    return opened


def _is_symlink(fd: int | None, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _read_fd(fd: int, where: str) -> bytes:
    size = os.fstat(fd).st_size
    if size > MAX_FILE_BYTES:
        raise ReleaseError(f"is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a release file",
                           Span(where), "this is not a file tokeffc wrote")
    chunks, total = [], 0
    while piece := os.read(fd, max(size - total, 0) + 1):
        total += len(piece)
        if total > MAX_FILE_BYTES:
            raise ReleaseError("grew past the size limit while it was read", Span(where), "rebuild the release")
        chunks.append(piece)
    return b"".join(chunks)


def open_store(source: str) -> Store:
    if source.endswith(ARCHIVE_SUFFIX) and not os.path.isdir(source):
        return ArchiveStore(source)
    if os.path.basename(source) == MANIFEST_NAME and not os.path.isdir(source):
        return FolderStore(os.path.dirname(source) or ".")
    if os.path.isdir(source):
        return FolderStore(source)
    raise ReleaseError("not a release: no such .tokb, folder or manifest.json", Span(source),
                       "pass a .tokb, a release folder or its manifest.json")
