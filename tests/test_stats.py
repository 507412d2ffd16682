"""`tokeffc stats`: shares, what is always loaded and who needs it, repeated blocks, recommendations
whose effect is a real rebuild, and never "delete it" for a file the framework names."""

import json

from click.testing import CliRunner
from conftest import CORPORA, EXAMPLE, FIXTURES

from tokeffc.cli import main
from tokeffc.pipeline import BuildOptions, compile_framework
from tokeffc.stats import _tokens_with_loads, collect_stats


def test_kinds_add_up_to_sources_and_release():
    result = compile_framework(EXAMPLE)
    stats = collect_stats(result)
    assert sum(k.written for k in stats.kinds) == sum(result.renderings.written.values())
    assert sum(k.emitted for k in stats.kinds) == stats.release_tokens == sum(b.tokens for b in
                                                                               result.manifest.bundles)


def test_repeated_block_is_found_in_every_place():
    (block,) = collect_stats(compile_framework(EXAMPLE)).repeated
    assert [str(p) for p in block.places] == ["modules/errors/handling.md:25", "modules/quality/gates.md:21"]
    assert block.repeated_tokens == block.tokens > 0


def test_defer_recommendation_effect_is_a_real_rebuild():
    result = compile_framework(EXAMPLE)
    stats = collect_stats(result)
    defer = next(r for r in stats.recommendations if r.action == "defer")
    path = next(d.path for d in result.framework.documents.values() if d.id == defer.target)
    rebuilt = _tokens_with_loads(result, {path: "on_demand"})
    assert set(rebuilt) == {(b.entry, b.tier) for b in result.bundles}  # every tier's bundle, not the last
    after = sum(rebuilt.values())
    assert defer.effect == after - stats.release_tokens < 0


def test_unreached_file_is_deleted_only_when_nothing_names_it(mini):
    root = mini({"commands/c.md": "Follow the advice in tips when unsure.\n", "modules/tips.md": "Tips.\n",
                 "modules/orphan.md": "Nobody names me.\n"})
    advice = {r.target: r for r in collect_stats(compile_framework(root)).recommendations}
    assert advice["tips"].action == "check" and "no reference detected" in advice["tips"].reason
    assert "commands/c.md:1" in advice["tips"].reason and "delete" not in advice["tips"].reason
    assert advice["orphan"].action == "remove?"


def test_always_loaded_files_show_who_names_them_and_what_deferring_saves():
    root = CORPORA / "superclaude"
    if not root.is_dir():
        return
    result = compile_framework(root, BuildOptions(preset="claude-code"))
    rows = {r.id.rsplit("/", 1)[-1]: r for r in collect_stats(result).always}
    assert rows["MODE_Business_Panel"].saving_per_command > 2000  # deferring it: a real rebuild per command
    assert rows["CLAUDE"].referred_by == ()  # the entry point: nothing names it
    with_rules = compile_framework(root, BuildOptions(config_path=FIXTURES / "corpora" / "superclaude.tokeffc.yaml"))
    context7 = {r.id.rsplit("/", 1)[-1]: r for r in collect_stats(with_rules).always}["MCP_Context7"]
    assert "implement" in context7.referred_by and any("implement.md" in e for e in context7.evidence)


def test_stats_cli_tables_and_json():
    runner = CliRunner()
    tables = runner.invoke(main, ["stats", str(EXAMPLE)])
    assert tables.exit_code == 0 and "Where the tokens go" in tables.stdout and "Recommendations" in tables.stdout
    report = json.loads(runner.invoke(main, ["stats", str(EXAMPLE), "--json"]).stdout)
    assert report["schema"] == "tokeffc.stats/2" and report["baseline"] == "all"
    assert {k["kind"] for k in report["kinds"]} == {"core", "command", "module", "structure"}
    assert report["repeated_blocks"][0]["places"] == ["modules/errors/handling.md:25", "modules/quality/gates.md:21"]
