"""The benchmark harness's own parts (benchmarks/bench.py, floor.py, generate.py). Nothing here is timed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import EXAMPLE, REPO
from helpers import reference_count

from tokeffc.config import load_config
from tokeffc.pipeline import compile_framework
from tokeffc.sources import discover_sources, walk_tree

sys.path.insert(0, str(REPO / "benchmarks"))
import bench  # noqa: E402
from generate import MARKET_CONFIG, PLUGINS, generate, marketplace  # noqa: E402


def test_summarise_gives_median_and_range():
    assert bench.summarise([3.0, 1.0, 2.0, 10.0]) == bench.Stat(2.5, 1.0, 10.0)
    assert bench.summarise(iter([4.0])) == bench.Stat(4.0, 4.0, 4.0)
    with pytest.raises(ValueError):
        bench.summarise([])


def test_rows_say_whether_the_goal_is_met():
    floor = bench.Stat(0.5, 0.4, 0.6)
    assert bench.ratio_row("w", bench.Stat(1.0, 0.9, 1.2), floor, "s", 2.0).cells() == [
        "w", "1.000 s (0.900–1.200)", "0.500 s (0.400–0.600)", "2.00x", "≤ 2x", "yes"]
    assert bench.ratio_row("w", bench.Stat(1.1, 1.0, 1.2), floor, "s", 2.0).met == "no"
    above = bench.above_row("imp", bench.Stat(0.040, 0.039, 0.041), bench.Stat(0.020, 0.019, 0.022), 15)
    assert (above.ratio, above.goal, above.met) == ("+20.0 ms", "≤ +15 ms", "no")
    limit = bench.limit_row("warm", bench.Stat(8e-6, 7e-6, 9e-6), "us", 10)
    assert limit.cells()[1:] == ["8.00 µs (7.00–9.00)", "—", "—", "≤ 10 µs", "yes"]
    assert bench.stat_cell(bench.Stat(2048 * 300, 2048 * 290, 2048 * 310), "MiB") == "600 MiB (580–620)"


def test_tables_align_and_escape():
    rows = [bench.ratio_row("cold build, a|b", bench.Stat(1.0, 0.9, 1.2), bench.Stat(0.5, 0.4, 0.6), "s", 2.0),
            bench.error_row("runtime")]
    text = bench.format_table(rows).splitlines()
    assert text[0].startswith("work") and set(text[1]) == {"-", " "}
    assert text[0].index("ratio") + len("ratio") == text[2].index("2.00x") + len("2.00x")  # figures right-aligned
    assert text[3].endswith("error (see the notes)")
    markdown = bench.format_markdown(rows).splitlines()
    assert markdown[1] == "| --- | ---: | ---: | ---: | ---: | --- |"
    assert markdown[2].startswith("| cold build, a\\|b | 1.000 s (0.900–1.200) |")


def test_growth_row_compares_the_ratios_at_1x_and_8x(tmp_path):
    lab = bench.Lab(tmp_path, runs=1)
    assert bench.growth_row(lab) == []
    lab.ratios.update({"1x": 2.0, "8x": 2.4})
    (row,) = bench.growth_row(lab)
    assert (row.ratio, row.met) == ("1.20", "no")


def test_groups_chosen_by_name_or_first_word():
    assert bench.chosen_groups([]) == list(bench.GROUPS)
    assert bench.chosen_groups(["build"]) == ["build-1x", "build-8x", "build-bmad", "build-market"]
    assert bench.chosen_groups(["runtime", "rebuild-8x"]) == ["rebuild-8x", "runtime"]
    with pytest.raises(SystemExit, match="unknown group 'speed'"):
        bench.chosen_groups(["speed"])


def test_imports_are_read_from_a_real_importtime_run():
    stderr = subprocess.run([sys.executable, "-X", "importtime", "-c", "import json"], capture_output=True,
                            text=True, check=True).stderr
    names = bench.imported_modules(stderr)
    assert {"json", "json.decoder", "encodings"} <= names
    assert "imported package" not in names and "tiktoken" not in names


def test_a_failing_child_is_one_error_with_its_last_line():
    with pytest.raises(bench.BenchError, match="exited 3: boom"):
        bench.run_child([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"])
    sample = bench.run_child([sys.executable, "-c", "print('hi')"])
    assert sample.stdout == "hi\n" and sample.max_rss_kib > 0 and sample.seconds > 0


def test_source_paths_are_what_the_build_read():
    manifest = compile_framework(EXAMPLE).release.files
    files = dict(manifest)
    paths = bench.source_paths(files["manifest.json"], EXAMPLE)
    config = load_config(EXAMPLE)
    assert paths == sorted(EXAMPLE / s.path for s in discover_sources(config, walk_tree(config)))


def test_the_floor_counts_every_listed_file_once(tmp_path):
    texts = {"a.md": "# A\n\nSome text, twice: <|endoftext|>.\n", "b.yaml": "\ufeffkey: [1, 2, 3]\n"}
    for name, text in texts.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    listing = tmp_path / "files.txt"
    listing.write_text("".join(f"{tmp_path / name}\n" for name in texts), encoding="utf-8")
    out = subprocess.run([sys.executable, bench.FLOOR, str(listing)], capture_output=True, text=True, check=True)
    expected = sum(reference_count(t.removeprefix("\ufeff").encode()) for t in texts.values())
    assert out.stdout == f"2 files {expected} tokens\n"


def test_scaling_keeps_the_seed_framework_and_adds_replicas(tmp_path):
    one, two = generate(tmp_path / "one"), generate(tmp_path / "two", scale=2)
    files_one = {p.relative_to(one): p.read_bytes() for p in one.rglob("*") if p.is_file()}
    files_two = {p.relative_to(two): p.read_bytes() for p in two.rglob("*") if p.is_file()}
    assert len(files_two) == 2 * len(files_one) - 2  # config and core are not replicated
    assert all(files_two[rel] == data for rel, data in files_one.items())
    replica = {str(rel) for rel in files_two} - {str(rel) for rel in files_one}
    assert all(rel.startswith(("modules/r1/", "commands/r1-")) for rel in replica)
    assert "{% include \"modules/r1/" in (two / "commands/r1-cmd00.md").read_text()
    with pytest.raises(ValueError):
        generate(tmp_path / "none", scale=0)


def test_marketplace_lists_its_plugins(tmp_path):
    root, config = marketplace(tmp_path, plugins=3)
    assert config == tmp_path / MARKET_CONFIG and root == tmp_path / "marketplace"
    listed = json.loads((root / ".claude-plugin/marketplace.json").read_text())["plugins"]
    assert [(root / p["source"] / ".claude-plugin/plugin.json").is_file() for p in listed] == [True] * 3
    assert len(list(root.glob("plugins/*/skills/*/SKILL.md"))) == 3 * 7
    assert PLUGINS * 17 + 1 > 700  # the default: ~715 files, like the marketplace in issue 11


def test_harness_runs_its_smallest_workload_end_to_end(tmp_path, capsys):
    markdown = tmp_path / "bench.md"
    assert bench.main(["--only", "build-1x", "--runs", "1", "--markdown", str(markdown)]) == 0
    printed = capsys.readouterr().out
    assert "cold build, generated 1x" in printed and "machine:" in printed
    written = markdown.read_text()
    assert "| cold build, generated 1x |" in written
    assert "the floor read 83 files" in written and "identical to the first: yes" in written
