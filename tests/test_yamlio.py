"""The one YAML reader: JSON-compatible data, a line for every key, a located error for every problem."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tokeffc import yamlio
from tokeffc.errors import Problems, TokeffcError
from tokeffc.yamlio import YamlLimits, decode_utf8, read_yaml, try_read_yaml

# Every way a text is composed: libyaml's own composer (what runs first, for short texts), then the
# bounded composer on either parser PyYAML has: libyaml's and the pure-Python one.
NATIVE = yamlio._NativeLoader
LOADERS = [("bounded, Python parser", yamlio._PyLoader, None)]
if yamlio._PARSER is not None:
    LOADERS += [("bounded, libyaml parser", yamlio._CLoader, None), ("libyaml composer", yamlio._CLoader, NATIVE)]


@pytest.fixture(params=LOADERS, ids=lambda way: way[0])
def loader(request, monkeypatch):
    _, bounded, native = request.param
    monkeypatch.setattr(yamlio, "_Loader", bounded)
    monkeypatch.setattr(yamlio, "_NativeLoader", native)
    return bounded


def error(text: str, first_line: int = 1, **kwargs) -> str:
    with pytest.raises(TokeffcError) as caught:
        read_yaml(textwrap.dedent(text), "f.yaml", first_line, **kwargs)
    assert caught.value.span.path == "f.yaml"
    return caught.value.one_line()


def lol(levels: int, fan: int = 10) -> str:
    """The "billion laughs": each level an anchored list of ``fan`` aliases to the level before."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * fan) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# --- data and lines ------------------------------------------------------------------------------

def test_data_and_the_line_of_every_key_and_item(loader):
    doc = read_yaml("name: a\ntiers:\n  minimal: {budget: 5}\n  full:\n    budget: 9\ncore:\n  - A.md\n  - {x: 1}\n",
                    "f.yaml", first_line=3)
    assert doc.data == {"name": "a", "tiers": {"minimal": {"budget": 5}, "full": {"budget": 9}},
                        "core": ["A.md", {"x": 1}]}
    assert dict(doc.key_lines) == {
        (): 3,
        ("name",): 3, ("tiers",): 4, ("tiers", "minimal"): 5, ("tiers", "minimal", "budget"): 5,
        ("tiers", "full"): 6, ("tiers", "full", "budget"): 7,
        ("core",): 8, ("core", "0"): 9, ("core", "1"): 10, ("core", "1", "x"): 10,
    }
    assert doc.line("tiers", "full", "compress") == 6  # the nearest written ancestor
    assert doc.line("nowhere") == 3


def test_empty_and_comment_only_texts_are_null():
    assert read_yaml("", "f").data is None
    assert read_yaml("# nothing\n", "f", 7).line() == 7


def test_scalar_keys_become_the_text_written(loader):
    doc = read_yaml("1: a\ntrue: b\nnull: c\n~: d\n1.5: e\non: f\n2001-12-14: g\n", "f")
    assert list(doc.data) == ["1", "true", "null", "~", "1.5", "on", "2001-12-14"]


def test_values_are_json_compatible_as_written(loader):
    doc = read_yaml(textwrap.dedent("""\
        date: 2001-12-14
        stamp: 2001-12-14t21:59:43.10-05:00
        nan: .nan
        inf: -.inf
        overflow: 1e400
        huge: 123456789012345678901234567890
        long: 1:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00
        binary: !!binary aGVsbG8=
        not_int: !!int abc
        empty_int: !!int ''
        not_bool: !!bool maybe
        ints: [0x1F, 0b101, 1_000, 1:30, -7]
        floats: [1.5, 1.0e+3, 6.8523015e+5, 1e3]
        bools: [yes, No, true, off]
        set: !!set {a, b}
        """), "f")
    assert doc.data == {
        "date": "2001-12-14", "stamp": "2001-12-14t21:59:43.10-05:00", "nan": ".nan", "inf": "-.inf",
        "overflow": "1e400", "huge": "123456789012345678901234567890", "long": doc.data["long"],
        "binary": "aGVsbG8=", "not_int": "abc", "empty_int": "", "not_bool": "maybe",
        "ints": [31, 5, 1000, 90, -7], "floats": [1.5, 1000.0, 685230.15, "1e3"], "bools": [True, False, True, False],
        "set": {"a": None, "b": None},
    }
    assert doc.data["long"].startswith("1:00:00")
    json.dumps(doc.data, allow_nan=False)


def test_merge_keys_the_mappings_own_keys_winning(loader):
    doc = read_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd:\n  y: 4\n  <<: [{x: 0}, *b, {z: 5}]\n", "f")
    assert doc.data["c"] == {"x": 1, "y": 3}
    assert doc.data["d"] == {"x": 0, "y": 4, "z": 5}
    assert doc.key_lines[("c", "x")] == 1 and doc.key_lines[("c", "y")] == 4


def test_an_alias_repeats_its_node_with_its_lines(loader):
    doc = read_yaml("a: &a {k: [1, 2]}\nb: *a\n", "f")
    assert doc.data["b"] == {"k": [1, 2]} and doc.data["b"] is not doc.data["a"]
    assert doc.key_lines[("b", "k")] == 1


def test_try_read_yaml_is_none_for_what_is_not_yaml():
    assert try_read_yaml("a: [1\n", "f") is None
    assert try_read_yaml(lol(9), "f") is None
    assert try_read_yaml("deps: [a.md]\n", "f", 4).key_lines[("deps", "0")] == 4


# --- limits --------------------------------------------------------------------------------------

def test_nesting_up_to_the_cap_is_read_and_past_it_refused(loader):
    assert read_yaml("[" * 64 + "]" * 64, "f").data is not None
    assert error("x: 1\ny: " + "[" * 65 + "]" * 65, 5) == "f.yaml:6: YAML nests deeper than 64 levels; flatten it"
    block = "".join("  " * i + "- \n" for i in range(70))
    assert error(block) == "f.yaml:65: YAML nests deeper than 64 levels; flatten it"


@pytest.mark.parametrize("text", ["[" * 1_000_000, "{a: " * 300_000, "- " * 500_000 + "x"])
def test_very_deep_nesting_is_refused_without_recursion(loader, text):
    assert error(text) == "f.yaml:1: YAML nests deeper than 64 levels; flatten it"


def test_nesting_through_an_alias_counts(loader):
    # The top mapping is one level, the alias's own list 23 more, what it repeats 40: 64 in all.
    text = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 23 + "*a" + "]" * 23 + "\n"
    assert read_yaml(text, "f").data["b"] is not None
    deeper = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 24 + "*a" + "]" * 24 + "\n"
    assert error(deeper) == "f.yaml:2: YAML nests deeper than 64 levels; flatten it"


def test_values_are_counted_as_aliases_expand(loader):
    # The mapping, 2 keys, the list and its 2 items, the list of aliases, each alias 3 values: 13.
    limits = YamlLimits(max_values=13)
    assert read_yaml("a: &a [x, y]\nb: [*a, *a]\n", "f", limits=limits).data["b"] == [["x", "y"]] * 2
    message = "holds more than 13 values (an alias counts as all it repeats); split it, or use fewer aliases (*name)"
    assert error("a: &a [x, y]\nb: [*a, *a, *a]\n", limits=limits) == f"f.yaml:2: YAML {message}"


def test_billion_laughs_refused_at_the_line_that_crosses_the_cap(loader):
    assert error(lol(9), 10).startswith("f.yaml:14: YAML holds more than 100000 values")  # l4: 10**5 laughs


def test_a_flat_list_past_the_cap_is_refused_too():
    # The mapping, its key and the list are 3 values: item 99,998 (line 99,999) is one too many.
    assert error("a:\n" + "  - x\n" * 100_001).startswith("f.yaml:99999: YAML holds more than 100000 values")


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a [x, [y, *a]]\n"])
def test_a_recursive_alias_is_refused(loader, text):
    assert error(text) == ("f.yaml:1: YAML: alias '*a' repeats a node inside itself; "
                           "an alias can only repeat a node written before it")


def test_text_longer_than_the_cap_is_refused():
    assert error("a: 12345\n", 4, limits=YamlLimits(max_chars=8)) == (
        "f.yaml:4: YAML is longer than 8 characters; split it into smaller files")


# --- keys ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, first", [
    ("a: 1\nb: 2\na: 3\n", 3, 1),
    ("1: a\n'1': b\n", 2, 1),
    ("x:\n  true: 1\n  'true': 2\n", 3, 2),
    ("{a: 1, a: 2}", 1, 1),
    ("<<: {a: 1}\n<<: {b: 2}\n", 2, 1),
])
def test_a_duplicate_key_is_refused_at_its_second_line(loader, text, line, first):
    key = error(text).split("'")[1]
    assert error(text) == (f"f.yaml:{line}: duplicate key '{key}' in YAML (first on line {first}); "
                           "keep one: keys are unique")


def test_every_problem_of_a_well_formed_text_is_reported_once_at_its_line(loader):
    text = "a: 1\na: 2\nb: &b {x: 1, x: 2}\nc: *b\nd: !foo 1\n? [k]\n: v\n"
    with pytest.raises(Problems) as caught:
        read_yaml(text, "f.yaml")
    assert caught.value.lines() == [
        "f.yaml:2: duplicate key 'a' in YAML (first on line 1); keep one: keys are unique",
        "f.yaml:3: duplicate key 'x' in YAML (first on line 3); keep one: keys are unique",
        "f.yaml:5: YAML: unsupported tag '!foo'; remove the tag: tokeffc reads plain YAML values",
        "f.yaml:6: YAML: a key must be a single value, not a list or mapping; write the key as text",
    ]


def test_a_duplicate_key_in_a_merged_mapping_is_not_one(loader):
    assert read_yaml("a: &a {x: 1}\nb: {<<: *a, x: 2}\n", "f").data["b"] == {"x": 2}


@pytest.mark.parametrize("text", ["? [a]\n: 1\n", "x: 1\n? {a: b}\n: 1\n", "[a, b]: 1\n"])
def test_a_list_or_mapping_key_is_refused(loader, text):
    line = 2 if text.startswith("x") else 1
    assert error(text) == (f"f.yaml:{line}: YAML: a key must be a single value, not a list or mapping; "
                           "write the key as text")


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, tag", [
    ("a: !foo bar\n", 1, "!foo"),
    ("a: 1\nb: !!python/object:os.system x\n", 2, "!!python/object:os.system"),
    ("s: !!str [a]\n", 1, "!!str"),
    ("!!set [a]\n", 1, "!!set"),
])
def test_a_tag_tokeffc_does_not_read_is_refused(loader, text, line, tag):
    assert error(text) == (f"f.yaml:{line}: YAML: unsupported tag '{tag}'; "
                           "remove the tag: tokeffc reads plain YAML values")


def test_merging_a_scalar_is_refused(loader):
    assert error("a: &a 1\nb:\n  <<: *a\n") == (
        "f.yaml:1: YAML: '<<' merges only mappings; write <<: *name, where &name is a mapping")


def test_syntax_errors_name_the_line_to_look_at():
    # libyaml's wording (the parser that runs when PyYAML has it).
    assert error("a: 1\nb: [x, y\n\n", 2, label="YAML front matter") == (
        "f.yaml:3: invalid YAML front matter: did not find expected ',' or ']' while parsing a flow sequence; "
        "fix the YAML syntax")
    assert error("a: 'abc\n\n") == ("f.yaml:1: invalid YAML: found unexpected end of stream "
                                    "while scanning a quoted scalar; fix the YAML syntax")
    assert error("a: b\n  c: d\n") == ("f.yaml:2: invalid YAML: mapping values are not allowed in this context; "
                                     "fix the YAML syntax")
    assert error("a: 1\n---\nb: 2\n") == ("f.yaml:2: invalid YAML: expected a single document in the stream, "
                                          "but found another document; fix the YAML syntax")
    assert error("a: &x 1\nb: &x 2\n") == ("f.yaml:2: invalid YAML: found duplicate anchor 'x' (first on line 1); "
                                           "fix the YAML syntax")
    assert error("a: 1\nb: *nope\n") == "f.yaml:2: invalid YAML: found undefined alias 'nope'; fix the YAML syntax"


@pytest.mark.parametrize("text, line", [("a: 1\nb: [x, y\n\n", 2), ("a: 1\nb: \"x\n", 2), ("a:\n  - b\n c: d\n", 3)])
def test_both_parsers_name_the_same_line(loader, text, line):
    assert error(text).startswith(f"f.yaml:{line}: invalid YAML: ")


@pytest.mark.parametrize("char, name", [
    ("\x00", "U+0000"), ("\x07", "U+0007"), ("\ufffe", "U+FFFE"), ("\ud800", "U+D800")])
def test_a_character_yaml_forbids_is_refused_at_its_line(char, name):
    assert error(f"a: 1\nb: 2\nc: x{char}y\n", 10) == (
        f"f.yaml:12: YAML holds the character {name}, which YAML does not allow; remove it, or write it escaped")


def test_an_escaped_half_character_is_refused(loader):
    if loader is not yamlio._PyLoader:  # libyaml refuses the escape itself
        assert error('a: 1\nb: "\\ud800"\n').startswith("f.yaml:2: invalid YAML: found invalid Unicode character")
        return
    assert error('a: 1\nb: "\\ud800"\n') == ("f.yaml:2: YAML: an escape names half a character (a surrogate); "
                                             "escape the whole character, e.g. \\U0001F600")


def test_bad_utf8_is_reported_at_its_line():
    assert decode_utf8(b"\xef\xbb\xbfa: \xc3\xa9\n", "f") == "a: é\n"
    with pytest.raises(TokeffcError) as caught:
        decode_utf8(b"a: 1\nb: 2\nc: \xff\n", "f.yaml")
    assert caught.value.one_line() == "f.yaml:3: not UTF-8 (byte 13 of the file); save the file as UTF-8"


# --- bounded in memory and time, whatever the text -------------------------------------------------

BOMB_SCRIPT = """
import sys
from tokeffc.errors import Problems, TokeffcError
from tokeffc.yamlio import read_yaml
try:
    read_yaml(sys.stdin.read(), "bomb.yaml")
except TokeffcError as exc:
    print(exc.one_line())
"""
BOMBS = {
    "laughs": (lol(12), "bomb.yaml:5: YAML holds more than 100000 values"),
    "laughs-wide": (lol(4, fan=2000), "bomb.yaml:2: YAML holds more than 100000 values"),
    "recursive": ("a: &a [x, *a]\n", "bomb.yaml:1: YAML: alias '*a' repeats a node inside itself"),
    "deep": ("[" * 2_000_000, "bomb.yaml:1: YAML nests deeper than 64 levels"),
    "many": ("[" + "x, " * 2_000_000 + "]", "bomb.yaml:1: YAML holds more than 100000 values"),
    "merges": ("a: &a {" + ", ".join(f"k{i}: {i}" for i in range(500)) + "}\n"
               + "".join(f"m{i}: {{<<: *a}}\n" for i in range(500)), "bomb.yaml:100: YAML holds more than 100000"),
}


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_are_refused_in_bounded_memory_and_time(name):
    text, expected = BOMBS[name]
    result = subprocess.run([sys.executable, "-c", BOMB_SCRIPT], input=text, capture_output=True, text=True,
                            preexec_fn=_limit_memory, timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]
    assert result.stdout.startswith(expected), result.stdout


ATOMS = ["a", "b", ":", ": ", "- ", "\n", "  ", "[", "]", "{", "}", ",", "&a ", "*a", "&b ", "*b", "<<: ", "? ",
         "!!int ", "!!float ", "!!bool ", "!!str ", "!!binary ", "!!set ", "!!omap ", "!!timestamp ", "!foo ",
         "'", '"', "#", "1", "0x", "1:30", ".nan", ".inf", "~", "null", "true", "2001-12-14", "---", "...",
         "|", ">", "\t", "\x00", "é", "%YAML 1.1\n", "1e999", "_", "-", "\\ud800", "\\"]
YAMLISH = st.one_of(st.lists(st.sampled_from(ATOMS), max_size=40).map("".join), st.text(max_size=60))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH, st.integers(1, 50))
@example("---", 1)  # an empty value at the very end: libyaml places it a line past the text
@example("[", 3)
def test_any_text_is_data_or_a_located_error(text, first_line):
    last_line = first_line + len(yamlio._LINE_BREAK.findall(text))
    try:
        doc = read_yaml(text, "f.yaml", first_line)
    except TokeffcError as exc:
        assert exc.span.path == "f.yaml" and first_line <= exc.span.line <= last_line, exc.one_line()
        assert "\n" not in exc.one_line()
        return
    json.dumps(doc.data, allow_nan=False).encode("utf-8")
    assert all(first_line <= line <= last_line for line in doc.key_lines.values())


# --- libyaml's own composer reads as the bounded one --------------------------------------------

SCALARS = ["a", "1", "x y", "''", "null", "true", "~", "1.5", "!!str 3", "!!binary aGk=", "*a", "*b", "*c"]
KEYS = ["k", "j", "<<", "1", "? [x]", "*a"]
FLOW = st.recursive(
    st.sampled_from(SCALARS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=4).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"),
        st.tuples(st.sampled_from(["&a ", "&b ", "&c "]), inner).map("".join),
    ),
    max_leaves=24,
)
ANCHORS = "x: &a [x, y, z]\ny: &b {k: [1, 2], j: *a}\n"  # so that later aliases usually name something
TEXTS = st.tuples(st.sampled_from(["", ANCHORS]), st.lists(st.tuples(st.sampled_from(["k", "j", "m", "<<", "k"]), FLOW),
                                                         min_size=1, max_size=5)).map(
    lambda parts: parts[0] + "".join(f"{k}: {v}\n" for k, v in parts[1]))


def outcome(text: str, native, limits: YamlLimits) -> tuple:
    """What reading ``text`` gives: the data and every key's line, or every error line."""
    saved, yamlio._NativeLoader = yamlio._NativeLoader, native
    try:
        doc = read_yaml(text, "f.yaml", limits=limits)
        return "read", json.dumps(doc.data, sort_keys=True), sorted(doc.key_lines.items())
    except Problems as exc:
        return "refused", exc.lines()
    except TokeffcError as exc:
        return "refused", [exc.one_line()]
    finally:
        yamlio._NativeLoader = saved


SMALL_LIMITS = [YamlLimits(max_values=12, max_depth=3), YamlLimits(max_values=40, max_depth=2), YamlLimits(max_depth=4),
                YamlLimits(max_values=60)]


@pytest.mark.skipif(NATIVE is None, reason="PyYAML without libyaml")
@settings(max_examples=300, deadline=None)
@given(TEXTS, st.sampled_from([YamlLimits(), YamlLimits(max_depth=3)]))
def test_libyaml_composer_reads_every_text_as_the_bounded_one(text, limits):
    """Same data, same lines, same errors, whichever composer read the text."""
    assert outcome(text, NATIVE, limits) == outcome(text, None, limits)


def bounded_accepts(text: str, limits: YamlLimits) -> bool:
    reader = yamlio._Reader(text, "f.yaml", 1, "YAML", limits)
    try:
        yamlio._Loader(text, yamlio._Bounds(reader)).get_single_node()
    except TokeffcError:
        return False
    return True


@pytest.mark.skipif(NATIVE is None, reason="PyYAML without libyaml")
@settings(max_examples=300, deadline=None)
@given(TEXTS)
@example(ANCHORS + "k: [*b]\n")  # an alias reaching exactly one level past a depth limit
@example("x: &e []\nk: [[*e]]\n")  # an empty collection is one level high
def test_limits_checked_after_composing_accept_what_the_bounded_composer_accepts(text):
    """Aliases, recursion, depth and size counted alike, at any limits (the length cap aside)."""
    try:
        node = NATIVE(text).get_single_node()
    except yaml.YAMLError:
        return
    for limits in SMALL_LIMITS:
        assert yamlio._within(node, limits) == bounded_accepts(text, limits), limits


@pytest.mark.skipif(NATIVE is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("text", ["a: &a [x, *a]\n", lol(3), "a: &a {b: *a}\n", "[" * 40 + "]" * 40, lol(5, fan=3)])
def test_limits_are_checked_on_what_libyaml_composed(text):
    limits = YamlLimits(max_values=100, max_depth=8)
    assert outcome(text, NATIVE, limits) == outcome(text, None, limits)
    assert outcome(text, NATIVE, limits)[0] == "refused"


def test_a_text_long_enough_to_compose_past_the_cap_goes_to_the_bounded_composer(monkeypatch):
    """libyaml composes without limits, so it is given only texts too short to exceed them."""
    def refuse(text):
        raise AssertionError("libyaml's composer was given a text past its length cap")

    monkeypatch.setattr(yamlio, "_NativeLoader", refuse)
    text = "[" + "x, " * 60 + "]"  # 61 values in 182 characters
    with pytest.raises(TokeffcError, match="more than 50 values"):
        read_yaml(text, "f.yaml", limits=YamlLimits(max_values=50))
