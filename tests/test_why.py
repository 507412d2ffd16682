"""``tokeffc why``: every dependency path that puts a module in a bundle, per tier, the placement that
results, and for a module that is not there, the reason. Checked against the selection itself."""

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPORA, EXAMPLE, MINI_CONFIG, write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokeffc.cli import main
from tokeffc.errors import UsageError
from tokeffc.pipeline import BuildOptions, compile_framework
from tokeffc.selection import LOAD_RANK
from tokeffc.why import MAX_PATHS, PLACED, explain, explain_module, find_module, why_json

GOLDEN = Path(__file__).resolve().parent / "golden" / "why"
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason="shared corpora not present")


@pytest.fixture(scope="module")
def forge():
    return compile_framework(EXAMPLE)


def answer(result, command, module, tier):
    return explain(result, command, module, (tier,)).answers[0]


def run(*args):
    return CliRunner().invoke(main, ["why", *map(str, args)])


def steps_of(route):
    return [(s.source, s.kind, s.target) for s in route.steps]


# --- the example: two paths, above the tier, behind a module above it, deferred, unreachable -------

def test_a_module_reached_by_two_paths_lists_both_the_deciding_one_first(forge):
    at_standard = answer(forge, "task", "errors/handling", "standard")
    assert at_standard.verdict.placement == "section" and at_standard.verdict.in_bundle
    first, second = at_standard.routes
    assert steps_of(first) == [("commands/task.md", "requires", "modules/quality/gates.md"),
                               ("modules/quality/gates.md", "requires", "modules/errors/handling.md")]
    assert first.load == "immediate" and first.start_as == "entry"
    assert steps_of(second) == [("commands/task.md", "requires", "modules/errors/recovery.md"),
                                ("modules/errors/recovery.md", "requires", "modules/errors/handling.md")]
    assert (second.load, second.deferred_by, second.steps[0].load) == ("lazy", 0, "lazy")
    assert [str(s.span) for s in first.steps] == ["commands/task.md:6", "modules/quality/gates.md:4"]
    # At the minimal tier errors/recovery is above the tier: one path is left.
    assert len(answer(forge, "task", "errors/handling", "minimal").routes) == 1


def test_a_module_above_the_tier_names_its_tier_and_the_path_that_would_bring_it(forge):
    at_minimal = answer(forge, "feature", "tdd/property", "minimal")
    assert at_minimal.verdict.placement == "above-tier" and not at_minimal.verdict.in_bundle
    assert "its tier is full, above minimal" in at_minimal.verdict.reason
    assert steps_of(at_minimal.routes[0]) == [("commands/feature.md", "requires", "modules/tdd/property.md")]
    at_full = answer(forge, "feature", "tdd/property", "full")
    assert (at_full.verdict.placement, at_full.verdict.load) == ("chunk", "on_demand")


def test_a_module_reached_only_through_one_above_the_tier_names_it(forge):
    at_minimal = answer(forge, "meta", "thinking/patterns", "minimal")
    assert at_minimal.verdict.placement == "behind-above-tier"
    assert at_minimal.verdict.blockers == ("modules/meta/framework.md", "modules/meta/authoring.md")
    assert "modules/meta/framework.md (tier standard)" in at_minimal.verdict.reason
    assert answer(forge, "meta", "thinking/patterns", "standard").verdict.placement == "section"


def test_a_deferred_module_says_which_step_made_it_lazy(forge):
    data = answer(forge, "task", "domains/data", "standard")
    assert (data.verdict.placement, data.verdict.load) == ("chunk", "lazy")
    step, = data.verdict.evidence
    assert (str(step.span), step.load) == ("commands/task.md:6", "lazy")
    assert "the required module at commands/task.md:6 sets load: lazy" in data.verdict.reason
    monitoring = answer(forge, "protocol", "perf/monitoring", "standard")  # required on_demand, and on_demand itself
    assert (monitoring.verdict.placement, monitoring.verdict.load) == ("chunk", "on_demand")


def test_an_unreachable_module_says_whether_anything_refers_to_it(forge):
    orphan = answer(forge, "task", "perf/legacy-profiler", "full")
    assert orphan.verdict.placement == "unreached" and not orphan.routes
    assert orphan.verdict.reason == "nothing in the framework refers to it, or names it"
    elsewhere = answer(forge, "task", "tdd/property", "full")  # /feature requires it, /task does not
    assert elsewhere.verdict.placement == "unreached"
    assert [(s.source, s.kind) for s in elsewhere.verdict.evidence] == [("commands/feature.md", "requires")]


def test_core_inline_and_the_entry_itself(forge):
    assert answer(forge, "task", "CLAUDE.md", "minimal").verdict.placement == "core"
    workflow = answer(forge, "feature", "git/workflow", "minimal")  # {% include %} in the command's body
    assert workflow.verdict.placement == "inline"
    assert workflow.verdict.reason.startswith("its text stands where commands/feature.md:") and \
        workflow.routes[0].steps[-1].kind == "include"
    itself = answer(forge, "task", "commands/task.md", "minimal")
    assert itself.verdict.placement == "entry" and itself.routes[0].steps == ()


def test_a_command_above_the_tier_has_no_bundle(forge):
    assert answer(forge, "swarm", "thinking/patterns", "minimal").verdict.placement == "no-bundle"


def test_the_example_in_text_and_json(update_golden):
    text = run(EXAMPLE, "task", "errors/handling")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == "forge 2.3.0: module errors/handling (modules/errors/handling.md), command 'task'"
    assert "standard, full: section, immediate: a section of its own in the bundle" in lines
    assert "      commands/task.md:6  requires, load: lazy -> modules/errors/recovery.md   <- made it lazy" in lines
    result = run(EXAMPLE, "feature", "property", "--json")
    assert result.exit_code == 0, result.output
    golden = GOLDEN / "forge-feature-property.json"
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == golden.read_text(encoding="utf-8"), "run pytest --update-golden and review the diff"
    data = json.loads(result.stdout)
    assert data["schema"] == "tokeffc.why/1" and [t["tier"] for t in data["tiers"]] == ["minimal", "standard", "full"]


# --- naming things, and exit codes -----------------------------------------------------------------

def test_modules_by_id_trailing_part_or_path(forge):
    framework = forge.framework
    assert find_module(framework, "tdd/cycle") == find_module(framework, "cycle") == "modules/tdd/cycle.md"
    assert find_module(framework, "modules/tdd/cycle.md") == find_module(framework, "modules/tdd/cycle")
    assert find_module(framework, str(EXAMPLE / "modules" / "tdd" / "cycle.md")) == "modules/tdd/cycle.md"
    with pytest.raises(UsageError, match="ambiguous: modules/advanced/patterns.md, modules/thinking/patterns.md"):
        find_module(framework, "patterns")


def test_of_several_modules_with_one_name_the_one_in_the_bundle_is_meant(forge):
    # /task carries thinking/patterns but never advanced/patterns
    assert explain(forge, "task", "patterns").module == "modules/thinking/patterns.md"


@pytest.mark.parametrize("args, message", [
    (("tsk", "cycle"), "error: unknown command 'tsk'; did you mean 'task'?"),
    (("task", "cycel"), "error: unknown module 'cycel'; did you mean 'cycle'?"),
    (("swarm", "patterns"), "error: module 'patterns' is ambiguous"),
    (("task", "cycle", "--tier", "minimum"), "error: unknown tier 'minimum'; did you mean 'minimal'?"),
])
def test_unknown_commands_and_modules_are_usage_errors_with_a_suggestion(args, message):
    result = run(EXAMPLE, *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_bad_sources_are_exit_3(mini):
    root = mini({"commands/c.md": '{% include "modules/nowhere.md" %}\n'})
    result = run(root, "c", "CORE")
    assert result.exit_code == 3 and "include 'modules/nowhere.md' not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- placements the example does not show -------------------------------------------------------------

def test_inside_a_chunk_inline_where_included(mini):
    root = mini({
        "commands/c.md": "---\ntokeffc:\n  requires: [{module: big, load: lazy}]\n---\nGo.\n"
                         '{% include "modules/here.md" %}\n',
        "modules/big.md": 'Big.\n{% include "modules/small.md" %}\n',
        "modules/small.md": "Small.\n",
        "modules/here.md": "Here.\n",
    })
    result = compile_framework(root)
    small = answer(result, "c", "small", "minimal")
    assert (small.verdict.placement, small.routes[0].holder) == ("in-chunk", "modules/big.md")
    assert "inside the chunk of modules/big.md" in small.verdict.reason
    assert answer(result, "c", "here", "minimal").verdict.reason == "its text stands where commands/c.md:6 includes it"


def test_a_reference_a_tier_condition_leaves_out(mini):
    root = mini({
        "commands/c.md": 'Go.\n{% if tokeffc.tier != "minimal" %}\n{% include "modules/x.md" %}\n{% endif %}\n',
        "modules/x.md": "X.\n",
    })
    result = compile_framework(root)
    minimal = answer(result, "c", "x", "minimal")
    assert minimal.verdict.placement == "conditional"
    assert [str(s.span) for s in minimal.verdict.evidence] == ["commands/c.md:3"]
    assert answer(result, "c", "x", "standard").verdict.placement == "inline"


def test_soft_references_and_roles_only_offer(mini):
    config = MINI_CONFIG + ('modules: ["modules/**/*.md", "skills/**/*.md"]\noffered: [skill]\n'
                            "extractors:\n  - kind: prose_paths\n"
                            "rules:\n  - match: skills/*/SKILL.md\n    role: skill\n    load: on_demand\n"
                            "    when: {front_matter: description}\n")
    root = mini({
        "commands/c.md": "Read `modules/guide.md` first.\n",
        "modules/guide.md": "Guide.\n",
        "skills/s/SKILL.md": "---\ndescription: when testing\n---\nSkill.\n",
    }, config=config)
    result = compile_framework(root)
    guide = answer(result, "c", "guide", "minimal")
    assert (guide.verdict.placement, guide.verdict.load) == ("offered", "on_demand")
    assert guide.routes[0].steps[0].soft and "commands/c.md:1 names it in prose (path" in guide.verdict.reason
    skill = answer(result, "c", "skills/s/SKILL.md", "minimal")
    assert (skill.verdict.placement, skill.routes[0].start_as) == ("role", "offered")


def test_at_most_20_paths_shortest_first_and_says_more_exist(mini):
    count = MAX_PATHS + 5
    files = {"commands/c.md": f"---\ntokeffc:\n  requires: [{', '.join(f'm{i}' for i in range(count))}]\n---\nGo.\n",
             "modules/target.md": "Target.\n",
             "modules/via/deep.md": "---\ntokeffc:\n  requires: [target]\n---\nDeep.\n"}
    files |= {f"modules/m{i}.md": "---\ntokeffc:\n  requires: [target]\n---\nM.\n" for i in range(count)}
    files["modules/m0.md"] = "---\ntokeffc:\n  requires: [via/deep]\n---\nM.\n"  # a longer path
    result = compile_framework(mini(files))
    target = answer(result, "c", "target", "minimal")
    assert len(target.routes) == MAX_PATHS and target.more
    assert [len(r.steps) for r in target.routes] == sorted(len(r.steps) for r in target.routes)
    assert "more paths exist" in run(result.framework.config.root, "c", "target", "--tier", "minimal").stdout


@needs_corpora
def test_an_agent_command_starts_from_what_it_names():
    why = explain_module(CORPORA / "bmad", "pm/create-prd", "prd-tmpl", tiers=("minimal",), preset="bmad")
    placed = why.answers[0]
    assert placed.verdict.placement == "section" and placed.routes[0].start_as == "focus"
    declared = placed.routes[1]  # the agent's own declaration, on demand
    assert declared.steps[0].kind == "declared" and declared.load == "on_demand"


# --- the explanation agrees with the selection, on random frameworks ----------------------------------

module = st.fixed_dictionaries({
    "tier": st.sampled_from(["minimal", "minimal", "standard", "full"]),
    "load": st.sampled_from(["immediate", "immediate", "on_demand", "lazy"]),
    "requires": st.lists(st.tuples(st.integers(0, 6), st.sampled_from([None, "immediate", "on_demand", "lazy"])),
                         max_size=2),
    "includes": st.lists(st.integers(0, 6), max_size=2),
    "conditional": st.booleans(),
})
framework = st.fixed_dictionaries({
    "modules": st.lists(module, min_size=1, max_size=7),
    "commands": st.lists(st.tuples(st.lists(st.integers(0, 6), max_size=3), st.lists(st.integers(0, 6), max_size=1)),
                         min_size=1, max_size=2),
})


def _files(spec) -> dict[str, str]:
    count = len(spec["modules"])
    files = {"tokeffc.yaml": MINI_CONFIG, "CORE.md": "# Core\n"}
    for index, mod in enumerate(spec["modules"]):
        later = {j: load for j, load in mod["requires"] if index < j < count}  # later only: no cycles
        requires = ", ".join(f"{{module: m{j}, load: {load}}}" if load else f"m{j}" for j, load in later.items())
        includes = "".join(f'{{% include "modules/m{j}.md" %}}\n' for j in sorted(set(mod["includes"]))
                           if index < j < count and j not in later)
        if includes and mod["conditional"]:
            includes = f'{{% if tokeffc.tier != "minimal" %}}\n{includes}{{% endif %}}\n'
        front = f"---\ntokeffc:\n  tier: {mod['tier']}\n  load: {mod['load']}\n  requires: [{requires}]\n---\n"
        files[f"modules/m{index}.md"] = f"{front}Module {index}.\n{includes}"
    for index, (needed, included) in enumerate(spec["commands"]):
        names = ", ".join(sorted({f"m{j}" for j in needed if j < count}))
        includes = "".join(f'{{% include "modules/m{j}.md" %}}\n' for j in sorted(set(included)) if j < count)
        files[f"commands/c{index}.md"] = f"---\ntokeffc:\n  requires: [{names}]\n---\nCommand {index}.\n{includes}"
    return files


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(framework)
def test_every_placement_is_the_selections_and_its_deciding_path_gives_it(spec):
    with tempfile.TemporaryDirectory() as tmp:
        result = compile_framework(write_tree(Path(tmp) / "fw", _files(spec)))
    for bundle in result.bundles:
        selection = bundle.selection
        chunks = {c.path: c for c in selection.chunks}
        dropped = {d.path for d in selection.dropped}
        why = explain(result, bundle.entry, "CORE.md", (bundle.tier,))
        for path in result.framework.documents:
            verdict_answer = explain(result, bundle.entry, path, (bundle.tier,)).answers[0]
            verdict = verdict_answer.verdict
            if path in selection.immediate:
                assert verdict.in_bundle and verdict_answer.routes[0].load == "immediate", (path, verdict)
            elif path in chunks:
                assert verdict.placement in PLACED and not verdict.in_bundle
                assert LOAD_RANK[verdict_answer.routes[0].load] == LOAD_RANK[chunks[path].load], (path, verdict)
            elif path in dropped:
                assert verdict.placement == "above-tier"
            else:
                assert verdict.placement in ("in-chunk", "above-tier", "behind-above-tier", "conditional",
                                             "unreached"), (path, verdict)
            assert len(verdict_answer.routes) <= MAX_PATHS
        assert why_json(why)["schema"] == "tokeffc.why/1"


@needs_corpora
def test_on_a_real_framework_every_placed_module_has_its_deciding_path():
    result = compile_framework(CORPORA / "superpowers", BuildOptions(preset="claude-plugin"))
    bundle = result.bundles[0]
    for path in result.framework.documents:
        found = explain(result, bundle.entry, path, (bundle.tier,)).answers[0]
        if found.verdict.placement in PLACED:
            route = found.routes[0]
            assert route.load == found.verdict.load and route.soft == (found.verdict.placement == "offered")
