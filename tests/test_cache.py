"""The build cache: cached and uncached builds are byte-identical across random edits; a damaged entry
is rebuilt; counts from earlier builds spare the encoding; builds sharing a cache are safe."""

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from conftest import EXAMPLE, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokeffc import cache as cache_module
from tokeffc.build import BuildOptions, build_cached
from tokeffc.cache import BuildCache
from tokeffc.errors import TokeffcError
from tokeffc.pipeline import compile_framework


def output(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and not p.name.startswith(".tokeffc")}


def build_both(root: Path, cache: Path, scratch: Path, step: int) -> tuple[object, object]:
    """What a cached and an uncached build write (or, for an edit that broke the sources, say)."""
    outcomes = []
    for name, options in (("cached", BuildOptions(cache=cache)), ("fresh", BuildOptions())):
        try:
            build_cached(root, scratch / f"{name}-{step}", options, allow_over=True)
            outcomes.append(output(scratch / f"{name}-{step}"))
        except TokeffcError as exc:
            outcomes.append(exc.lines())
    return outcomes[0], outcomes[1]


EDITS = st.sampled_from(["append", "prepend", "delete-line", "new-module", "remove-module", "version", "tier",
                         "nothing"])


def apply_edit(root: Path, edit: str, n: int) -> None:
    modules = sorted((root / "modules").rglob("*.md"))
    target = modules[n % len(modules)] if modules else None
    if edit == "append" and target:
        target.write_text(target.read_text() + f"\nOne more sentence, number {n}.\n")
    elif edit == "prepend" and target:
        text = target.read_text()
        head, _, body = text.partition("\n---\n") if text.startswith("---") else ("", "", text)
        target.write_text((head + "\n---\n" if head else "") + f"A first line {n}.\n\n" + body)
    elif edit == "delete-line" and target:
        lines = target.read_text().splitlines(keepends=True)
        target.write_text("".join(lines[:-1]))
    elif edit == "new-module":
        (root / "modules" / f"new{n}.md").write_text(f"# New {n}\n\nNobody requires me yet.\n")
    elif edit == "remove-module" and target and "legacy" in target.name:
        target.unlink()
    elif edit == "version":
        config = root / "tokeffc.yaml"
        config.write_text(config.read_text().replace("version: 2.3.0", f"version: 2.3.{n}"))
    elif edit == "tier":
        config = root / "tokeffc.yaml"
        config.write_text(config.read_text().replace("minimal:  {budget: 3000}", "minimal:  {budget: 3100}"))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(EDITS, st.integers(0, 50)), min_size=1, max_size=4))
def test_cached_and_uncached_builds_are_byte_identical_across_edits(tmp_path_factory, edits):
    scratch = tmp_path_factory.mktemp("edits")
    root = shutil.copytree(EXAMPLE, scratch / "forge")
    cache = scratch / "cache"
    first_cached, first_fresh = build_both(root, cache, scratch, 0)
    assert first_cached == first_fresh
    for step, (edit, n) in enumerate(edits, start=1):
        apply_edit(root, edit, n)
        cached, fresh = build_both(root, cache, scratch, step)
        assert cached == fresh, (edit, n)


def test_a_rebuild_with_nothing_changed_is_served_and_writes_nothing(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    first = build_cached(EXAMPLE, out, BuildOptions(cache=cache))
    assert first.result is not None
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = build_cached(EXAMPLE, out, BuildOptions(cache=cache))
    assert again.result is None and again.report == first.report  # served: the compiler never ran
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_a_damaged_entry_is_ignored_and_rebuilt(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    expected = output(Path(build_cached(EXAMPLE, out, BuildOptions(cache=cache)).folder).parent.parent)
    (entry,) = (cache / "releases").iterdir()
    for damage in ("truncate-archive", "garbage-report", "no-entry-json", "garbage-counts"):
        if damage == "truncate-archive":
            data = (entry / "release.tokb").read_bytes()
            (entry / "release.tokb").write_bytes(data[: len(data) // 2])
        elif damage == "garbage-report":
            (entry / "report.marshal").write_bytes(b"{not marshal")
        elif damage == "no-entry-json":
            (entry / "entry.json").unlink()
        else:  # and no release entry, so that the build reads the damaged counts
            shutil.rmtree(entry)
            for damaged in (*(cache / "counts").iterdir(), *(cache / "files").iterdir()):
                damaged.write_bytes(b"[" * 100_000)  # unchecked, marshal would try to allocate gigabytes
        shutil.rmtree(out)
        rebuilt = build_cached(EXAMPLE, out, BuildOptions(cache=cache))
        assert rebuilt.result is not None, damage  # not served from the damaged entry
        assert output(out) == expected, damage
        assert BuildCache(cache).get_release(entry.name) is not None  # and written afresh


def test_counts_from_an_earlier_build_spare_the_encoding(tmp_path):
    options = BuildOptions(cache=tmp_path / "cache")
    compile_framework(EXAMPLE, options)
    again = compile_framework(EXAMPLE, replace(options, commands=("task",)))  # a fresh build, known texts
    assert not again.counter.loaded  # every text was known: the encoding was never loaded
    edited = shutil.copytree(EXAMPLE, tmp_path / "forge")
    (edited / "modules" / "tdd" / "cycle.md").write_text((edited / "modules" / "tdd" / "cycle.md").read_text() +
                                                         "\nA new closing line.\n")
    after_edit = compile_framework(edited, options)
    assert after_edit.counter.loaded and after_edit.counter.fresh  # only the new texts were counted
    assert len(after_edit.counter.fresh) < 40


def test_two_builds_sharing_a_cache_at_once(tmp_path):
    env = {"TOKEFFC_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.Popen([sys.executable, "-m", "tokeffc.cli", "build", str(EXAMPLE), "-o", str(tmp_path / f"o{i}"),
                              "--json"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(2)]
    results = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), results
    assert output(tmp_path / "o0") == output(tmp_path / "o1")


def reads_under(root: Path, monkeypatch) -> list[str]:
    """The files under ``root`` that the cache reads from now on."""
    read, original = [], cache_module._read

    def reading(path):
        if str(path).startswith(str(root)):
            read.append(str(path))
        return original(path)

    monkeypatch.setattr(cache_module, "_read", reading)
    return read


def test_a_rebuild_key_reads_only_files_whose_signature_moved(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)  # record every file at once: a test cannot wait
    root, cache = shutil.copytree(EXAMPLE, tmp_path / "forge"), BuildCache(tmp_path / "cache")
    key = cache.release_key(root, None, (), ()).key
    read = reads_under(root / "modules", monkeypatch)
    assert cache.release_key(root, None, (), ()).key == key and read == []
    target = root / "modules" / "tdd" / "cycle.md"
    target.write_text(target.read_text() + "One more line.\n")
    assert cache.release_key(root, None, (), ()).key != key and read == [str(target)]


def test_a_file_rewritten_with_its_old_size_and_mtime_changes_the_key(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)
    root, cache = shutil.copytree(EXAMPLE, tmp_path / "forge"), BuildCache(tmp_path / "cache")
    key = cache.release_key(root, None, (), ()).key
    target = root / "modules" / "tdd" / "cycle.md"
    before, text = target.stat(), target.read_text()
    time.sleep(0.05)  # past the file system clock's granularity: the write gets a ctime of its own
    target.write_text(text.replace("e", "E", 1))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # what a careless tool could do
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert cache.release_key(root, None, (), ()).key != key


def test_a_file_changed_a_moment_ago_is_not_recorded(tmp_path, monkeypatch):
    root, cache = shutil.copytree(EXAMPLE, tmp_path / "forge"), BuildCache(tmp_path / "cache")
    cache.release_key(root, None, (), ())  # every file was just copied: none is settled
    read = reads_under(root, monkeypatch)
    cache.release_key(root, None, (), ())
    assert {str(p) for p in root.rglob("*") if p.is_file()} <= set(read)


def test_a_damaged_output_is_written_again_though_its_digest_was_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)
    cache, out = tmp_path / "cache", tmp_path / "out"
    first = build_cached(EXAMPLE, out, BuildOptions(cache=cache))
    expected = output(out)
    assert build_cached(EXAMPLE, out, BuildOptions(cache=cache)).result is None  # served; output digests recorded
    read = reads_under(out, monkeypatch)
    assert build_cached(EXAMPLE, out, BuildOptions(cache=cache)).result is None and read == []  # known by its record
    archive = Path(first.archive)
    time.sleep(0.05)  # a ctime of its own for the damage
    data = archive.read_bytes()
    archive.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size: only the bytes tell
    again = build_cached(EXAMPLE, out, BuildOptions(cache=cache))
    assert again.result is None and output(out) == expected  # served from the cache, the archive rewritten


def test_a_file_edited_while_the_build_ran_keeps_that_build_out_of_the_cache(tmp_path, monkeypatch):
    """An edit made after the key was computed and undone before the build ended: the release was built
    from text the key does not describe, so it is not stored under that key."""
    import tokeffc.pipeline

    root, cache, out = shutil.copytree(EXAMPLE, tmp_path / "forge"), tmp_path / "cache", tmp_path / "out"
    target = root / "modules" / "tdd" / "cycle.md"
    original, compile_for_real = target.read_text(), tokeffc.pipeline.compile_framework

    def compile_during_an_edit(*args, **kwargs):
        target.write_text(original + "\nWritten while the build ran.\n")
        try:
            return compile_for_real(*args, **kwargs)
        finally:
            target.write_text(original)

    monkeypatch.setattr(tokeffc.pipeline, "compile_framework", compile_during_an_edit)
    build_cached(root, out, BuildOptions(cache=cache))
    monkeypatch.setattr(tokeffc.pipeline, "compile_framework", compile_for_real)
    again = build_cached(root, out, BuildOptions(cache=cache))
    assert again.result is not None  # not served from the edited build
    assert output(out) == output(Path(build_cached(root, tmp_path / "fresh", BuildOptions()).folder).parent.parent)


def test_an_edited_or_extra_file_in_the_output_folder_is_put_right_by_a_served_build(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    first = build_cached(EXAMPLE, out, BuildOptions(cache=cache))
    expected, folder = output(out), Path(first.folder)
    bundle = sorted((folder / "bundles").rglob("*.md"))[0]
    bundle.write_text(bundle.read_text() + "A line the release does not hold.\n")
    (folder / "notes.txt").write_text("not part of the release\n")
    again = build_cached(EXAMPLE, out, BuildOptions(cache=cache))
    assert again.result is None and output(out) == expected  # served from the cache, the folder rewritten


def test_a_served_build_prints_what_the_build_printed(tmp_path, monkeypatch):
    """The table (a served build reads only the report's table cut), the over-budget lines, and --json."""
    from click.testing import CliRunner

    import tokeffc.pipeline
    from tokeffc.cli import main

    root = shutil.copytree(EXAMPLE, tmp_path / "forge")
    config = root / "tokeffc.yaml"
    config.write_text(config.read_text().replace("minimal:  {budget: 3000}", "minimal:  {budget: 900}"))
    env = {"TOKEFFC_CACHE_DIR": str(tmp_path / "cache")}
    build = ["build", str(root), "-o", str(tmp_path / "out"), "--allow-over"]
    fresh = {extra: CliRunner().invoke(main, [*build, *extra], env=env).stdout for extra in ((), ("--json",))}

    def not_compiled(*args, **kwargs):
        raise AssertionError("the cache should have served this build")

    monkeypatch.setattr(tokeffc.pipeline, "compile_framework", not_compiled)
    for extra, printed in fresh.items():
        served = CliRunner().invoke(main, [*build, *extra], env=env)
        assert served.exit_code == 0 and served.stdout == printed
    assert "over its budget of 900. What to cut:" in fresh[()]


def test_a_plugin_built_from_its_marketplace_is_served_again(tmp_path):
    """A marketplace with one plugin builds that plugin from its own root, inside the root the key walks:
    the build is stored, and the next one is served."""
    root = tmp_path / "market"
    (root / ".claude-plugin").mkdir(parents=True)
    (root / ".claude-plugin" / "marketplace.json").write_text(
        '{"name": "m", "owner": {"name": "o"}, "plugins": [{"name": "kit", "source": "./plugins/kit"}]}')
    plugin = root / "plugins" / "kit"
    (plugin / ".claude-plugin").mkdir(parents=True)
    (plugin / ".claude-plugin" / "plugin.json").write_text('{"name": "kit", "version": "1.0.0"}')
    (plugin / "commands").mkdir()
    (plugin / "commands" / "go.md").write_text("---\ndescription: Go.\n---\n\nGo somewhere useful.\n")
    options = BuildOptions(cache=tmp_path / "cache", preset="claude-plugin")
    first = build_cached(root, tmp_path / "out", options)
    assert first.result is not None and first.result.framework.config.root.resolve() == plugin.resolve()
    assert build_cached(root, tmp_path / "out", options).result is None
