"""Forging releases for the release tests: read, change, reseal (hashes and index consistent), repack."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import zstandard
from click.testing import CliRunner

from tokeffc.cli import main
from tokeffc.layout import RUNTIME_INDEX, RUNTIME_SHARDS
from tokeffc.manifest import cache_key, dump_json, read_manifest, runtime_index
from tokeffc.pack import pack_archive

MANIFEST = "manifest.json"


def read_folder(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return folder


def reseal(files: dict[str, bytes], index: bool = True) -> dict[str, bytes]:
    """``files`` with manifest.json's hashes (files, bundles, chunks) and the runtime index made consistent."""
    files = without_index(files)
    manifest = json.loads(files[MANIFEST])
    manifest["files"] = {p: hashlib.sha256(d).hexdigest() for p, d in sorted(files.items()) if p != MANIFEST}
    for bundle in manifest["bundles"]:
        for entry in (bundle, *bundle["chunks"]):
            entry["sha256"] = manifest["files"][entry["path"]]
            entry["cache_key"] = cache_key(entry["sha256"])
    if index:
        derived = runtime_index(read_manifest(dump_json(manifest)))
        files.update(derived)
        manifest["files"].update((path, hashlib.sha256(data).hexdigest()) for path, data in derived.items())
    files[MANIFEST] = dump_json(manifest)
    return files


def without_index(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k != RUNTIME_INDEX and not k.startswith(RUNTIME_SHARDS + "/")}


def shard_of(files: dict[str, bytes], command: str) -> str:
    """The index shard that holds ``command``'s record."""
    return json.loads(files[RUNTIME_INDEX])["commands"][command][0]


def tokb(files: dict[str, bytes], prefix: str = "forge/2.3.0") -> bytes:
    return pack_archive(prefix, tuple(sorted(files.items())), (MANIFEST, RUNTIME_INDEX))


def legacy_tokb(files: dict[str, bytes], prefix: str = "forge/2.3.0") -> bytes:
    """What tokeffc 0.1 wrote: folders first, then files, in one zstd frame that declares its size."""
    entries = [tarfile_entry(d, kind=tarfile.DIRTYPE) for d in sorted(_parents(prefix, files))]
    entries += [tarfile_entry(f"{prefix}/{p}", data) for p, data in sorted(files.items())]
    return zst(tar(entries))


def _parents(prefix: str, files) -> set[str]:
    found = set()
    for path in files:
        parts = f"{prefix}/{path}".split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def tarfile_entry(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields) -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, len(data), 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def tar(entries, tail: bytes = b"", fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue() + tail


def zst(data: bytes, **options) -> bytes:
    return zstandard.ZstdCompressor(level=3, **options).compress(data)


def rle_frame(size: int, declare: bool) -> bytes:
    """A zstd frame of ``size`` zero bytes made of RLE blocks: 4 bytes per 128 KiB, so 64 KB per 2 GiB."""
    block = 128 << 10
    descriptor = (3 << 6) if declare else 0  # an 8-byte content size, or none; a window descriptor follows
    header = struct.pack("<I", 0xFD2FB528) + bytes([descriptor, 7 << 3])  # window 2^17
    header += struct.pack("<Q", size) if declare else b""
    count = size // block
    body = bytearray()
    for number in range(count):
        last = 1 if number == count - 1 else 0
        body += (last | 1 << 1 | block << 3).to_bytes(3, "little") + b"\0"
    return header + bytes(body)


def inspect(path: Path, *args: str):
    return CliRunner().invoke(main, ["inspect", str(path), *args])


def assert_refused(result, names: str, match: str = "") -> None:
    """Exit 3, one ``error:`` line naming ``names`` (and saying ``match``), no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 3, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert names in lines[0] and match in lines[0], lines[0]
    assert "Traceback" not in result.output
