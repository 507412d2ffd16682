"""Release folders and ``.tokb`` archives: deterministic tar + zstandard, written atomically.

Imports only the standard library and zstandard: the runtime reads archives through it.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zstandard

from .errors import ArchiveError, Span

ARCHIVE_SUFFIX = ".tokb"
ZSTD_LEVEL = 3  # fixed, so the same files always compress to the same bytes
MAX_ARCHIVE_BYTES = 1 << 30
WRITERS = 4


def pack_archive(prefix: str, files: tuple[tuple[str, bytes], ...]) -> bytes:
    """A tar of ``prefix/<path>`` entries, sorted, with zero times and owners, zstd-compressed."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in _directories(prefix, files):
            tar.addfile(_entry(directory, tarfile.DIRTYPE, 0o755))
        for path, data in sorted(files):
            tar.addfile(_entry(f"{prefix}/{path}", tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True, threads=0)
    return compressor.compress(buffer.getvalue())


def _directories(prefix: str, files) -> list[str]:
    found = set()
    for path, _ in files:
        parts = f"{prefix}/{path}".split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(found)


def _entry(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def unpack_archive(path: Path) -> dict[str, bytes]:
    """The files of a ``.tokb`` by their path inside it; a truncated or corrupt archive raises."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ArchiveError(f"cannot read archive: {exc.strerror}", Span(str(path)), "check the path") from None
    return unpack_bytes(raw, path)


def unpack_bytes(raw: bytes, path: Path | str = "<archive>") -> dict[str, bytes]:
    """``unpack_archive`` for bytes already in memory."""
    try:
        data = zstandard.ZstdDecompressor().decompress(raw, max_output_size=MAX_ARCHIVE_BYTES)
    except zstandard.ZstdError as exc:
        raise ArchiveError(f"archive is truncated or not zstandard ({exc})", Span(str(path)),
                           "rebuild it with 'tokeffc build' or fetch it again") from None
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.isfile():
                    files[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"archive is damaged ({exc})", Span(str(path)), "rebuild it with 'tokeffc build'") from None
    return files


def write_release(out_dir: Path, name: str, version: str, files: tuple[tuple[str, bytes], ...]) -> tuple[Path, Path]:
    """Write ``<out>/<name>/<version>/`` and ``<out>/<name>-<version>.tokb``; all or nothing."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folder, archive = out_dir / name / version, out_dir / f"{name}-{version}{ARCHIVE_SUFFIX}"
    staging = Path(tempfile.mkdtemp(prefix=".tokeffc-", dir=out_dir))
    try:
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:  # file writes and zstd release the GIL
            archive_bytes = pool.submit(pack_archive, f"{name}/{version}", files)
            _write_folder(staging / "release", files, pool)
            (staging / "archive").write_bytes(archive_bytes.result())
        folder.parent.mkdir(exist_ok=True)
        if folder.exists():
            os.rename(folder, staging / "previous")
        os.rename(staging / "release", folder)
        os.replace(staging / "archive", archive)
    except BaseException:
        if (staging / "previous").exists() and not folder.exists():
            os.rename(staging / "previous", folder)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, archive


def _write_folder(root: Path, files, pool: ThreadPoolExecutor) -> None:
    for folder in sorted({(root / path).parent for path, _ in files}):
        folder.mkdir(parents=True, exist_ok=True)
    for written in [pool.submit((root / path).write_bytes, data) for path, data in files]:
        written.result()  # re-raises the first failure
