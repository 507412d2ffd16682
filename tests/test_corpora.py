"""Real third-party frameworks from ../shared/corpora, built in place (read-only)."""

import pytest

from tokeffc.pipeline import BuildOptions, compile_framework

from conftest import CORPORA, FIXTURES
from helpers import assert_counts_exact, assert_savings_reconcile

SUPERCLAUDE = CORPORA / "superclaude"


@pytest.mark.skipif(not SUPERCLAUDE.is_dir(), reason="shared corpora not present")
def test_superclaude_builds_with_exact_counts():
    options = BuildOptions(config_path=FIXTURES / "corpora" / "superclaude.tokeffc.yaml")
    result = compile_framework(SUPERCLAUDE, options)
    assert len(result.bundles) == 25 * 3
    assert_counts_exact(result)
    assert_savings_reconcile(result)
    # Its installed CLAUDE.md imports every core, mode and MCP file; the agents are reached by nothing.
    assert all(u.startswith("SuperClaude/Agents/") or u.endswith("Chrome-DevTools.md")
               for u in result.framework.unreached)


BMAD = CORPORA / "bmad"


@pytest.mark.skipif(not BMAD.is_dir(), reason="shared corpora not present")
def test_bmad_agents_get_their_declared_dependencies_as_chunks():
    options = BuildOptions(config_path=FIXTURES / "corpora" / "bmad.tokeffc.yaml")
    result = compile_framework(BMAD, options)
    assert_counts_exact(result)
    assert_savings_reconcile(result)
    dev = next(b for b in result.bundles if (b.command, b.tier) == ("dev", "minimal"))
    chunks = {chunk.path: placement.load for placement, chunk in dev.chunks}
    # Declared in bmad-core/agents/dev.md; execute-checklist lives in common/, found through search_paths.
    assert chunks == {"bmad-core/checklists/story-dod-checklist.md": "on_demand",
                      "bmad-core/tasks/apply-qa-fixes.md": "on_demand",
                      "common/tasks/execute-checklist.md": "on_demand",
                      "bmad-core/tasks/validate-next-story.md": "on_demand"}
    # An expansion pack's agent finds its own pack's files first, names without extensions included.
    critic = next(b for b in result.bundles if b.command == "bmad-creative-writing/agents/book-critic")
    assert "expansion-packs/bmad-creative-writing/tasks/critical-review.md" in {c.path for _, c in critic.chunks}
