"""Releases replaced as a pair: killed writers, concurrent writers, and output errors (exit 5)."""

from __future__ import annotations

import hashlib
import os
import pickle
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, MINI_CONFIG, REPO, write_tree

from tokeffc import publish
from tokeffc.cli import main
from tokeffc.pipeline import compile_framework
from tokeffc.runtime import Release

BEFORE_COMMIT = ("staging", "staged")
AFTER_COMMIT = ("committed", "moved-previous", "moved-folder", "moved-archive", "journal-removed", "cleaned")

WRITER = textwrap.dedent("""
    import os, pickle, signal, sys, time
    from tokeffc import publish
    files, out, name, kill_at, log = pickle.loads(open(sys.argv[1], "rb").read())

    def hook(step):
        if log:  # the steps inside the lock, stamped, with a pause to give another writer its chance
            with open(log, "a") as handle:
                handle.write(f"{os.getpid()} {step} {time.monotonic()}\\n")
            time.sleep(0.05)
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    publish.step_hook = hook
    publish.write_release(out, name, "1.0.0", files)
""")


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, tuple]:
    """Four small releases: three builds of ``mini`` 1.0.0, and ``other`` 1.0.0."""
    built = {}
    for key, name, text in (("a", "mini", "alpha"), ("b", "mini", "beta"), ("c", "mini", "gamma"),
                            ("other", "other", "other")):
        root = write_tree(tmp_path_factory.mktemp(key), {
            "tokeffc.yaml": MINI_CONFIG.replace("name: mini", f"name: {name}"), "CORE.md": "# Core\n\nBe precise.\n",
            "commands/c.md": f"Do the {text} task.\n" + "Say what changed and why.\n" * 40})
        built[key] = compile_framework(root).release.files
    return built


def release_id(files) -> str:
    return hashlib.sha256(dict(files)["manifest.json"]).hexdigest()


def ids(out: Path, name: str = "mini") -> tuple[str | None, str | None]:
    """The release id of the folder and of the archive (None when absent)."""
    folder, archive = out / name / "1.0.0", out / f"{name}-1.0.0.tokb"
    return (Release.open(folder).release_id if (folder / "manifest.json").exists() else None,
            Release.open(archive).release_id if archive.exists() else None)


def every_manifest_id(out: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("manifest.json")}


def run_writer(tmp_path, files, out, name="mini", kill_at=None, log=None) -> subprocess.Popen:
    job = tmp_path / f"job-{name}-{kill_at}-{os.urandom(4).hex()}.pickle"
    job.write_bytes(pickle.dumps((files, str(out), name, kill_at, log and str(log))))
    return subprocess.Popen([sys.executable, "-c", WRITER, str(job)], cwd=REPO)


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".tokeffc-") or p.name == publish.JOURNAL_NAME)


@pytest.mark.parametrize("step", BEFORE_COMMIT + AFTER_COMMIT)
def test_a_writer_killed_at_any_step(tmp_path, releases, step):
    out = tmp_path / "dist"
    publish.write_release(out, "mini", "1.0.0", releases["a"])
    old, new = release_id(releases["a"]), release_id(releases["b"])
    assert run_writer(tmp_path, releases["b"], out, kill_at=step).wait() == -signal.SIGKILL
    # The previous release is never lost: in place, or kept in staging until the new one is in place.
    assert old in every_manifest_id(out) or ids(out) == (new, new)
    publish.write_release(out, "other", "1.0.0", releases["other"])  # any later write recovers first
    expected = new if step in AFTER_COMMIT else old
    assert ids(out) == (expected, expected) and leftovers(out) == []
    assert ids(out, "other") == (release_id(releases["other"]),) * 2
    publish.write_release(out, "mini", "1.0.0", releases["c"])
    assert ids(out) == (release_id(releases["c"]),) * 2 and leftovers(out) == []


def test_a_killed_first_release_leaves_nothing_half_written(tmp_path, releases):
    out = tmp_path / "dist"
    assert run_writer(tmp_path, releases["a"], out, kill_at="moved-folder").wait() == -signal.SIGKILL
    assert ids(out) == (release_id(releases["a"]), None)  # the archive was not yet in place
    publish.recover(out)
    assert ids(out) == (release_id(releases["a"]),) * 2 and leftovers(out) == []


def test_two_writers_into_one_folder_take_turns(tmp_path, releases):
    out, log = tmp_path / "dist", tmp_path / "steps.log"
    publish.write_release(out, "mini", "1.0.0", releases["a"])
    writers = [run_writer(tmp_path, releases[key], out, log=log) for key in ("b", "c")]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    folder_id, archive_id = ids(out)
    assert folder_id == archive_id and folder_id in {release_id(releases["b"]), release_id(releases["c"])}
    assert leftovers(out) == []
    spans: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        pid, _, stamp = line.split()
        spans.setdefault(pid, []).append(float(stamp))
    (_, first_end), (second_start, _) = sorted((min(s), max(s)) for s in spans.values())
    assert first_end < second_start  # one writer's steps all came before the other's


def test_stale_staging_is_removed_and_a_dangling_journal_dropped(tmp_path, releases):
    out = tmp_path / "dist"
    publish.write_release(out, "mini", "1.0.0", releases["a"])
    (out / ".tokeffc-stale123" / "release").mkdir(parents=True)
    (out / ".tokeffc-notes").mkdir()  # not a name tokeffc gives a staging folder: left alone
    (out / publish.JOURNAL_NAME).write_text('{"staging": ".tokeffc-gone", "folder": "mini/1.0.0", '
                                            '"archive": "mini-1.0.0.tokb", "release_id": "x"}')
    publish.write_release(out, "mini", "1.0.0", releases["b"])
    assert ids(out) == (release_id(releases["b"]),) * 2 and leftovers(out) == [".tokeffc-notes"]


# --- output errors: exit 5, one line naming the path ---------------------------------------------------------


def build(out: Path):
    return CliRunner().invoke(main, ["build", str(EXAMPLE), "-o", str(out)])


def assert_output_error(result, path: str, says: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 5, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: ") and path in lines[0] and says in lines[0], lines
    assert "Traceback" not in result.output


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_an_output_path_through_a_file(tmp_path):
    (tmp_path / "file.txt").write_text("not a folder\n")
    assert_output_error(build(tmp_path / "file.txt" / "dist"), str(tmp_path / "file.txt"), "Not a directory")


def test_a_folder_where_the_archive_goes_leaves_the_previous_release(tmp_path):
    out = tmp_path / "dist"
    assert build(out).exit_code == 0
    (out / "forge-2.3.0.tokb").unlink()
    (out / "forge-2.3.0.tokb").mkdir()
    before = snapshot(out)
    assert_output_error(build(out), str(out / "forge-2.3.0.tokb"), "a folder is in the way")
    assert snapshot(out) == before and leftovers(out) == []


def test_an_unreadable_journal_is_reported(tmp_path):
    out = tmp_path / "dist"
    out.mkdir()
    (out / publish.JOURNAL_NAME).write_text("{not json")
    assert_output_error(build(out), str(out / publish.JOURNAL_NAME), "journal of an interrupted build")


def _no_bigger_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # writes past 4 KiB fail, as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_write_that_fails_midway_leaves_the_previous_release(tmp_path):
    out = tmp_path / "dist"
    assert build(out).exit_code == 0
    before = snapshot(out)
    done = subprocess.run([sys.executable, "-m", "tokeffc.cli", "build", str(EXAMPLE), "-o", str(out),
                           "--release-version", "2.3.1"], capture_output=True, text=True, cwd=REPO,
                          preexec_fn=_no_bigger_files, timeout=120, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 5 and len(lines) == 1 and "File too large" in lines[0] and str(out) in lines[0], lines
    assert snapshot(out) == before and leftovers(out) == []


def test_an_output_folder_that_refuses_writes(tmp_path):
    if os.geteuid() != 0:
        out = tmp_path / "dist"
        out.mkdir()
        out.chmod(0o555)
        try:
            assert_output_error(build(out), str(out), "Permission denied")
        finally:
            out.chmod(0o755)
        return
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root, with no sysfs to refuse a write")
    # Permissions do not stop root; sysfs refuses to create folders whoever asks.
    assert_output_error(build(Path("/sys/tokeffc-dist")), "/sys/tokeffc-dist", "Operation not permitted")
