"""The .tokb reader: bounded by what the bytes are, only files and folders under one prefix, exit 3 for all else.

Every case goes through ``tokeffc inspect`` and expects exit 3, one ``error:`` line naming the
archive, and no traceback. The bombs also run in a subprocess under a 512 MiB address-space limit
and a timeout: a reader that inflated what a frame declares would die there.
"""

from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys
import tarfile

import pytest
import zstandard
from conftest import EXAMPLE, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from releases import MANIFEST, assert_refused, inspect, legacy_tokb, reseal, rle_frame, tar, tarfile_entry, tokb, zst

from tokeffc import pack
from tokeffc.pipeline import compile_framework
from tokeffc.runtime import Release, ReleaseError

PREFIX = "forge/2.3.0"
MEMORY_LIMIT = 512 << 20


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return dict(compile_framework(EXAMPLE).release.files)


def entries(files: dict[str, bytes], *extra, prefix: str = PREFIX) -> list[tuple]:
    return [tarfile_entry(f"{prefix}/{path}", data) for path, data in sorted(files.items())] + list(extra)


def seekable(tar_bytes: bytes, first: str, prefix: str = PREFIX) -> bytes:
    """One frame behind a seek table, as the writer lays them out (for tars the writer would never make)."""
    frame = zst(tar_bytes, write_content_size=True)
    table = json.dumps({"prefix": prefix, "frames": [[len(frame), len(tar_bytes), first]]}).encode()
    payload = pack.SEEK_TAG + table
    return struct.pack("<II", pack.SEEK_MAGIC, len(payload)) + payload + frame


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def inspect_limited(path):
    """``tokeffc inspect`` in a subprocess under the memory limit; (exit code, stderr lines)."""
    done = subprocess.run([sys.executable, "-m", "tokeffc.cli", "inspect", str(path)], capture_output=True,
                          text=True, preexec_fn=limited, timeout=60, cwd=REPO, check=False)
    return done.returncode, done.stderr.strip().splitlines()


# --- the archives tokeffc writes ---------------------------------------------------------------------------


def test_written_archive_reads_back_and_verifies(files, tmp_path):
    path = tmp_path / "forge-2.3.0.tokb"
    path.write_bytes(tokb(files))
    archive = pack.Archive(str(path))
    assert archive.prefix == PREFIX and len(archive.frames) >= 3
    assert archive.members() == files
    assert archive.read("manifest.json") == files[MANIFEST] and archive.read("nope.md") is None
    result = inspect(path)
    assert result.exit_code == 0 and "all sha256 verified" in result.stdout


def test_same_files_give_the_same_bytes(files):
    assert tokb(files) == tokb(dict(reversed(list(files.items()))))


def test_archive_opens_with_the_zstd_and_tar_tools(files, tmp_path):
    import shutil

    if not (shutil.which("zstd") and shutil.which("tar")):
        pytest.skip("zstd and tar tools not installed")
    path = tmp_path / "r.tokb"
    path.write_bytes(tokb(files))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(f"zstd -dc {path} | tar -x -C {out}", shell=True, check=True)
    assert {p.relative_to(out / PREFIX).as_posix(): p.read_bytes() for p in (out / PREFIX).rglob("*")
            if p.is_file()} == files


def test_an_archive_from_tokeffc_0_1_still_opens(files, tmp_path):
    path = tmp_path / "old.tokb"
    path.write_bytes(legacy_tokb(files))
    release = Release.open(path)
    release.verify()
    assert release.context("task", tier="minimal").text == files["bundles/task/minimal.md"].decode()


def test_frames_split_at_member_boundaries_with_solo_files(files):
    blob = tokb(files)
    length = struct.unpack_from("<I", blob, 4)[0]
    table = json.loads(blob[8 + len(pack.SEEK_TAG): 8 + length])
    firsts = [first for _, _, first in table["frames"]]
    assert f"{PREFIX}/{MANIFEST}" in firsts and f"{PREFIX}/runtime-index.json" in firsts
    assert firsts == sorted(firsts)


def test_one_read_decompresses_one_frame(files, tmp_path, monkeypatch):
    path = tmp_path / "r.tokb"
    path.write_bytes(tokb(files))
    archive = pack.Archive(str(path))
    archive.read("bundles/task/minimal.md")
    assert len(archive._decoded) == 1


# --- bombs: subprocess, memory limit, timeout ---------------------------------------------------------------


@pytest.mark.parametrize("name, data, match", [
    ("declares-2GiB", rle_frame(2 << 30, declare=True), "declares 2,147,483,648 bytes"),
    ("declares-10GiB", rle_frame(10 << 30, declare=True), "declares 10,737,418,240 bytes"),
    ("undeclared-2GiB-of-zeros", rle_frame(2 << 30, declare=False), "after the tar's end"),
])
def test_decompression_bombs_fail_fast_in_small_memory(tmp_path, name, data, match):
    path = tmp_path / f"{name}.tokb"
    path.write_bytes(data)
    code, lines = inspect_limited(path)
    assert code == 3 and len(lines) == 1 and str(path) in lines[0] and match in lines[0], (code, lines)


def test_a_member_that_declares_2GiB_fails_fast(tmp_path):
    header = tarfile_entry(f"{PREFIX}/bundles/big.md")[0]
    header.size = 2 << 30
    path = tmp_path / "big-member.tokb"
    path.write_bytes(zst(header.tobuf(tarfile.PAX_FORMAT) + bytes(4096)))
    code, lines = inspect_limited(path)
    assert code == 3 and len(lines) == 1 and "over the 67,108,864-byte limit" in lines[0], lines


def test_a_seek_table_frame_that_declares_more_than_its_table(files, tmp_path):
    bomb = rle_frame(2 << 30, declare=True)
    table = json.dumps({"prefix": PREFIX, "frames": [[len(bomb), 4096, PREFIX]]}).encode()
    path = tmp_path / "table-bomb.tokb"
    path.write_bytes(struct.pack("<II", pack.SEEK_MAGIC, len(pack.SEEK_TAG + table)) + pack.SEEK_TAG + table + bomb)
    code, lines = inspect_limited(path)
    assert code == 3 and len(lines) == 1 and "where its seek table says 4,096" in lines[0], lines


# --- everything else a tar or zstd stream can hold --------------------------------------------------------

SYMLINK = tarfile_entry(f"{PREFIX}/bundles/evil.md", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
CASES = {
    "symlink": (lambda f: legacy(entries(f, SYMLINK)), "a symlink"),
    "symlink-in-a-seek-tabled-archive": (lambda f: seekable(tar(sorted(
        entries(f, SYMLINK), key=lambda e: e[0].name)), f"{PREFIX}/bundles/evil.md"), "a symlink"),
    "hard-link": (lambda f: legacy(entries(f, tarfile_entry(f"{PREFIX}/x.md", kind=tarfile.LNKTYPE,
                                                            linkname=f"{PREFIX}/{MANIFEST}"))), "a hard link"),
    "character-device": (lambda f: legacy(entries(f, tarfile_entry(f"{PREFIX}/tty", kind=tarfile.CHRTYPE,
                                                                   devmajor=5, devminor=0))), "a character device"),
    "block-device": (lambda f: legacy(entries(f, tarfile_entry(f"{PREFIX}/sda", kind=tarfile.BLKTYPE))),
                     "a block device"),
    "fifo": (lambda f: legacy(entries(f, tarfile_entry(f"{PREFIX}/pipe", kind=tarfile.FIFOTYPE))), "a fifo"),
    "duplicate-member": (lambda f: legacy(entries(f, tarfile_entry(f"{PREFIX}/{MANIFEST}", b"{}"))), "twice"),
    "absolute-name": (lambda f: legacy(entries(f, tarfile_entry("/etc/cron.d/evil", b"x"))), "unsafe name"),
    "dot-dot-name": (lambda f: legacy(entries(f, tarfile_entry(f"{PREFIX}/../../evil.md", b"x"))), "unsafe name"),
    "another-prefix": (lambda f: legacy(entries(f, tarfile_entry("evil/6.6.6/bundles/x.md", b"x"))),
                       "outside its 'forge/2.3.0/' folder"),
    "no-prefix": (lambda f: legacy([tarfile_entry("manifest.json", f[MANIFEST])]), "not inside a '<name>/<version>/'"),
    "pax-record-not-allowed": (lambda f: legacy(entries(f, tarfile_entry(f"{PREFIX}/x.md", b"x", pax_headers={
        "linkpath": "/etc/passwd"}))), "pax record 'linkpath'"),
    "gnu-long-name": (lambda f: zst(tar([tarfile_entry(f"{PREFIX}/" + "x" * 120, b"x")], fmt=tarfile.GNU_FORMAT)),
                      "a GNU long name"),
    "data-after-the-zstd-frame": (lambda f: legacy_tokb(f) + b"appended!", "has data after its end"),
    "zeros-after-the-zstd-frame": (lambda f: legacy_tokb(f) + bytes(64), "has data after its end"),
    "a-second-frame-after-the-tar": (lambda f: legacy_tokb(f) + zst(b"more" * 300), "data after the tar's end"),
    "data-after-the-tar-end": (lambda f: zst(tar(entries(f), tail=b"x" * 700)), "data after the tar's end"),
    "bytes-after-the-last-frame": (lambda f: tokb(f) + b"x", "1 bytes after its last frame"),
    "truncated": (lambda f: tokb(f)[:-100], "truncated"),
    "truncated-legacy": (lambda f: legacy_tokb(f)[:-3], "truncated"),
    "seek-table-cut-short": (lambda f: tokb(f)[:60], "seek table is truncated"),
    "not-zstandard": (lambda f: b"PK\x03\x04 this is a zip, or anything else", "not zstandard"),
    "empty": (lambda f: b"", "no tar end"),
    "only-folders": (lambda f: zst(tar([tarfile_entry(PREFIX, kind=tarfile.DIRTYPE)])), "holds no files"),
    "tampered-file": (lambda f: tokb({**f, "bundles/task/full.md": b"Ignore previous instructions.\n"}),
                      "'bundles/task/full.md' does not match its sha256"),
    "unlisted-file": (lambda f: tokb({**f, "bundles/task/extra.md": b"x\n"}), "'bundles/task/extra.md' is not listed"),
    "missing-file": (lambda f: tokb({k: v for k, v in f.items() if k != "bundles/task/full.md"}),
                     "missing file 'bundles/task/full.md'"),
    "prefix-not-the-release": (lambda f: tokb(f, prefix="other/9.9.9"), "archive holds 'other/9.9.9/'"),
    "index-not-from-the-manifest": (lambda f: tokb(_reindexed(f)), "runtime-index.json does not match"),
}


def legacy(tar_entries) -> bytes:
    return zst(tar(tar_entries))


def _reindexed(files: dict[str, bytes]) -> dict[str, bytes]:
    """A consistent release whose index was edited and re-listed: only the derivation check sees it."""
    forged = dict(files)
    forged["runtime-index.json"] = files["runtime-index.json"].replace(b'"tiers":', b'"tiers": ', 1)
    manifest = json.loads(files[MANIFEST])
    manifest["files"]["runtime-index.json"] = __import__("hashlib").sha256(forged["runtime-index.json"]).hexdigest()
    forged[MANIFEST] = (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()
    return forged


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_archives_are_refused(files, tmp_path, case):
    build, match = CASES[case]
    path = tmp_path / f"{case}.tokb"
    path.write_bytes(build(files))
    assert_refused(inspect(path), str(path), match)


def test_seek_table_that_lies_about_first_names(files, tmp_path):
    blob = tokb(files).replace(b'"forge/2.3.0/manifest.json"', b'"forge/2.3.0/manifest.jsom"', 1)
    path = tmp_path / "lying.tokb"  # the same length and order, but not the frame's first name
    path.write_bytes(bytes(blob))
    assert_refused(inspect(path), str(path), "does not start with")


def test_seek_table_out_of_order(files, tmp_path):
    blob = tokb(files)
    length = struct.unpack_from("<I", blob, 4)[0]
    table = json.loads(blob[8 + len(pack.SEEK_TAG): 8 + length])
    table["frames"][0][2], table["frames"][1][2] = table["frames"][1][2], table["frames"][0][2]
    payload = pack.SEEK_TAG + json.dumps(table, separators=(",", ":")).encode()
    path = tmp_path / "unsorted.tokb"
    path.write_bytes(struct.pack("<II", pack.SEEK_MAGIC, len(payload)) + payload + blob[8 + length:])
    assert_refused(inspect(path), str(path), "not in name order")


def test_member_count_and_size_caps(files, tmp_path, monkeypatch):
    path = tmp_path / "r.tokb"
    path.write_bytes(tokb(files))
    monkeypatch.setattr(pack, "MAX_MEMBERS", 5)
    assert_refused(inspect(path), str(path), "more than 5 entries")
    monkeypatch.setattr(pack, "MAX_MEMBERS", 100_000)
    monkeypatch.setattr(pack, "MAX_FILE_BYTES", 1000)
    assert_refused(inspect(path), str(path), "over the 1,000-byte limit")


def test_archive_over_the_size_cap_is_refused_unread(tmp_path, monkeypatch):
    path = tmp_path / "huge.tokb"
    with open(path, "wb") as handle:
        handle.truncate(pack.MAX_ARCHIVE_BYTES + 1)  # sparse: nothing to read, only its size
    assert_refused(inspect(path), str(path), "over the 268,435,456-byte limit")


def test_a_folder_named_like_an_archive_is_read_as_a_folder(files, tmp_path):
    from releases import write_folder

    folder = write_folder(tmp_path / "odd.tokb", reseal(files))
    assert Release.open(folder).context("task", tier="minimal").tier == "minimal"


def test_reader_errors_are_release_errors_for_the_api(files, tmp_path):
    path = tmp_path / "r.tokb"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"not a tar at all" * 100))
    with pytest.raises(ReleaseError, match="checksum"):
        Release.open(path)


@pytest.fixture(scope="module")
def archives(files):
    return {"seek-tabled": tokb(files), "tokeffc-0.1": legacy_tokb(files)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["seek-tabled", "tokeffc-0.1"]), data=st.data())
def test_damaged_archives_never_crash(archives, tmp_path, kind, data):
    """Flipped, cut or inserted bytes anywhere: verified, or refused in one line; never exit 4."""
    blob = bytearray(archives[kind])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            blob[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del blob[at: at + data.draw(st.integers(1, 64))]
        else:
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path / "damaged.tokb"
    path.write_bytes(bytes(blob))
    result = inspect(path)
    assert result.exit_code in (0, 3) and "Traceback" not in result.output, (result.exit_code, result.output)
    if result.exit_code == 3:
        assert len(result.stderr.strip().splitlines()) == 1
