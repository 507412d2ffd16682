"""The ``.tokb`` archive: a tar of the release folder in zstandard frames. Standard library and zstandard only.

Layout (``zstd -d x.tokb | tar x`` sees a plain tar; zstd skips the first frame):

- a skippable zstd frame holding the seek table: ``tokb-seek/1`` and JSON
  ``{"prefix": "<name>/<version>", "frames": [[compressed bytes, tar bytes, first member name], ...]}``;
- the tar stream (POSIX pax, entries sorted by name, directories before what they hold, modes
  0644/0755, zero times and owners), cut at member boundaries into zstd frames of about
  :data:`FRAME_TARGET` tar bytes; ``manifest.json`` and the runtime index have frames of their own.
  The last frame ends with the tar's end blocks.

The seek table lets the runtime decompress one frame to read one file, whatever the release's size.
It is a hint, never trusted: every frame is bounded by what its bytes are, every member is checked
by name and type, and the caller checks each file's sha256. Archives without a seek table (tokeffc
0.1 wrote one zstd frame) are read whole, under the same caps.

Reading is bounded by what the bytes are, not by what they declare: the file's size is checked
before it is read, a frame that declares more output than allowed is refused before decompressing,
a frame that declares nothing is decompressed in pieces against a cap, and the tar reader accepts
only regular files and directories under one ``<name>/<version>/`` prefix, with safe names, no
duplicates, and nothing after the frames or after the tar's end. Every failure is one
:class:`ReleaseError` naming the archive.
"""

from __future__ import annotations

import json
import os
import stat

import zstandard

from .errors import ReleaseError, Span
from .layout import ARCHIVE_SUFFIX, MAX_FILE_BYTES, MAX_MEMBERS, safe_release_path

__all__ = ["ARCHIVE_SUFFIX", "Archive", "pack_archive", "safe_release_path"]

ZSTD_LEVEL = 3  # fixed, so the same files always compress to the same bytes
# Tar bytes per frame. On BMAD (2.9 MB of files): one frame gives a 410 KB archive and 3.1 ms to open it and
# read one bundle; 1 MiB frames 480 KB and 1.4 ms; 256 KiB frames 553 KB and 0.6 ms, whatever the release's size.
FRAME_TARGET = 256 << 10
COMPRESSORS = 2  # threads compressing frames: zstandard lets go of the interpreter while it compresses
SEEK_MAGIC = 0x184D2A5B  # a skippable frame (0x184D2A50-0x184D2A5F); zstd and tar tools step over it
SEEK_TAG = b"tokb-seek/1\n"

MAX_ARCHIVE_BYTES = 256 << 20  # the .tokb file itself
MAX_TAR_BYTES = 256 << 20  # all frames' output together
MAX_WINDOW = 1 << 24  # zstd's window, and so its decoder memory; tokeffc writes 2 MiB at most
MAX_FRAME_TAR = MAX_FILE_BYTES + 2 * FRAME_TARGET  # a frame holds one file at most past the target
MAX_SEEK_TABLE = 4 << 20
STEP = 256  # compressed bytes per step when a frame's size is unknown: one step inflates to 8 MiB at most

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
RECORD = 20 * BLOCK  # tar pads the archive to a whole record
PAX_IGNORED = frozenset({"mtime", "atime", "ctime", "uid", "gid", "uname", "gname"})
KINDS = {b"1": "a hard link", b"2": "a symlink", b"3": "a character device", b"4": "a block device",
         b"6": "a fifo", b"7": "a contiguous file", b"g": "a global pax header", b"L": "a GNU long name",
         b"K": "a GNU long link", b"S": "a sparse file"}


class Frame:
    """A zstd frame of the tar stream, as the seek table gives it."""

    __slots__ = ("first", "offset", "size", "tar_size")

    def __init__(self, offset: int, size: int, tar_size: int, first: str):
        self.offset = offset  # in the .tokb
        self.size = size  # compressed bytes
        self.tar_size = tar_size  # bytes it decompresses to
        self.first = first  # the name of its first tar member


class Member:
    """A file or folder of the tar: its full name, and its bytes."""

    __slots__ = ("data", "is_dir", "name")

    def __init__(self, name: str, is_dir: bool, data: bytes):
        self.name, self.is_dir, self.data = name, is_dir, data


# --- writing -----------------------------------------------------------------------------------------------


def pack_archive(prefix: str, files: tuple[tuple[str, bytes], ...], solo: tuple[str, ...] = ()) -> bytes:
    """The ``.tokb`` of ``files`` under ``prefix``; the paths in ``solo`` get zstd frames of their own."""
    if not files:
        raise ValueError("a release holds at least its manifest")
    members = _tar_members(prefix, files)
    groups = _group(members, {f"{prefix}/{path}" for path in solo})
    groups[-1][1].append(_tar_end(sum(_size(m) for _, m in members)))
    from concurrent.futures import ThreadPoolExecutor  # the writer's only

    with ThreadPoolExecutor(max_workers=COMPRESSORS) as pool:  # frames are independent: compressed at once
        frames = list(pool.map(_frame, groups))
    table = {"prefix": prefix, "frames": [[len(data), tar_size, first] for first, data, tar_size in frames]}
    payload = SEEK_TAG + json.dumps(table, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header = SEEK_MAGIC.to_bytes(4, "little") + len(payload).to_bytes(4, "little")
    return header + payload + b"".join(data for _, data, _ in frames)


def _frame(group: tuple[str, list[bytes]]) -> tuple[str, bytes, int]:
    """One group's tar, compressed as one frame: (its first member's name, the frame, the tar's size)."""
    first, parts = group
    tar = b"".join(parts)  # one frame's tar at a time: the whole tar is never held at once
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True)
    # zstandard returns the frame in a buffer sized for the worst case: keep an exact copy instead
    return first, bytes(memoryview(compressor.compress(tar))), len(tar)


def _tar_members(prefix: str, files) -> list[tuple[str, tuple[bytes, ...]]]:
    """Each entry's tar parts (pax header and header, data, padding) by full name, sorted."""
    import tarfile  # the writer's only; the runtime reads tars itself

    entries = [(name, None) for name in _directories(prefix, files)]
    entries += [(f"{prefix}/{path}", data) for path, data in files]
    members: list[tuple[str, tuple[bytes, ...]]] = []
    for name, data in sorted(entries, key=lambda entry: entry[0]):
        info = tarfile.TarInfo(name)
        info.type, info.mode = (tarfile.DIRTYPE, 0o755) if data is None else (tarfile.REGTYPE, 0o644)
        info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = len(data or b""), 0, 0, 0, "", ""
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")
        members.append((name, (header, data or b"", bytes(-len(data or b"") % BLOCK))))
    return members


def _size(parts: tuple[bytes, ...]) -> int:
    return sum(map(len, parts))


def _directories(prefix: str, files) -> set[str]:
    found: set[str] = set()
    for path, _ in files:
        parts = f"{prefix}/{path}".split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def _group(members: list[tuple[str, tuple[bytes, ...]]], solo: set[str]) -> list[tuple[str, list[bytes]]]:
    """Consecutive members' parts grouped into frames of about FRAME_TARGET bytes; solo names alone."""
    groups: list[tuple[str, list[bytes], int]] = []
    for name, parts in members:
        alone = name in solo
        if not groups or alone or groups[-1][2] >= FRAME_TARGET or groups[-1][0] in solo:
            groups.append((name, [], 0))
        first, joined, size = groups[-1]
        joined += parts
        groups[-1] = (first, joined, size + _size(parts))
    return [(first, joined) for first, joined, _ in groups]


def _tar_end(size: int) -> bytes:
    """Two zero blocks, then zeros up to a whole record, as tar writes them."""
    end = size + 2 * BLOCK
    return bytes(2 * BLOCK + (-end % RECORD))


# --- reading -----------------------------------------------------------------------------------------------


class OpenDescriptor:
    """Owns one file descriptor (a file's or a folder's), closed once: by :meth:`close`, else when it goes."""

    _fd = -1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()


class Archive(OpenDescriptor):
    """A ``.tokb`` opened for reading. Files come back as bytes, unverified: the caller checks sha256.

    :meth:`read` decompresses only the frame that holds a file (through the seek table);
    :meth:`members` reads everything under every rule (what ``inspect`` and ``Release.verify`` use).
    """

    def __init__(self, path: str):
        self.path = path
        self._fd = _open_archive(path)
        self.size = os.fstat(self._fd).st_size
        self.prefix, self.frames = _seek_table(self)
        self._firsts = [frame.first for frame in self.frames]
        self._decoded: dict[int, dict[str, Member]] = {}
        self._whole: dict[str, Member] | None = None

    def read(self, path: str) -> bytes | None:
        """The file at ``path`` (relative to the prefix), or None when the archive has no such file."""
        if self.frames:
            member = self._frame_member(f"{self.prefix}/{path}")
        else:
            whole = self._all()
            member = whole.get(f"{self.prefix}/{path}")
        return None if member is None or member.is_dir else member.data

    def members(self) -> dict[str, bytes]:
        """Every file by its path under the prefix, after checking the whole archive."""
        members = self._check_all_frames() if self.frames else self._all()
        return {name[len(self.prefix) + 1:]: m.data for name, m in members.items() if not m.is_dir}

    def error(self, message: str, hint: str = "rebuild it with 'tokeffc build' or fetch it again") -> ReleaseError:
        return ReleaseError(message, Span(self.path), hint)

    def pread(self, size: int, offset: int) -> bytes:
        if self._fd < 0:
            raise self.error("archive is closed", "open the release again")
        try:
            data = os.pread(self._fd, size, offset)
        except OSError as exc:
            raise self.error(f"cannot read archive: {exc.strerror}", "check the path") from None
        if len(data) != size:
            raise self.error("archive is truncated (shorter than its seek table says, or it changed while read)")
        return data

    # -- through the seek table: one frame at a time

    def _frame_member(self, name: str) -> Member | None:
        index = _last_at_or_before(self._firsts, name)
        if index < 0:
            return None
        decoded = self._decoded.get(index)
        if decoded is None:
            reader = TarReader(self, self.prefix, checksums=False)
            decoded = self._decoded[index] = {m.name: m for m in self._frame(index, reader)}
        return decoded.get(name)

    def _frame(self, index: int, reader: TarReader) -> list[Member]:
        frame = self.frames[index]
        tar = _inflate_frame(self.pread(frame.size, frame.offset), frame.tar_size, self)
        members = reader.feed(tar)
        reader.end_frame(final=index == len(self.frames) - 1)
        if not members or members[0].name != frame.first:
            raise self.error(f"frame {index} does not start with '{frame.first}' as its seek table says")
        return members

    def _check_all_frames(self) -> dict[str, Member]:
        reader = TarReader(self, self.prefix)
        return {m.name: m for index in range(len(self.frames)) for m in self._frame(index, reader)}

    # -- without a seek table (tokeffc 0.1, or another tool): the whole stream, once

    def _all(self) -> dict[str, Member]:
        if self._whole is None:
            reader = TarReader(self, "", ordered=False)
            members = _inflate_stream(self.pread(self.size, 0), self, reader)
            self.prefix, self._whole = reader.prefix, {m.name: m for m in members}
        return self._whole


def _last_at_or_before(names: list[str], name: str) -> int:
    """The index of the last of the sorted ``names`` that is ``<= name`` (-1 if none): a binary search."""
    low, high = 0, len(names)
    while low < high:
        middle = (low + high) // 2
        if names[middle] <= name:
            low = middle + 1
        else:
            high = middle
    return low - 1


def _open_archive(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ReleaseError(f"cannot read archive: {exc.strerror}", Span(path), "check the path") from None
    info = os.fstat(fd)
    problem = ("is not a regular file" if not stat.S_ISREG(info.st_mode) else
               f"is {info.st_size:,} bytes, over the {MAX_ARCHIVE_BYTES:,}-byte limit"
               if info.st_size > MAX_ARCHIVE_BYTES else "")
    if problem:
        os.close(fd)
        raise ReleaseError(f"archive {problem}", Span(path), "point at a .tokb that tokeffc wrote")
    return fd


def _seek_table(archive: Archive) -> tuple[str, tuple[Frame, ...]]:
    """The seek table, checked against the file's size; no frames for an archive without one."""
    head = archive.pread(8, 0) if archive.size >= 8 else b""
    if not head or int.from_bytes(head[:4], "little") != SEEK_MAGIC:
        return "", ()
    length = int.from_bytes(head[4:], "little")
    if length > MAX_SEEK_TABLE or 8 + length > archive.size:
        raise archive.error("archive's seek table is truncated or too large")
    payload = archive.pread(length, 8)
    if not payload.startswith(SEEK_TAG):
        raise archive.error("archive starts with a skippable frame that is not tokeffc's seek table")
    try:
        table = json.loads(payload[len(SEEK_TAG):].decode("utf-8"))
        prefix, frames = _checked_str(table["prefix"]), _frame_rows(table["frames"], 8 + length)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise archive.error(f"archive's seek table is malformed ({exc})") from None
    _check_table(prefix, frames, archive)
    return prefix, frames


def _frame_rows(rows: list, offset: int) -> tuple[Frame, ...]:
    frames = []
    for compressed, tar_size, first in rows:
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n for n in (compressed, tar_size)):
            raise ValueError("frame sizes must be positive integers")
        frames.append(Frame(offset, compressed, tar_size, _checked_str(first)))
        offset += compressed
    return tuple(frames)


def _checked_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("names must be strings")
    return value


def _check_table(prefix: str, frames: tuple[Frame, ...], archive: Archive) -> None:
    end = frames[-1].offset + frames[-1].size if frames else 0
    if end < archive.size:
        raise archive.error(f"archive has {archive.size - end:,} bytes after its last frame")
    if end > archive.size:
        raise archive.error("archive is truncated (shorter than its seek table says)")
    if sum(f.tar_size for f in frames) > MAX_TAR_BYTES or any(f.tar_size > MAX_FRAME_TAR for f in frames):
        raise archive.error(f"archive's seek table declares more than {MAX_TAR_BYTES:,} bytes, or a frame over "
                            f"{MAX_FRAME_TAR:,}", "this is not an archive tokeffc wrote")
    firsts = [f.first for f in frames]
    if firsts != sorted(set(firsts)):
        raise archive.error("archive's seek table is not in name order")
    if not _safe_prefix(prefix):
        raise archive.error(f"archive's prefix '{prefix}' is not '<name>/<version>'")


def _safe_prefix(prefix: str) -> bool:
    return len(prefix.split("/")) == 2 and safe_release_path(prefix)


# --- zstd frames -------------------------------------------------------------------------------------------


def _inflate_frame(frame: bytes, size: int, archive: Archive) -> bytes:
    """One frame of a seek-tabled archive: it must declare ``size`` and hold exactly one zstd frame."""
    try:
        declared = zstandard.frame_content_size(frame)
        if declared != size:
            raise archive.error(f"a frame declares {declared:,} bytes where its seek table says {size:,}"
                                if declared >= 0 else "a frame does not declare its size, as every frame tokeffc "
                                "writes does")
        return zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).decompress(frame, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise archive.error(f"archive is truncated or damaged ({exc})") from None


def _inflate_stream(data: bytes, archive: Archive, reader: TarReader) -> list[Member]:
    """Every frame of ``data`` in turn, read as a tar while it inflates; a frame cut short is refused."""
    decompressor = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
    members: list[Member] = []
    position, total = 0, 0
    try:
        while position < len(data):
            declared = zstandard.frame_content_size(data[position: position + 18])
            if declared > MAX_TAR_BYTES - total:
                raise archive.error(f"a zstd frame declares {declared:,} bytes, over the {MAX_TAR_BYTES:,} bytes "
                                    "an archive may hold", "this is not an archive tokeffc wrote")
            position, total = _inflate_one(decompressor.decompressobj(), data, position, total, reader, members)
    except zstandard.ZstdError as exc:
        raise archive.error(f"archive is not zstandard, is damaged, or has data after its end ({exc})") from None
    reader.close()
    return members


def _inflate_one(stream, data: bytes, position: int, total: int, reader: TarReader, members: list[Member]):
    """The frame at ``position``, in small steps, so that no step inflates far past what the reader checks."""
    while not stream.eof:
        if position >= len(data):
            raise reader.archive.error("archive is truncated (its last zstd frame is cut short)")
        compressed = data[position: position + STEP]
        piece = stream.decompress(compressed)
        position, total = position + len(compressed), total + len(piece)
        if total > MAX_TAR_BYTES:
            raise reader.archive.error(f"archive inflates past the {MAX_TAR_BYTES:,} bytes an archive may hold",
                                       "this is not an archive tokeffc wrote")
        members += reader.feed(piece)
    return position - len(stream.unused_data), total


# --- tar -----------------------------------------------------------------------------------------------------


class TarReader:
    """A whitelist tar reader, fed the tar stream in pieces of any size: regular files and folders under
    one prefix, and nothing else.

    ``prefix`` is ``<name>/<version>``; an empty prefix is taken from the first file. ``ordered``
    asks for names in strictly increasing order (tokeffc's writer sorts them). ``checksums``: check
    each header's checksum (the whole-archive check does; a single read relies on the name, type
    and size checks and on the file's sha256, and saves 2 µs a header). Memory: the members found,
    plus at most one incomplete member (``MAX_FILE_BYTES``) and the piece being fed.
    """

    def __init__(self, archive: Archive, prefix: str, ordered: bool = True, checksums: bool = True):
        self.archive, self.prefix, self.ordered, self.checksums = archive, prefix, ordered, checksums
        self.seen: set[str] = set()
        self.last = ""
        self.early_dirs: list[str] = []  # folders seen before the prefix was known
        self._buffer = bytearray()
        self._need = BLOCK  # bytes the next entry needs before it can be parsed
        self._pax: dict[str, str] | None = None
        self._after_end = -1  # bytes from the first zero block on; -1 before the tar's end

    def feed(self, data: bytes) -> list[Member]:
        """The members completed by ``data``."""
        if self._after_end >= 0:
            self._end_bytes(data)
            return []
        self._buffer += data
        if len(self._buffer) < self._need:
            return []
        with memoryview(self._buffer) as view:
            members, used = self._parse(view)
        del self._buffer[:used]
        return members

    def end_frame(self, final: bool) -> None:
        """A frame ends here: it must end between entries; ``final``: the tar must end too."""
        if self._buffer or self._pax is not None:
            raise self.error("has a frame that ends inside an entry (truncated or damaged)")
        if self._after_end >= 0 and not final:
            raise self.error("ends before its last frame")
        if final:
            self.close()

    def close(self) -> None:
        """The stream ends here: the tar must have ended, and have held files."""
        if self._buffer or self._pax is not None:
            raise self.error("ends inside an entry (truncated)")
        if self._after_end < 2 * BLOCK:
            raise self.error("has no tar end (truncated)")
        if not self.seen or not self.prefix:
            raise self.error("holds no files")
        for directory in self.early_dirs:
            self._check_name(directory, is_dir=True)

    def error(self, message: str) -> ReleaseError:
        return self.archive.error(f"archive {message}")

    def _parse(self, view: memoryview) -> tuple[list[Member], int]:
        members: list[Member] = []
        position = 0
        self._need = BLOCK
        while len(view) - position >= BLOCK:
            if view[position: position + BLOCK] == ZERO_BLOCK:
                self._after_end = 0
                self._end_bytes(view[position:].tobytes())
                return members, len(view)
            name, kind, size = _header(view[position: position + BLOCK].tobytes(), self, self.checksums)
            if size > MAX_FILE_BYTES:
                raise self.error(f"holds '{name}' of {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit")
            end = position + BLOCK + size + (-size % BLOCK)
            if end > len(view):
                self._need = end - position
                break
            member = self._member(name, kind, view[position + BLOCK: position + BLOCK + size].tobytes())
            position = end
            if member is not None:
                members.append(self._accept(member))
        return members, position

    def _member(self, name: str, kind: bytes, data: bytes) -> Member | None:
        if kind == b"x":
            if self._pax is not None:
                raise self.error("has two pax headers in a row")
            self._pax = _pax(data, self)
            return None
        if kind not in (b"0", b"\0", b"5"):
            raise self.error(f"holds {KINDS.get(kind, f'an entry of type {kind!r}')} ('{name}'); "
                             "only files and folders are allowed")
        pax, self._pax = self._pax or {}, None
        name = pax.get("path", name)
        if kind == b"5":
            if data:
                raise self.error(f"holds folder '{name}' with data")
            return Member(name.rstrip("/"), True, b"")
        return Member(name, False, data)

    def _accept(self, member: Member) -> Member:
        if len(self.seen) >= MAX_MEMBERS:
            raise self.error(f"holds more than {MAX_MEMBERS:,} entries")
        if member.name in self.seen:
            raise self.error(f"holds '{member.name}' twice")
        if self.ordered and member.name <= self.last:
            raise self.error(f"is not in name order at '{member.name}'")
        self.seen.add(member.name)
        self.last = member.name
        if not self.prefix and not member.is_dir:
            self.prefix = "/".join(member.name.split("/")[:2])
            if not _safe_prefix(self.prefix) or member.name.count("/") < 2:
                raise self.error(f"holds '{member.name}', not inside a '<name>/<version>/' folder")
        if self.prefix:
            self._check_name(member.name, member.is_dir)
        else:
            self.early_dirs.append(member.name)
        return member

    def _check_name(self, name: str, is_dir: bool) -> None:
        inside = name.startswith(self.prefix + "/") and safe_release_path(name[len(self.prefix) + 1:])
        parent = is_dir and name in (self.prefix.split("/")[0], self.prefix)
        if not (inside or parent):
            raise self.error(f"holds '{name}', outside its '{self.prefix}/' folder" if safe_release_path(name)
                             else f"holds the unsafe name '{name}' (absolute, '..', empty or control characters)")

    def _end_bytes(self, data: bytes) -> None:
        """Two zero blocks end a tar; only zeros may follow, up to a record of padding."""
        if self._pax is not None:
            raise self.error("has a pax header not followed by its member")
        stray = len(data) - len(data.lstrip(b"\0"))
        if stray < len(data):
            where = self._after_end + stray
            raise self.error("has a zero block that does not end it (damaged)" if where < 2 * BLOCK
                             else "has data after the tar's end")
        self._after_end += len(data)
        if self._after_end > RECORD + 2 * BLOCK:
            raise self.error("has data after the tar's end (more than a record of padding)")


def _header(block: bytes, reader: TarReader, checksum: bool) -> tuple[str, bytes, int]:
    """A ustar header's name, type and size, after checking its magic (and its checksum)."""
    if checksum and _octal(block[148:156], reader, "checksum") != sum(block) - sum(block[148:156]) + 8 * 32:
        raise reader.error("has a tar header with a wrong checksum (damaged, or not a tar)")
    if block[257:263] not in (b"ustar\x00", b"ustar "):
        raise reader.error("has a header that is not ustar or pax")
    name = _text(block[0:100], reader)
    prefix = _text(block[345:500], reader) if block[257:263] == b"ustar\x00" else ""
    return (f"{prefix}/{name}" if prefix else name), block[156:157], _octal(block[124:136], reader, "size")


def _octal(field: bytes, reader: TarReader, what: str) -> int:
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text or text.strip(b"01234567"):
        raise reader.error(f"has a tar header whose {what} is not an octal number")
    return int(text, 8)


def _text(field: bytes, reader: TarReader) -> str:
    try:
        return field.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise reader.error("has a name that is not UTF-8") from None


def _pax(data: bytes, reader: TarReader) -> dict[str, str]:
    """Pax records ``"<length> <key>=<value>\\n"``: ``path`` is used; times and owners are ignored; nothing else."""
    records, position = {}, 0
    while position < len(data):
        space = data.find(b" ", position, position + 20)
        length = int(data[position:space]) if space > position and data[position:space].isdigit() else 0
        record = data[position: position + length]
        if length <= space - position or not record.endswith(b"\n") or b"=" not in record:
            raise reader.error("has a malformed pax header")
        key, _, value = record[space - position + 1: -1].partition(b"=")
        name = key.decode("utf-8", "replace")
        if name not in PAX_IGNORED and name != "path":
            raise reader.error(f"has a pax record '{name}' (only path, times and owners are allowed)")
        try:
            records[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise reader.error("has a pax record that is not UTF-8") from None
        position += length
    return records
