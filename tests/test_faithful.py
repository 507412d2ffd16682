"""The ten ways tokeffc 0.1 changed or lost a framework's text (issue 6), each on tests/fixtures/faithful,
and the fidelity check over the example and every corpus."""

import json

import pytest
import yaml
from click.testing import CliRunner
from conftest import CORPORA, EXAMPLE, FIXTURES, write_tree
from fidelity import check_fidelity
from helpers import assert_counts_exact, assert_savings_reconcile

from tokeffc.cli import main
from tokeffc.errors import Problems
from tokeffc.pipeline import BuildOptions, compile_framework
from tokeffc.stats import collect_stats

FAITHFUL = FIXTURES / "faithful"


@pytest.fixture(scope="module")
def built():
    return compile_framework(FAITHFUL, BuildOptions(disabled_passes=()))


def text(result, path):
    return dict(result.release.files)[path].decode()


def bundle(result, command, tier="minimal"):
    return text(result, f"bundles/{command}/{tier}.md")


def test_1_the_frameworks_placeholders_are_not_rendered(built):
    milestone = bundle(built, "milestone")
    assert "Mark milestone {{version}} complete." in milestone and "v{{ version }} created for {{framework}}" \
        in milestone and "9.9.9" not in milestone
    template = (FAITHFUL / "templates/release-tmpl.yaml").read_text()
    chunk = next(c for b in built.manifest.bundles for c in b.chunks if c.id == "release-tmpl")
    assert text(built, chunk.path) == template  # byte for byte, {{version}} and {{framework}} included


def test_2_a_code_span_wrapping_a_line_is_text(built):
    assert "Wrap the output in `{% generation %}...\n{% endgeneration %}` tags." in bundle(built, "review")


def test_3_dedupe_never_deletes_repeated_text_inside_one_prompt(built):
    review = bundle(built, "review")
    source = (FAITHFUL / "commands/review.md").read_text()
    for repeated in ("Read the diff and the tests.", "Run both agents in parallel", "**Score:** 1-10",
                     "**Report:** what passed", "test -f .review", "- Approve the change as it stands"):
        assert review.count(repeated) == source.count(repeated) == 2, repeated
    assert "Repeated text" not in review


def test_4_comments_in_yaml_and_in_prose_are_kept(built):
    assert "<!-- the model reads this: keep the review under 300 words -->" in bundle(built, "review")
    chunk = next(c for b in built.manifest.bundles for c in b.chunks if c.id == "release-tmpl")
    assert "<!-- keep under 50 words --> Summarise {{version}}." in text(built, chunk.path)
    stripped = compile_framework(FAITHFUL, BuildOptions(overrides=(("passes", {"strip_comments": True}),)))
    assert "keep the review under 300" not in bundle(stripped, "review")
    assert "<!-- keep under 50 words -->" in text(stripped, chunk.path)  # never inside YAML


def test_5_imports_in_list_items_and_mid_sentence_are_followed(built):
    complete = bundle(built, "complete")
    assert "- @~/.claude/fw/workflows/complete-milestone.md (main workflow)\n" in complete  # the line stays
    assert "2. Archive the phase folders" in complete  # and the file it names comes with it
    assert "Follow @workflows/verify.md end-to-end.\n" in complete and "Run the test suite and the linters" \
        in complete
    assert complete.index("(main workflow)") < complete.index("# Complete milestone workflow") < \
        complete.index("Follow @workflows/verify.md")  # after the list that names it


def test_6_run_time_files_stay_literal_and_are_listed(built):
    assert "Current state:\n@.planning/STATE.md\n" in bundle(built, "complete")
    assert [(e.written, e.at) for e in built.manifest.external] == [(".planning/STATE.md", "commands/complete.md:12")]


def test_7_front_matter_is_read_as_the_host_reads_it(built, tmp_path):
    draft = bundle(built, "draft")
    assert "---\nrequires: [story_id, epic]\noutput: docs/stories/{{story_id}}.md\n---\n# Story {{story_id}}" in draft
    assert built.manifest.modules["writer"].meta["description"].startswith("Use this agent when a document")
    broken = write_tree(tmp_path / "fw", {**{p.relative_to(FAITHFUL).as_posix(): p.read_text()
                                             for p in FAITHFUL.rglob("*") if p.is_file()},
                                          "modules/a.md": "---\ntokeffc: {tier: nope}\n---\na\n",
                                          "modules/b.md": "---\ntokeffc: {load: never}\n---\nb\n",
                                          "modules/c.md": "---\ntokeffc: {requries: [x]}\n---\nc\n"})
    with pytest.raises(Problems) as caught:
        compile_framework(broken)
    assert [line.split(":")[0].rsplit("/", 2)[-2:] for line in caught.value.lines()] == [
        ["modules", "a.md"], ["modules", "b.md"], ["modules", "c.md"]]  # all three in one run


def test_8_a_module_left_out_by_the_tier_leaves_a_line(built):
    ask = bundle(built, "ask")
    assert 'Consult the questioning guide:\n(Module "questioning", ' in ask
    assert "is left out at the minimal tier; it belongs to full and above.)" in ask
    assert "Ask one question at a time" in bundle(built, "ask", "full")


def test_9_stats_never_advises_deleting_what_the_host_reaches(built):
    advice = {r.target: r for r in collect_stats(built).recommendations}
    assert "tdd" not in {t.rsplit("/", 1)[0] for t in advice}  # a skill: offered by its description
    assert advice["style-rules"].action == "check" and "commands/style.md:6" in advice["style-rules"].reason
    assert all("delete it" not in r.reason or r.action == "remove?" for r in advice.values())


def test_10_a_conditional_include_on_the_command_brings_its_requirements(built):
    ask = bundle(built, "ask")
    assert "Only /ask includes this." in ask and "never ask twice" in ask
    assert "Only /ask" not in bundle(built, "review")


def test_the_fixture_counts_exactly_and_is_faithful(built):
    assert_counts_exact(built)
    assert_savings_reconcile(built)
    assert check_fidelity(FAITHFUL, dict(built.release.files)) == []


CASES = {
    "example": (EXAMPLE, BuildOptions(), ("## Rationale",)),
    "superclaude (preset)": (CORPORA / "superclaude", BuildOptions(preset="claude-code"), ()),
    "superclaude (rules)": (CORPORA / "superclaude",
                            BuildOptions(config_path=FIXTURES / "corpora" / "superclaude.tokeffc.yaml"), ()),
    "bmad": (CORPORA / "bmad", BuildOptions(preset="bmad"), ()),
    "bmad (declared_load immediate)": (CORPORA / "bmad", BuildOptions(
        preset="bmad", overrides=(("declared_load", "immediate"),)), ()),
    "superpowers": (CORPORA / "superpowers", BuildOptions(preset="claude-plugin"), ()),
}
EVERY_PASS = (("passes", {"checkpoints": True, "strip_comments": True, "normalise": True, "dedupe": True}),)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_output_is_faithful_to_its_sources(case):
    root, options, headings = CASES[case]
    if not root.is_dir():
        pytest.skip("shared corpora not present")
    from dataclasses import replace

    result = compile_framework(root, replace(options, overrides=options.overrides + EVERY_PASS))
    assert check_fidelity(result.framework.config.root, dict(result.release.files), headings) == []
    for path, data in result.release.files:  # every YAML or JSON resource still parses
        if path.endswith((".yaml", ".yml")):
            yaml.safe_load(data)
        elif path.endswith(".json"):
            json.loads(data)


def test_the_fidelity_check_catches_a_changed_line():
    result = compile_framework(EXAMPLE)
    files = dict(result.release.files)
    files["bundles/task/minimal.md"] = files["bundles/task/minimal.md"].replace(b"Read before you write",
                                                                                b"Write before you read")
    problems = check_fidelity(EXAMPLE, files, ("## Rationale",))
    assert any(p.startswith("CLAUDE.md:12: missing from bundles/task/minimal.md") for p in problems)
    assert any("bundles/task/minimal.md:" in p and "Write before you read" in p for p in problems)


def test_build_cli_says_what_it_kept_as_written(tmp_path):
    result = CliRunner().invoke(main, ["build", str(FAITHFUL), "-o", str(tmp_path)])
    assert result.exit_code == 0
    assert "front matter" not in result.stderr  # the agent's description read as the host reads it


def test_a_file_named_mid_paragraph_is_a_block_of_its_own_with_either_line_ending(tmp_path):
    """Its text never continues the paragraph that names it, never lands inside a fence; code keeps CRLF."""
    for newline in ("\n", "\r\n"):
        command = ("Fix it as @.claude/notes.md says.\nSecond line.\n```\nrun\n\nagain\n```\n\nThen ship.\n"
                   .replace("\n", newline))
        root = write_tree(tmp_path / repr(newline), {"CLAUDE.md": "# Project\n", ".claude/notes.md": "Note text.\n",
                                                    ".claude/commands/fix.md": command})
        result = compile_framework(root, BuildOptions(preset="claude-code"))
        out = bundle(result, "fix")
        fence = "```\nrun\n\nagain\n```\n".replace("\n", newline)
        assert f"says.\nSecond line.\n{fence}\nNote text.\n\nThen ship.\n" in out, repr(out)


def test_what_markdown_shows_as_written_is_kept_and_the_fidelity_check_agrees(tmp_path):
    """A checkpoint in inline or indented code or a comment, and tokeffc's syntax in a code span, stay."""
    checkpoint = "<checkpoint><reasoning>R</reasoning><conclusion>C</conclusion></checkpoint>"
    core = (f"# Core\n\n{checkpoint}\n\nInline `{checkpoint}` and `{{{{ tokeffc.version }}}}` stay.\n\n"
            f"    {checkpoint}\n\n<!-- {checkpoint} -->\n")
    root = write_tree(tmp_path / "fw", {
        "tokeffc.yaml": "name: fw\nversion: 1.0.0\ncore: [CLAUDE.md]\ncommands: commands/*.md\n"
                        "tiers:\n  minimal: {budget: 20000}\n  full: {budget: 40000, compress: false}\n",
        "CLAUDE.md": core, "commands/go.md": "# /go\n"})
    result = compile_framework(root)  # the default passes: checkpoints, normalise, dedupe
    minimal = bundle(result, "go")
    assert minimal.startswith(f"# Core\n\nC\n\nInline `{checkpoint}` and `{{{{ tokeffc.version }}}}` stay.\n\n"
                              f"    {checkpoint}\n\n<!-- {checkpoint} -->\n")
    assert check_fidelity(root, dict(result.release.files), ()) == []


def test_a_condition_that_renders_nothing_joins_the_text_before_it_and_the_check_reads_it_so(tmp_path):
    """``Text{% if tokeffc… %}`` ends its line with the tag: the line break is the block's. When the block
    renders nothing, the text joins the line after the block, and the check reads that line as the two it
    joins. A line that only begins like that text, or a line break lost where the block did render, is
    still checked (and flagged) as it is."""
    command = ('# /go\n\nUse the tool {% if tokeffc.tier == "full" %}\nSee the appendix.\n{% endif %}\n'
               "Then continue.\n\nUse the tool carefully.\n")
    root = write_tree(tmp_path / "fw", {
        "tokeffc.yaml": "name: fw\nversion: 1.0.0\ncore: [CLAUDE.md]\ncommands: commands/*.md\n"
                        "tiers:\n  minimal: {budget: 20000}\n  full: {budget: 40000}\n",
        "CLAUDE.md": "# Core\n", "commands/go.md": command})
    result = compile_framework(root)
    files = dict(result.release.files)
    assert "Use the tool Then continue.\n" in files["bundles/go/minimal.md"].decode()
    assert "Use the tool\nSee the appendix.\nThen continue.\n" in files["bundles/go/full.md"].decode()
    assert check_fidelity(root, files) == []
    changed = dict(files, **{"bundles/go/minimal.md": files["bundles/go/minimal.md"].replace(b"l Then", b"l Than")})
    assert any("Than continue" in p for p in check_fidelity(root, changed))
    lost = dict(files, **{"bundles/go/full.md": files["bundles/go/full.md"].replace(b"tool\nSee", b"tool See")})
    assert any("Use the tool See the appendix." in p for p in check_fidelity(root, lost))
