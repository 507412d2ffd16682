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
