"""Config keys and options that change what is built: each has a small framework that shows it."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, MINI_CONFIG, REPO

from tokeffc.cli import main
from tokeffc.pipeline import build_release, compile_framework
from tokeffc.runtime import Release, ReleaseError


def bundle(result, command, tier):
    return dict(result.release.files)[f"bundles/{command}/{tier}.md"].decode()


def test_exclude_and_search_paths(mini):
    config = MINI_CONFIG + "exclude: ['modules/drafts/*']\nsearch_paths: [shared/snippets]\n"
    root = mini({"commands/c.md": "# C\n@tone.md\n", "modules/drafts/wip.md": "wip\n",
                 "shared/snippets/tone.md": "Keep a calm tone.\n"}, config=config)
    result = compile_framework(root)
    assert "modules/drafts/wip.md" not in result.framework.documents
    assert "Keep a calm tone." in bundle(result, "c", "minimal")


def test_declared_load_sets_how_declared_dependencies_load(mini):
    agent = "# Agent\n\n```yaml\ndependencies:\n  tasks: [build.md]\n```\n"
    root = mini({"agents/a.md": agent, "tasks/build.md": "Build it.\n"},
                config=MINI_CONFIG + "commands: agents/*.md\nmodules: tasks/*.md\ndeclared_load: lazy\n")
    (placement,) = compile_framework(root).bundles[0].selection.chunks
    assert (placement.path, placement.load) == ("tasks/build.md", "lazy")


def test_warn_status_at_warn_at(mini):
    root = mini({"commands/c.md": "word " * 300 + "\n"},
                config="name: m\nversion: 1.0.0\ncore: [CORE.md]\ntiers: {only: {budget: 400}}\nwarn_at: 0.5\n")
    (check,) = compile_framework(root).checks
    assert check.status == "warn" and 200 <= check.tokens <= 400


def test_progress_is_reported_per_bundle(mini):
    root = mini({"commands/a.md": "a\n", "commands/b.md": "b\n"})
    seen = []
    compile_framework(root, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


def test_build_writes_to_root_dist_by_default(mini, monkeypatch, tmp_path):
    root = mini({"commands/c.md": "c\n"})
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(main, ["build", str(root)]).exit_code == 0
    assert (root / "dist" / "mini-1.0.0.tokb").is_file() and not (tmp_path / "dist").exists()


def test_config_option_points_at_another_file(tmp_path, mini):
    root = mini({"commands/c.md": "c\n"})
    other = tmp_path / "elsewhere.yaml"
    other.write_text(MINI_CONFIG.replace("name: mini", "name: renamed"))
    result = CliRunner().invoke(main, ["check", str(root), "--config", str(other), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["framework"] == "renamed"


def test_check_leaves_out_dist_inside_the_root(mini, monkeypatch):
    root = mini({"commands/c.md": "c\n"}, config=MINI_CONFIG + "modules: '**/*.md'\n")
    monkeypatch.chdir(root)
    runner = CliRunner()
    assert runner.invoke(main, ["build", "."]).exit_code == 0
    report = json.loads(runner.invoke(main, ["check", ".", "--json"]).stdout)
    assert report["unreached"] == []  # the bundles in ./dist were not read as modules


def test_chunk_differing_between_tiers_needs_a_tier(mini, tmp_path):
    root = mini({"commands/c.md": "---\ntokeffc: {requires: [{module: x, load: on_demand}]}\n---\nc\n",
                 "modules/x.md": "x {{ tokeffc.tier }}\n"})
    _, _, archive = build_release(root, tmp_path / "out")
    release = Release.open(archive)
    with pytest.raises(ReleaseError, match="differs between tiers or commands"):
        release.chunk("x")
    assert release.chunk("x", tier="full").text == "x full\n"
    assert release.chunk("x", tier="full", command="c").text == "x full\n"


def test_builds_agree_across_hash_seeds(tmp_path):
    """Set iteration order changes with PYTHONHASHSEED; the release must not."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "tokeffc.cli", "build", str(EXAMPLE), "-o", str(out)],
                       check=True, capture_output=True, env=env, cwd=REPO)
        outputs.append((out / "forge-2.3.0.tokb").read_bytes())
    assert outputs[0] == outputs[1]


def test_init_uses_the_given_name(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(tmp_path / "x"), "--name", "acme-prompts"]).exit_code == 0
    assert "name: acme-prompts" in (tmp_path / "x" / "tokeffc.yaml").read_text()


def test_a_tier_can_keep_its_reasoning(mini):
    body = '<checkpoint id="x">\n<reasoning>Long why.</reasoning>\n<conclusion>Do it.</conclusion>\n</checkpoint>\n'
    config = ("name: m\nversion: 1.0.0\ncore: [CORE.md]\ntiers:\n  small: {budget: 900, compress: false}\n"
              "  big: {budget: 1000}\n")
    result = compile_framework(mini({"commands/c.md": body}, config=config))
    assert "Long why." in bundle(result, "c", "small")


def test_unavailable_encoding_names_the_config_line(mini):
    root = mini({"commands/c.md": "c\n"}, config=MINI_CONFIG + "encoding: o200k_base\n")
    result = CliRunner().invoke(main, ["check", str(root)])
    assert result.exit_code == 3
    assert "tokeffc.yaml:8: encoding 'o200k_base' is not available offline" in result.stderr


def test_inspect_json_and_stats_without_a_pass(tmp_path):
    runner = CliRunner()
    runner.invoke(main, ["build", str(EXAMPLE), "-o", str(tmp_path)])
    listing = json.loads(runner.invoke(main, ["inspect", str(tmp_path / "forge-2.3.0.tokb"), "--json"]).stdout)
    assert listing["verified"] and "manifest.json" not in listing["files"] and len(listing["files"]) > 20
    report = json.loads(runner.invoke(main, ["stats", str(EXAMPLE), "--no-pass", "dedupe", "--json"]).stdout)
    with_dedupe = json.loads(runner.invoke(main, ["stats", str(EXAMPLE), "--json"]).stdout)
    assert report["release_tokens"] > with_dedupe["release_tokens"]
