"""Real third-party frameworks from ../shared/corpora, built in place (read-only) with the presets,
as a new user would: exact counts, savings against what the host loads today, nothing lost."""

import re
import statistics

import pytest
from conftest import CORPORA, FIXTURES
from helpers import REFERENCE_ENCODING, assert_counts_exact, assert_savings_reconcile

from tokeffc.pipeline import BuildOptions, compile_framework

SUPERCLAUDE, BMAD, SUPERPOWERS = CORPORA / "superclaude", CORPORA / "bmad", CORPORA / "superpowers"
needs = pytest.mark.skipif(not CORPORA.is_dir(), reason="shared corpora not present")


@pytest.fixture(scope="module")
def superclaude_trimmed():
    return compile_framework(SUPERCLAUDE, BuildOptions(config_path=FIXTURES / "corpora" / "superclaude.tokeffc.yaml"))


@pytest.fixture(scope="module")
def bmad():
    return compile_framework(BMAD, BuildOptions(preset="bmad"))


@needs
def test_superclaude_with_the_bare_preset_counts_against_the_host():
    result = compile_framework(SUPERCLAUDE, BuildOptions(preset="claude-code"))
    assert_counts_exact(result)
    assert_savings_reconcile(result)
    manifest = result.manifest
    assert manifest.baseline.kind == "host" and not result.over_budget
    commands = [b for b in manifest.bundles if b.role == "command" and b.tier == "minimal"]
    assert len(commands) == 25
    # The host loads CLAUDE.md and everything it imports for every command: so does the bare preset.
    assert statistics.median(b.baseline_tokens for b in commands) == pytest.approx(20168, rel=0.01)
    assert all(b.tokens <= b.baseline_tokens for b in commands)


@needs
def test_superclaude_trimmed_saves_60_percent_of_the_hosts_load(superclaude_trimmed):
    result = superclaude_trimmed
    assert_counts_exact(result)
    assert_savings_reconcile(result)
    commands = [b for b in result.manifest.bundles if b.role == "command" and b.tier == "minimal"]
    saving = statistics.median(1 - b.tokens / b.baseline_tokens for b in commands)
    assert saving >= 0.60, saving


@needs
def test_superclaude_inlines_what_a_command_names_and_offers_the_rest(superclaude_trimmed):
    manifest = superclaude_trimmed.manifest
    implement = manifest.bundle("implement", "minimal")
    inline = {m.id.rsplit("/", 1)[-1] for m in implement.modules}
    offered = {c.id.rsplit("/", 1)[-1] for c in implement.chunks}
    named = {"MCP_Context7", "MCP_Sequential", "MCP_Magic", "MCP_Playwright"}  # its mcp-servers: front matter
    assert named <= inline and not named & offered
    assert {"MODE_Brainstorming", "MODE_Business_Panel", "BUSINESS_SYMBOLS", "MCP_Tavily"} <= offered
    brainstorm = manifest.bundle("brainstorm", "minimal")  # "brainstorming behavioral mode" in its body
    assert "SuperClaude/Modes/MODE_Brainstorming" in {m.id for m in brainstorm.modules}


@needs
def test_bmad_agents_and_agent_commands(bmad):
    assert_counts_exact(bmad)
    assert_savings_reconcile(bmad)
    manifest = bmad.manifest
    dev = manifest.bundle("dev", "minimal")
    assert {c.id for c in dev.chunks} == {"bmad-core/checklists/story-dod-checklist", "bmad-core/tasks/apply-qa-fixes",
                                          "common/tasks/execute-checklist", "bmad-core/tasks/validate-next-story"}
    prd = manifest.bundle("pm/create-prd", "full")  # "run task create-doc.md with template prd-tmpl.yaml"
    assert prd.role == "agent-command" and prd.parent == "pm"
    assert {m.id for m in prd.modules} == {"pm", "common/tasks/create-doc", "bmad-core/templates/prd-tmpl"}
    assert "bmad-core/tasks/shard-doc" in {c.id for c in prd.chunks}  # the agent's other resources, on demand
    assert prd.parent_tokens == manifest.bundle("pm", "full").tokens


def dist_bundle(agent):
    text = (BMAD / "dist" / "agents" / f"{agent}.txt").read_text(encoding="utf-8")
    resources = re.findall(r"^==================== START: \.bmad-core/(\S+) ====", text, re.M)
    return len(REFERENCE_ENCODING.encode_ordinary(text)), resources


CORE_AGENTS = ["analyst", "architect", "bmad-master", "bmad-orchestrator", "dev", "pm", "po", "qa", "sm", "ux-expert"]


@needs
@pytest.mark.parametrize("agent", CORE_AGENTS)
def test_bmad_agent_holds_every_resource_of_its_web_bundle(bmad, agent):
    """BMAD's own dist/agents/<agent>.txt lists what the agent may need; tokeffc's full-tier bundle and its
    chunks hold each of those files (by identity: the same file of the source tree)."""
    manifest = bmad.manifest
    _, resources = dist_bundle(agent)
    bundle = manifest.bundle(agent, "full")
    ids = {m.id for m in bundle.modules} | {i for c in bundle.chunks for i in c.modules}
    paths = {(manifest.modules.get(i) or manifest.commands[i]).path for i in ids}
    for resource in resources:  # installed as .bmad-core/<type>/<name>, from bmad-core/ or common/
        assert {f"bmad-core/{resource}", f"common/{resource}"} & paths, resource


@needs
def test_bmad_agent_commands_are_three_quarters_below_the_web_bundles(bmad):
    totals = {agent: dist_bundle(agent)[0] for agent in CORE_AGENTS}
    savings = [1 - b.tokens / totals[b.parent] for b in bmad.manifest.bundles
               if b.role == "agent-command" and b.tier == "full" and b.parent in totals]
    assert len(savings) >= 20 and statistics.median(savings) >= 0.75, statistics.median(savings)


@needs
def test_superpowers_as_a_plugin(tmp_path):
    result = compile_framework(SUPERPOWERS, BuildOptions(preset="claude-plugin"))
    assert_counts_exact(result)
    assert_savings_reconcile(result)
    manifest = result.manifest
    assert (manifest.framework, manifest.version) == ("superpowers", "6.2.0")  # from its plugin.json
    session = manifest.bundle("_session", "minimal")
    skills = {d.path: d for d in result.framework.documents.values() if d.role == "skill"}
    injected = "skills/using-superpowers/SKILL.md"
    assert result.framework.documents[injected].role == "core"  # its SessionStart hook injects it
    chunks = {c.id: c for c in session.chunks}
    for doc in skills.values():
        assert chunks[doc.id].when == doc.meta_value("description")  # offered by its description
    tracing = "skills/systematic-debugging/root-cause-tracing"
    assert chunks[tracing].soft  # a sibling named in the skill's prose: reachable from it
    debugging = next(c for p, c in result.bundles[0].chunks if c.id == "skills/systematic-debugging")
    assert "`root-cause-tracing` (reference" in debugging.content.data.decode()
    listing = "".join(f"- {d.meta_value('name')}: {d.meta_value('description')}\n" for d in skills.values())
    assert manifest.baseline.always == ("skills/using-superpowers",)
    written = len(REFERENCE_ENCODING.encode_ordinary((SUPERPOWERS / injected).read_text(encoding="utf-8")))
    assert session.baseline_tokens == written + len(REFERENCE_ENCODING.encode_ordinary(listing))
