"""``tokeffc init``: the starter, and ``--preset``'s inferred, commented ``tokeffc.yaml`` for an existing
framework, which builds the same release as ``--preset`` alone."""

import json
import re
import shutil
import statistics

import pytest
from click.testing import CliRunner
from conftest import CORPORA, write_tree

from tokeffc.cli import main
from tokeffc.pipeline import BuildOptions, compile_framework
from tokeffc.yamlio import read_yaml

needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason="shared corpora not present")


def run(*args):
    return CliRunner().invoke(main, ["init", *map(str, args)])


def uncommented_rules(text: str) -> str:
    """The config with its example rules switched on: the commented block after '# rules:', uncommented."""
    head, marker, block = text.partition("# rules:\n")
    assert marker, "no example rules"
    return head + "rules:\n" + "".join(line[2:] + "\n" for line in block.splitlines())


def release_without_source_hash(result):
    files = dict(result.release.files)
    manifest = json.loads(files.pop("manifest.json"))
    manifest.pop("source_hash")  # of the config's text: comments included, by design
    return files, manifest


@needs_corpora
@pytest.mark.parametrize("name, preset", [("superclaude", "claude-code"), ("bmad", "bmad"),
                                          ("superpowers", "claude-plugin")])
def test_the_written_config_builds_the_same_release_as_the_preset_alone(tmp_path, name, preset):
    copy = shutil.copytree(CORPORA / name, tmp_path / name)  # same folder name: the name comes from it
    result = run("--preset", preset, copy)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {copy / 'tokeffc.yaml'} for preset {preset}")
    with_config = compile_framework(copy)
    alone = compile_framework(CORPORA / name, BuildOptions(preset=preset))
    assert "tokeffc.yaml" not in with_config.framework.documents  # settings, never a source
    assert release_without_source_hash(with_config) == release_without_source_hash(alone)
    assert with_config.manifest.preset == preset


@pytest.fixture(scope="module")
def superclaude_config(tmp_path_factory):
    if not CORPORA.is_dir():
        pytest.skip("shared corpora not present")
    copy = shutil.copytree(CORPORA / "superclaude", tmp_path_factory.mktemp("init") / "superclaude")
    assert run("--preset", "claude-code", copy).exit_code == 0
    return copy, (copy / "tokeffc.yaml").read_text(encoding="utf-8")


def test_it_says_what_the_preset_found(superclaude_config):
    _, text = superclaude_config
    data = read_yaml(text, "tokeffc.yaml").data
    assert data == {"preset": "claude-code", "name": "superclaude", "version": "0.0.0"}
    assert "name: superclaude  # from the folder's name" in text
    commands = (r"#   commands: 25\n#\s+0  \.claude/commands/\*\*/\*\.md\n"
                r"#\s+25  \*\*/\[Cc\]ommands/\*\*/\*\.md\n")
    found = re.search(commands, text)
    assert found, text
    assert re.search(r"#   core files: 1\n(#\s+\d  .*\n){3}", text) and "#   agents: 16\n" in text
    assert "16 agents, 25 commands, the session start." in text


def test_the_always_loaded_set_has_the_builds_counts(superclaude_config):
    copy, text = superclaude_config
    result = compile_framework(copy)
    total = re.search(r"for every command today, ([\d,]+) tokens", text).group(1)
    assert int(total.replace(",", "")) == result.manifest.baseline.always_tokens
    found = re.findall(r"^#\s+([\d,]+)  (SuperClaude/\S+\.md)$", text, re.M)
    rows = {path: int(n.replace(",", "")) for n, path in found}
    assert rows["SuperClaude/Core/RULES.md"] == result.renderings.written["SuperClaude/Core/RULES.md"] == 3068
    assert list(rows.values()) == sorted(rows.values(), reverse=True) and len(rows) == 15


def test_the_example_rules_trim_what_every_command_loads(superclaude_config):
    copy, text = superclaude_config
    assert '#   - match: "SuperClaude/Core/RULES.md"\n#     load: on_demand\n#     when: {line: heading}\n' in text
    trimmed = copy.parent / "trimmed.yaml"
    trimmed.write_text(uncommented_rules(text), encoding="utf-8")
    before = compile_framework(copy)
    after = compile_framework(copy, BuildOptions(config_path=trimmed))
    assert not after.over_budget

    def median(result):
        bundles = result.manifest.bundles
        return statistics.median(b.tokens for b in bundles if b.tier == "minimal" and b.role == "command")

    # RULES, MODE_Business_Panel and RESEARCH_CONFIG (7,827 tokens) leave every bundle: the README's figures
    assert (median(before), median(after)) == (pytest.approx(19993, rel=0.02), pytest.approx(12316, rel=0.02))
    offered = {c.id for c in after.manifest.bundle("implement", "minimal").chunks}
    assert {"SuperClaude/Core/RULES", "SuperClaude/Modes/MODE_Business_Panel"} <= offered


NAMED = {
    "CLAUDE.md": "# Project\n\n@docs/BIG.md\n@docs/SMALL.md\n",
    "docs/BIG.md": "# Big rules\n\n" + "".join(f"- Rule {i}: keep the change small and tested.\n" for i in range(60)),
    "docs/SMALL.md": "# Small\n\nBe brief.\n",
    "commands/review.md": "---\ndescription: Review a change\n---\nRead `docs/BIG.md` before reviewing.\n",
    "commands/ship.md": "---\ndescription: Ship it\n---\nShip the change.\n",
}


def test_example_rules_keep_a_file_inline_for_the_commands_that_name_it(tmp_path):
    root = write_tree(tmp_path / "proj", NAMED)
    assert run("--preset", "claude-code", root).exit_code == 0
    text = (root / "tokeffc.yaml").read_text(encoding="utf-8")
    assert "on_demand for all but review" in text
    (root / "tokeffc.yaml").write_text(uncommented_rules(text), encoding="utf-8")
    manifest = compile_framework(root).manifest
    review, ship = manifest.bundle("review", "minimal"), manifest.bundle("ship", "minimal")
    assert "docs/BIG" in {m.id for m in review.modules} and "docs/BIG" not in {c.id for c in review.chunks}
    assert "docs/BIG" in {c.id for c in ship.chunks} and "docs/BIG" not in {m.id for m in ship.modules}
    assert ship.tokens < review.tokens


def test_name_and_version_from_a_plugin_manifest_or_package_json(tmp_path):
    root = write_tree(tmp_path / "folder", {**NAMED, "package.json": '{"name": "x", "version": "2.1.0"}'})
    assert run("--preset", "claude-code", root).exit_code == 0
    text = (root / "tokeffc.yaml").read_text(encoding="utf-8")
    assert 'name: folder  # from the folder\'s name\nversion: "2.1.0"  # from package.json\n' in text
    assert compile_framework(root).manifest.version == "2.1.0"
    plugin = write_tree(tmp_path / "plugin", {
        ".claude-plugin/plugin.json": '{"name": "helper", "version": "0.3.1"}',
        "skills/tidy/SKILL.md": "---\nname: tidy\ndescription: when the code is messy\n---\nTidy it.\n",
    })
    assert run("--preset", "claude-plugin", plugin).exit_code == 0
    text = (plugin / "tokeffc.yaml").read_text(encoding="utf-8")
    assert 'name: helper  # from .claude-plugin/plugin.json\nversion: "0.3.1"  # from the plugin\'s manifest\n' in text
    assert compile_framework(plugin).manifest.framework == "helper"


def test_a_plugin_name_or_version_the_config_would_refuse_is_made_valid(tmp_path):
    plugin = write_tree(tmp_path / "plugin", {
        ".claude-plugin/plugin.json": '{"name": "My Helper", "version": "1.0"}',
        "skills/tidy/SKILL.md": "---\nname: tidy\ndescription: when the code is messy\n---\nTidy it.\n",
    })
    assert run("--preset", "claude-plugin", plugin).exit_code == 0
    text = (plugin / "tokeffc.yaml").read_text(encoding="utf-8")
    assert "name: my-helper  # from .claude-plugin/plugin.json, made valid from 'My Helper'\n" in text
    assert "version: \"0.0.0\"  # the plugin's manifest says '1.0', not SemVer: set it\n" in text
    assert "named and versioned as below" in text
    assert compile_framework(plugin).manifest.framework == "my-helper"


def test_a_marketplace_of_several_plugins_is_refused_with_the_folders(tmp_path):
    root = write_tree(tmp_path / "market", {
        ".claude-plugin/marketplace.json": json.dumps({"plugins": [{"name": "a", "source": "./a"},
                                                                   {"name": "b", "source": "./b"}]}),
        "a/skills/x/SKILL.md": "---\ndescription: x\n---\nX.\n",
        "b/skills/y/SKILL.md": "---\ndescription: y\n---\nY.\n",
    })
    result = run("--preset", "claude-plugin", root)
    assert result.exit_code == 2 and "is a marketplace of 2 plugin(s)" in result.stderr
    assert not (root / "tokeffc.yaml").exists()


def test_an_existing_config_is_never_overwritten(tmp_path):
    root = write_tree(tmp_path / "proj", {**NAMED, "tokeffc.yaml": "preset: claude-code\n"})
    result = run("--preset", "claude-code", root)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [(f"error: {root / 'tokeffc.yaml'}: tokeffc.yaml already exists; init only "
                                           "creates new configs; edit the existing one")]
    assert (root / "tokeffc.yaml").read_text() == "preset: claude-code\n"


@pytest.mark.parametrize("preset", [(), ("--preset", "claude-code")])
def test_a_bad_name_is_refused_at_once(tmp_path, preset):
    root = write_tree(tmp_path / "proj", NAMED) if preset else tmp_path / "new"
    result = run(*preset, "--name", "Bad Name", root)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [("error: --name 'Bad Name' is not a framework name; use lowercase letters, "
                                           "digits and '-', e.g. 'bad-name'")]
    assert not (root / "tokeffc.yaml").exists()


def test_a_given_name_is_written_and_builds(tmp_path):
    root = write_tree(tmp_path / "proj", NAMED)
    assert run("--preset", "claude-code", "--name", "acme", root).exit_code == 0
    assert "name: acme  # given with --name" in (root / "tokeffc.yaml").read_text(encoding="utf-8")
    assert compile_framework(root).manifest.framework == "acme"


def test_init_preset_needs_an_existing_folder(tmp_path):
    result = run("--preset", "claude-code", tmp_path / "nowhere")
    assert result.exit_code == 3 and "is not a folder" in result.stderr


def test_plain_init_still_writes_the_starter(tmp_path):
    result = run(tmp_path / "new")
    assert result.exit_code == 0 and (tmp_path / "new" / "commands" / "review.md").is_file()
    assert compile_framework(tmp_path / "new").manifest.framework == "new"
