"""The text passes: examples, and invariants checked by hypothesis."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tokeffc.markdown import fenced_line_mask, split_blocks
from tokeffc.passes import compress_checkpoints, dedupe_key, drop_reasoning_sections, normalise_text


def test_normalise_examples():
    text = "\r\n# Title  \r\n\n\n\nText <!-- note --> here\n<!-- whole line -->\n`<!-- code -->`\n"
    assert normalise_text(text) == "# Title\n\nText  here\n`<!-- code -->`\n"


def test_normalise_keeps_fenced_code_byte_for_byte():
    code = "```python\nx = 1   \n\n\n\n# <!-- not a comment -->\n```\n"
    assert normalise_text("intro\n\n" + code) == "intro\n\n" + code


def test_checkpoint_keeps_its_conclusion_only():
    text = ('before\n<checkpoint id="a">\n<reasoning>long argument</reasoning>\n'
            "<conclusion>Do the thing.</conclusion>\n</checkpoint>\nafter\n")
    assert compress_checkpoints(text) == "before\nDo the thing.\nafter\n"
    fenced = "```\n<checkpoint><conclusion>x</conclusion></checkpoint>\n```\n"
    assert compress_checkpoints(fenced) == fenced


def test_reasoning_sections_are_dropped_to_the_next_heading_of_their_level():
    text = "# A\nkeep\n## Rationale\ndrop\n### deeper\ndrop too\n## Next\nkeep\n"
    assert drop_reasoning_sections(text, ("## Rationale",)) == "# A\nkeep\n## Next\nkeep\n"


def test_short_and_structural_blocks_are_never_deduped():
    assert dedupe_key("## Usage\n") is None
    assert dedupe_key("| --- | --- |\n") is None
    assert dedupe_key("A real paragraph that is long enough to be worth removing when repeated.\n")


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
    return [l for l, fenced in zip(lines, mask) if fenced]


@settings(max_examples=300, deadline=None)
@given(document)
def test_normalise_is_idempotent_and_never_touches_fences(text):
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert [l.rstrip("\n") for l in fenced_blocks(once)] == [l.rstrip("\n") for l in fenced_blocks(text)]


@settings(max_examples=300, deadline=None)
@given(document)
def test_split_blocks_is_lossless(text):
    assert "".join(split_blocks(text)) == text


def dedupe(blocks):
    seen, kept = set(), []
    for block in blocks:
        key = dedupe_key(block)
        if key is not None and key in seen:
            continue
        seen.add(key)
        kept.append(block)
    return kept


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "A paragraph long enough to count as content when it shows up twice in one bundle.\n\n",
    "```\ncode that is long enough to be a dedupable block, kept once per bundle\n```\n\n",
    "## Heading\n\n", "short\n\n",
    "Another distinct paragraph, also comfortably over the minimum length for dedupe.\n\n",
]), max_size=12))
def test_dedupe_keeps_every_distinct_block_once_and_is_idempotent(blocks):
    kept = dedupe(blocks)
    assert dedupe(kept) == kept
    assert {b.strip() for b in kept} == {b.strip() for b in blocks}  # nothing seen only once is lost
    for block in blocks:
        if dedupe_key(block) is None:
            assert kept.count(block) == blocks.count(block)  # structure is never removed


@settings(max_examples=500, deadline=None)
@given(document)
def test_normalise_shortcut_agrees_with_the_full_pass(text):
    from tokeffc.passes import normalise_text_fully

    assert normalise_text(text) == normalise_text_fully(text)
