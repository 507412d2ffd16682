"""`tokeffc stats`: shares, repeated blocks with their places, recommendations whose effect is real."""

import json

from click.testing import CliRunner

from tokeffc.cli import main
from tokeffc.pipeline import compile_framework
from tokeffc.stats import collect_stats, release_tokens_with_loads

from conftest import EXAMPLE


def test_kinds_add_up_to_sources_and_release():
    result = compile_framework(EXAMPLE)
    stats = collect_stats(result)
    manifest = json.loads(result.release.manifest_bytes)
    written = {k.kind: k.written for k in stats.kinds}
    assert written["module"] == manifest["baseline"]["modules"]
    assert written["core"] == manifest["baseline"]["core"]
    assert sum(k.emitted for k in stats.kinds) == stats.release_tokens == sum(b["tokens"] for b in manifest["bundles"])


def test_repeated_block_is_found_in_every_place():
    (block,) = collect_stats(compile_framework(EXAMPLE)).repeated
    assert [str(p) for p in block.places] == ["modules/errors/handling.md:24", "modules/quality/gates.md:20"]
    assert block.repeated_tokens == block.tokens > 0


def test_defer_recommendation_effect_is_a_real_rebuild():
    result = compile_framework(EXAMPLE)
    stats = collect_stats(result)
    defer = next(r for r in stats.recommendations if r.action == "defer")
    path = next(d.path for d in result.framework.modules if d.id == defer.target)
    assert defer.effect == release_tokens_with_loads(result, {path: "on_demand"}) - stats.release_tokens < 0
    assert ("remove", "perf/legacy-profiler") in [(r.action, r.target) for r in stats.recommendations]


def test_stats_cli_tables_and_json():
    runner = CliRunner()
    tables = runner.invoke(main, ["stats", str(EXAMPLE)])
    assert tables.exit_code == 0 and "Where the tokens go" in tables.stdout and "Recommendations" in tables.stdout
    report = json.loads(runner.invoke(main, ["stats", str(EXAMPLE), "--json"]).stdout)
    assert report["schema"] == "tokeffc.stats/1"
    assert {k["kind"] for k in report["kinds"]} == {"core", "command", "module", "structure"}
    assert report["repeated_blocks"][0]["places"] == ["modules/errors/handling.md:24", "modules/quality/gates.md:20"]
