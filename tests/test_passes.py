"""The text passes: examples, and invariants checked by hypothesis."""

import pytest
from conftest import MINI_CONFIG
from hypothesis import given, settings
from hypothesis import strategies as st

from tokeffc.markdown import fenced_line_mask, split_blocks
from tokeffc.passes import (
    PASSES,
    PassSettings,
    compress_checkpoints,
    dedupe_key,
    drop_reasoning_sections,
    normalise_text,
    run_document_passes,
)
from tokeffc.pipeline import BuildOptions, compile_framework

ALL = tuple(p.name for p in PASSES)


def test_normalise_is_whitespace_only():
    text = "\r\n# Title  \r\n\n\n\nText <!-- note --> here\n<!-- whole line -->\n`<!-- code -->`\n"
    assert normalise_text(text) == "# Title\n\nText <!-- note --> here\n<!-- whole line -->\n`<!-- code -->`\n"


def test_strip_comments_is_its_own_opt_in_pass_for_markdown_only():
    text = "Text <!-- note --> here\n<!-- whole line -->\n`<!-- code -->`\n"
    stages = dict(run_document_passes(text, "markdown", ALL, PassSettings(compress=False)))
    assert stages["strip_comments"] == "Text  here\n`<!-- code -->`\n"
    assert "strip_comments" not in dict(run_document_passes(text, "markdown", ("normalise",), PassSettings(False)))
    yaml_text = "# keep under 50 words\nsection: <!-- an instruction -->\n"
    assert run_document_passes(yaml_text, "yaml", ALL, PassSettings(compress=True)) == []
    assert [p.name for p in PASSES if p.default] == ["checkpoints", "normalise", "dedupe"]
    assert {p.name: p.lossless for p in PASSES} == {"checkpoints": False, "strip_comments": False,
                                                    "normalise": True, "dedupe": True}


def test_normalise_keeps_fenced_code_byte_for_byte():
    code = "```python\nx = 1   \n\n\n\n# <!-- not a comment -->\n```\n"
    assert normalise_text("intro\n\n" + code) == "intro\n\n" + code


def test_checkpoint_keeps_its_conclusion_only():
    text = ('before\n<checkpoint id="a">\n<reasoning>long argument</reasoning>\n'
            "<conclusion>Do the thing.</conclusion>\n</checkpoint>\nafter\n")
    assert compress_checkpoints(text) == "before\nDo the thing.\nafter\n"
    fenced = "```\n<checkpoint><conclusion>x</conclusion></checkpoint>\n```\n"
    assert compress_checkpoints(fenced) == fenced


CHECKPOINT = "<checkpoint><reasoning>r</reasoning><conclusion>c</conclusion></checkpoint>"


@pytest.mark.parametrize("literal", [
    f"Inline `{CHECKPOINT}` stays.\n",  # a code span
    f"Example:\n\n    {CHECKPOINT}\n\n    more code\n",  # an indented code block
    f"<!-- {CHECKPOINT} -->\n",  # an HTML comment
])
def test_a_checkpoint_shown_as_written_is_not_compressed(literal):
    assert compress_checkpoints(literal) == literal
    assert compress_checkpoints(f"{CHECKPOINT}\n\n{literal}") == f"c\n\n{literal}"


def test_a_checkpoint_in_a_list_item_or_after_a_paragraph_line_is_compressed():
    for text in (f"- item\n\n    {CHECKPOINT}\n", f"Para\n    {CHECKPOINT}\n"):
        assert compress_checkpoints(text) == text.replace(CHECKPOINT, "c")


def test_reasoning_sections_are_dropped_to_the_next_heading_of_their_level():
    text = "# A\nkeep\n## Rationale\ndrop\n### deeper\ndrop too\n## Next\nkeep\n"
    assert drop_reasoning_sections(text, ("## Rationale",)) == "# A\nkeep\n## Next\nkeep\n"


def test_short_and_structural_blocks_are_never_deduped_alone():
    assert dedupe_key(("## Usage\n",)) is None
    assert dedupe_key(("| --- | --- |\n",)) is None
    assert dedupe_key(("- a list item that is long enough to count as content if it were a paragraph\n",)) is None
    assert dedupe_key(("    an indented continuation that is long enough to be counted as a paragraph\n",)) is None
    assert dedupe_key(("A real paragraph that is long enough to be worth removing when repeated.\n",))
    assert dedupe_key(("## A section\n\n", "- with a list long enough to be worth a pointer, as one unit\n"))


# Markdown-ish documents: headings, prose with stray spaces, comments, blank runs, fenced code.
line = st.one_of(
    st.text(alphabet="abc XYZ.,-*#|<>!`", min_size=0, max_size=30),
    st.sampled_from(["", "   ", "<!-- c -->", "# H", "- item  ", "\r", "  indented"]),
)
fence = st.lists(line, max_size=4).map(lambda ls: "```\n" + "\n".join(ls) + "\n```")
document = st.lists(st.one_of(line, fence), max_size=25).map("\n".join)


def fenced_blocks(text):
    lines = text.replace("\r\n", "\n").replace("\r", "\n").splitlines(keepends=True)
    mask = fenced_line_mask(lines)
    return [line for line, fenced in zip(lines, mask) if fenced]


@settings(max_examples=300, deadline=None)
@given(document)
def test_normalise_is_idempotent_and_never_touches_fences(text):
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert [x.rstrip("\n") for x in fenced_blocks(once)] == [x.rstrip("\n") for x in fenced_blocks(text)]


@settings(max_examples=300, deadline=None)
@given(document)
def test_split_blocks_is_lossless(text):
    assert "".join(split_blocks(text)) == text


PARAGRAPH = ("A paragraph long enough to count as content when it shows up twice in one bundle: it says what to "
             "do when the tests fail twice in a row, whom to ask, what to write down before asking, and why a "
             "third blind attempt only hides the cause from whoever debugs it next.\n")


def build(mini, files, passes=""):
    config = MINI_CONFIG + passes
    return compile_framework(mini({"tokeffc.yaml": config, **files}), BuildOptions(tiers=("minimal",)))


def test_dedupe_replaces_a_copy_from_another_file_by_a_pointer(mini):
    result = build(mini, {"commands/c.md": f"---\ntokeffc: {{requires: [a]}}\n---\n# C\n\n{PARAGRAPH}",
                          "modules/a.md": f"# A\n\n{PARAGRAPH}"})
    text = result.bundles[0].content.data.decode()
    assert text.count(PARAGRAPH) == 1
    assert '(Repeated text left out: the paragraph that begins "A paragraph long enough to count as content' \
           '…" stands above, in "a".)' in text
    assert result.manifest.bundles[0].saved["dedupe"] > 0


def test_dedupe_never_removes_within_one_file_lists_or_yaml(mini):
    item = "- an option long enough to be a paragraph if it were not an item of a list\n"
    result = build(mini, {
        "commands/c.md": (f"---\ntokeffc: {{requires: [a, modules/t.yaml, modules/u.yaml]}}\n---\n"
                          f"{PARAGRAPH}\n{PARAGRAPH}\n{item}"),
        "modules/a.md": f"{item}",
        "modules/t.yaml": "workflow:\n  id: x\n  note: a yaml value long enough to count as a paragraph\n",
        "modules/u.yaml": "workflow:\n  id: x\n  note: a yaml value long enough to count as a paragraph\n"})
    text = result.bundles[0].content.data.decode()
    assert text.count(PARAGRAPH) == 2 and text.count(item) == 2 and "Repeated" not in text


@settings(max_examples=500, deadline=None)
@given(document)
def test_normalise_shortcut_agrees_with_the_full_pass(text):
    from tokeffc.passes import normalise_text_fully

    assert normalise_text(text) == normalise_text_fully(text)


@given(st.lists(st.sampled_from(["# A\n", "## B\n", "### C\n", "text\n\n", "#tag, not a heading\n", "#### D\n"]),
                max_size=14).map(tuple))
def test_a_dedupe_unit_is_a_section_up_to_the_next_heading_of_its_level_or_above(blocks):
    from tokeffc.assemble import _unit_spans
    from tokeffc.passes import heading_level

    for index, span in enumerate(_unit_spans(blocks)):
        level = heading_level(blocks[index])
        if not level:
            assert span == 1
            continue
        end = index + span
        assert all(not 0 < heading_level(block) <= level for block in blocks[index + 1:end])
        assert end == len(blocks) or 0 < heading_level(blocks[end]) <= level
