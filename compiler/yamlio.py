"""One safe, bounded YAML reader for everything tokeffc reads as YAML.

``tokeffc.yaml``, front matter, fenced YAML blocks in prompts and presets all come through
:func:`read_yaml`. It returns JSON-compatible data (string keys; ints, floats, bools, null, strings,
lists, mappings; nothing ``json.dumps`` could refuse) with the file line of every key, and raises
:class:`TokeffcError` located at the line to look at for every problem: invalid syntax, a character
YAML forbids, nesting deeper than a cap, aliases that expand past a cap ("billion laughs") or into
themselves, duplicate keys, keys that are lists or mappings, and tags tokeffc does not read.

The bounds hold while the text is composed, before anything is expanded: each collection's expanded
size and height are known when it closes, so an alias is weighed without being copied, and a bomb is
refused after composing at most ``max_values`` nodes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, cast

import yaml
import yaml.parser
import yaml.reader
import yaml.scanner
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from .errors import Span, TokeffcError, raise_all

_PARSER: Any
try:  # libyaml's parser when PyYAML was built with it (several times faster), else the pure-Python one
    from yaml._yaml import CParser as _PARSER
except ImportError:  # pragma: no cover
    _PARSER = None

KeyPath = tuple[str, ...]  # mapping keys and list indexes ("0", "1", ...) from the root

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_TEXT_TAGS = {_TAG + t for t in ("str", "timestamp", "binary")}  # kept as the text written
_SCALAR_TAGS = _TEXT_TAGS | {_TAG + t for t in ("null", "bool", "int", "float")}
_SEQUENCE_TAGS = {_TAG + t for t in ("seq", "omap", "pairs")}
_MAPPING_TAGS = {_TAG + t for t in ("map", "set")}
_MAX_NUMBER_CHARS = 100  # longer numbers stay text: bounded conversion (no 1:0:0:...:0 bignum)
_INT64 = 1 << 63
# What YAML 1.1 allows in a stream (PyYAML's reader refuses the rest, without a line).
_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # an escape ("\\ud800") the pure-Python scanner lets through
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_CONVERT = SafeConstructor()


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """How much one YAML text may hold once its aliases are expanded."""

    max_values: int = 100_000  # scalars and collections, every alias counted as what it repeats
    max_depth: int = 64  # nested lists and mappings, through aliases too
    max_chars: int = 16 * 1024 * 1024


LIMITS = YamlLimits()


@dataclass(frozen=True, slots=True)
class YamlDoc:
    """A YAML text read: JSON-compatible data, and the 1-based file line of every key and list item.

    ``key_lines[("tiers", "minimal")]`` is the line of that key; list items are under their index
    (``("core", "0")``); ``()`` is where the document's value begins.
    """

    data: Any
    key_lines: Mapping[KeyPath, int] = field(default_factory=lambda: MappingProxyType({}))
    first_line: int = 1

    def line(self, *path: str) -> int:
        """The line of ``path``, else of its nearest written ancestor, else of the text's first line."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.key_lines:
                return self.key_lines[path[:end]]
        return self.first_line


def read_yaml(text: str, where: str, first_line: int = 1, *, label: str = "YAML",
              limits: YamlLimits = LIMITS) -> YamlDoc:
    """Read one YAML document; ``first_line`` is the file line of the text's first line.

    Errors are :class:`TokeffcError` at ``Span(where, line)`` (:class:`Problems` when a well-formed
    text has several: duplicate keys, tags); ``label`` names the text in them (``"YAML front matter"``
    gives ``invalid YAML front matter: ...``).
    """
    reader = _Reader(text, where, first_line, label, limits)
    node = reader.compose()
    if node is None:
        return YamlDoc(None, MappingProxyType({}), first_line)
    converter = _Converter(reader)
    converter.lines[()] = reader.line(node)
    data = converter.value(node, ())
    raise_all(list(converter.problems.values()))
    return YamlDoc(data, MappingProxyType(converter.lines), first_line)


@lru_cache(maxsize=1024)  # fenced blocks are read for dependencies and for commands: once is enough
def try_read_yaml(text: str, where: str, first_line: int = 1, *, limits: YamlLimits = LIMITS) -> YamlDoc | None:
    """:func:`read_yaml`, or ``None`` for a text that is not YAML tokeffc reads (a code sample, say)."""
    try:
        return read_yaml(text, where, first_line, limits=limits)
    except TokeffcError:
        return None


def decode_utf8(raw: bytes, where: str, first_line: int = 1) -> str:
    """``raw`` as text (a UTF-8 byte order mark dropped), or an error at the line of the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = first_line + raw.count(b"\n", 0, exc.start)
        raise TokeffcError(f"not UTF-8 (byte {exc.start} of the file)", Span(where, line),
                           "save the file as UTF-8") from None


def describe_yaml_error(exc: yaml.YAMLError, first_line: int = 1, text: str | None = None) -> tuple[str, int]:
    """What PyYAML found wrong, and the 1-based line where the user should look.

    At the end of the input the problem's place is useless; where the open construct began is not.
    Without ``text``, "the end" is recognised from the message alone.
    """
    problem = getattr(exc, "problem", None) or "cannot be read"
    context = getattr(exc, "context", None)
    mark, context_mark = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    if problem == "second occurrence" and context and context_mark:  # a duplicate anchor
        anchor = context.split(";")[0]
        return f"{anchor} (first on line {first_line + context_mark.line})", _line(mark, first_line, text)
    if context and not context.startswith("while"):
        problem = f"{context}, {problem}"
    elif context_mark and _left_open(mark, problem, text):
        mark = context_mark
        problem = f"{problem} {context}" if context else problem
    return problem, _line(mark, first_line, text)


def _line(mark: Any, first_line: int, text: str | None = None) -> int:
    """The mark's line; libyaml puts the end of the input a line further, so no later than the last written."""
    line = first_line + (mark.line if mark else 0)
    return min(line, line_at(text, len(text.rstrip()), first_line)) if text is not None else line


def _left_open(mark: Any, problem: str, text: str | None) -> bool:
    """Whether the problem was found at the end of the input (a construct left open)."""
    if "end of stream" in problem or "<stream end>" in problem:
        return True
    return text is not None and mark is not None and mark.index >= len(text.rstrip())


def line_at(text: str, index: int, first_line: int = 1) -> int:
    """The line of ``text[index]``, counting line breaks as YAML does."""
    return first_line + len(_LINE_BREAK.findall(text, 0, index))


class _Reader:
    """Composes a YAML text into nodes within the limits; errors at their lines."""

    def __init__(self, text: str, where: str, first_line: int, label: str, limits: YamlLimits):
        self.text, self.where, self.first_line = text, where, first_line
        self.label, self.limits = label, limits
        self.last_line = first_line  # of the text written, known once the text is checked

    def error(self, message: str, line: int, hint: str) -> TokeffcError:
        return TokeffcError(message, Span(self.where, line), hint)

    def line(self, node_or_event: Node | Event) -> int:
        """Where a node begins; an empty one at the very end is on the last line written, not past it."""
        mark = node_or_event.start_mark
        return min(self.first_line + (mark.line if mark else 0), self.last_line)

    def compose(self) -> Node | None:
        self.check_text()
        fast = _compose_natively(self.text, self.limits)
        if fast is not None:
            return fast[0]
        try:  # the bounded composer: where the native one failed, or the text may break a limit
            return _Loader(self.text, _Bounds(self)).get_single_node()
        except yaml.YAMLError as exc:
            raise self.syntax_error(exc) from None

    def check_text(self) -> None:
        if len(self.text) > self.limits.max_chars:
            raise self.error(f"{self.label} is longer than {self.limits.max_chars} characters",
                             self.first_line, "split it into smaller files")
        self.last_line = line_at(self.text, len(self.text.rstrip()), self.first_line)
        bad = _FORBIDDEN.search(self.text)
        if bad:
            char = f"U+{ord(bad.group()):04X}"
            raise self.error(f"{self.label} holds the character {char}, which YAML does not allow",
                             line_at(self.text, bad.start(), self.first_line), "remove it, or write it escaped")

    def syntax_error(self, exc: yaml.YAMLError) -> TokeffcError:
        problem, line = describe_yaml_error(exc, self.first_line, self.text)
        if "nesting depth" in problem:  # libyaml's own cap (1000), met while it scans ahead
            return self.error(f"{self.label} nests deeper than {self.limits.max_depth} levels", line, "flatten it")
        return self.error(f"invalid {self.label}: {problem}", line, "fix the YAML syntax")


class _Bounds:
    """Composer hooks: depth, expanded size and recursion checked as each node is composed.

    ``values`` counts every node composed, and every alias as all it repeats: the size the data
    will have, known before any of it is built, so a bomb is refused after at most ``max_values`` nodes.
    """

    def __init__(self, reader: _Reader):
        self.reader = reader
        self.values = 0
        self.open: list[str | None] = []  # the anchors of the collections being composed
        self.weights: dict[int, tuple[int, int]] = {}  # id(collection) -> (expanded values, height)

    def weight(self, node: Node) -> tuple[int, int]:
        return self.weights[id(node)] if not isinstance(node, ScalarNode) else (1, 0)

    def count(self, values: int, event: Event) -> None:
        self.values += values
        if self.values > self.reader.limits.max_values:
            message = f"{self.reader.label} holds more than {self.reader.limits.max_values} values"
            raise self.reader.error(f"{message} (an alias counts as all it repeats)", self.reader.line(event),
                                    "split it, or use fewer aliases (*name)")

    def enter(self, event: CollectionStartEvent) -> None:
        if len(self.open) >= self.reader.limits.max_depth:
            raise self.too_deep(event)
        self.open.append(event.anchor)

    def leave(self, node: Node) -> None:
        self.open.pop()
        children = [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else node.value
        weights = [self.weight(child) for child in children]
        self.weights[id(node)] = (1 + sum(w[0] for w in weights), 1 + max((w[1] for w in weights), default=0))

    def alias(self, event: AliasEvent, node: Node) -> None:
        if event.anchor in self.open:
            raise self.reader.error(f"{self.reader.label}: alias '*{event.anchor}' repeats a node inside itself",
                                    self.reader.line(event), "an alias can only repeat a node written before it")
        values, height = self.weight(node)
        if len(self.open) + height > self.reader.limits.max_depth:
            raise self.too_deep(event)
        self.count(values, event)

    def too_deep(self, event: Event) -> TokeffcError:
        return self.reader.error(f"{self.reader.label} nests deeper than {self.reader.limits.max_depth} levels",
                                 self.reader.line(event), "flatten it")


class _BoundedComposer(Composer):
    bounds: _Bounds
    peek_event: Any  # the parser's, further along the loader's bases

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            node = self.composed(parent, index)
            self.bounds.alias(event, node)
            return node
        self.bounds.count(1, event)
        if not isinstance(event, CollectionStartEvent):
            return self.composed(parent, index)
        self.bounds.enter(event)
        node = self.composed(parent, index)
        self.bounds.leave(node)
        return node

    def composed(self, parent: Node | None, index: Any) -> Node:
        return cast(Node, super().compose_node(parent, index))


class _PyLoader(_BoundedComposer, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, Resolver):
    def __init__(self, text: str, bounds: _Bounds):
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        Composer.__init__(self)
        Resolver.__init__(self)
        self.bounds = bounds


_Loader: type = _PyLoader
_NativeLoader: type | None = None
if _PARSER is not None:
    class _CLoader(_BoundedComposer, _PARSER, Resolver):
        def __init__(self, text: str, bounds: _Bounds):
            _PARSER.__init__(self, text)
            Composer.__init__(self)
            Resolver.__init__(self)
            self.bounds = bounds

    class _NativeLoaderClass(_PARSER, Resolver):  # libyaml composes; PyYAML's resolver tags the scalars
        def __init__(self, text: str):
            _PARSER.__init__(self, text)
            Resolver.__init__(self)

    _Loader, _NativeLoader = _CLoader, _NativeLoaderClass


def _compose_natively(text: str, limits: YamlLimits) -> tuple[Node | None] | None:
    """The text composed by libyaml's own composer (several times faster), if it composes and is within
    ``limits``, as a one-tuple (an empty text composes to ``None``); else ``None``, and the bounded
    composer reads it again to find the error and its line.

    It composes without limits, so only texts too short to compose into more than about ``max_values``
    nodes are given to it: a node takes at least half a character (``{a,b}``: a key and its empty value
    per two), and an alias is the node it names, not a copy. The limits are then checked on the nodes
    (:func:`_within`).
    """
    if _NativeLoader is None or len(text) > limits.max_values // 2:
        return None
    try:
        node = _NativeLoader(text).get_single_node()
    except yaml.YAMLError:
        return None
    return (node,) if node is None or _within(node, limits) else None


def _within(root: Node, limits: YamlLimits) -> bool:
    """Whether the bounded composer would accept these nodes: what it counts, counted the same way.

    A collection met a second time is an alias (anchors are composed before their aliases): it counts as
    all it repeats and reaches as deep as its height; met while still open, it repeats itself.
    """
    weights: dict[int, tuple[int, int]] = {}  # id(collection) -> (expanded values, height)
    values = 0

    def visit(node: Node, depth: int) -> tuple[int, int] | None:
        nonlocal values
        if isinstance(node, ScalarNode):
            values += 1
            return 1, 0
        if id(node) in weights:
            size, height = weights[id(node)]
            values += size
            return (size, height) if height >= 0 and depth + height <= limits.max_depth else None
        if depth >= limits.max_depth:
            return None
        values += 1
        weights[id(node)] = (0, -1)  # open: an alias to it from inside is a recursion
        size, height = 1, 1
        for child in [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else node.value:
            found = visit(child, depth + 1)
            if found is None or values > limits.max_values:
                return None
            size, height = size + found[0], max(height, 1 + found[1])
        weights[id(node)] = size, height
        return size, height

    return visit(root, 0) is not None and values <= limits.max_values


class _Converter:
    """Nodes to JSON-compatible data, recording the line of every key and list item.

    What is wrong inside a well-formed text (a duplicate key, a tag, a list as a key) is collected,
    once per line, and reported together: every such problem at once, each at its line.
    """

    def __init__(self, reader: _Reader):
        self.reader = reader
        self.lines: dict[KeyPath, int] = {}
        self.problems: dict[tuple[int, str], TokeffcError] = {}  # an alias repeats its problems: once each

    def refuse(self, node: Node, message: str, hint: str) -> None:
        line = self.reader.line(node)
        self.problems.setdefault((line, message), self.reader.error(message, line, hint))

    def value(self, node: Node, path: KeyPath) -> Any:
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            return self.sequence(node, path)
        return self.mapping(cast(MappingNode, node), path)

    def known_tag(self, node: Node, known: set[str]) -> bool:
        if node.tag in known:
            return True
        tag = node.tag.replace(_TAG, "!!")
        self.refuse(node, f"{self.reader.label}: unsupported tag '{tag}'",
                    "remove the tag: tokeffc reads plain YAML values")
        return False

    def text(self, node: ScalarNode) -> str:
        """The scalar as written, if it can be written out again as UTF-8."""
        if _SURROGATE.search(node.value):
            self.refuse(node, f"{self.reader.label}: an escape names half a character (a surrogate)",
                        "escape the whole character, e.g. \\U0001F600")
            return ""
        return node.value

    def scalar(self, node: ScalarNode) -> Any:
        if not self.known_tag(node, _SCALAR_TAGS) or node.tag == _TAG + "null":
            return None
        if node.tag in _TEXT_TAGS:
            return self.text(node)
        if node.tag == _TAG + "bool":
            return SafeConstructor.bool_values.get(node.value.lower(), node.value)
        return _number(node)

    def sequence(self, node: SequenceNode, path: KeyPath) -> list[Any]:
        self.known_tag(node, _SEQUENCE_TAGS)
        items = []
        for index, item in enumerate(node.value):
            self.lines[(*path, str(index))] = self.reader.line(item)
            items.append(self.value(item, (*path, str(index))))
        return items

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        self.known_tag(node, _MAPPING_TAGS)
        pairs = self.pairs(node)
        result: dict[str, Any] = {}
        for _key, (key_node, value_node) in pairs:  # merged keys first: the mapping's own keys win
            if key_node.tag == _MERGE:
                self.merge(result, value_node, path)
        for key, (key_node, value_node) in pairs:
            if key_node.tag != _MERGE:
                self.lines[(*path, key)] = self.reader.line(key_node)
                result[key] = self.value(value_node, (*path, key))
        return result

    def pairs(self, node: MappingNode) -> list[tuple[str, tuple[Node, Node]]]:
        """The pairs under their keys as written (``1:`` is "1"); a repeated key is refused at its second line."""
        written: dict[str, Node] = {}
        pairs = []
        for key_node, value_node in node.value:
            key = self.key(key_node)
            if key is not None and key in written:
                first = self.reader.line(written[key])
                self.refuse(key_node, f"duplicate key '{key}' in {self.reader.label} (first on line {first})",
                            "keep one: keys are unique")
            elif key is not None:
                written[key] = key_node
                pairs.append((key, (key_node, value_node)))
        return pairs

    def key(self, node: Node) -> str | None:
        if not isinstance(node, ScalarNode):
            self.refuse(node, f"{self.reader.label}: a key must be a single value, not a list or mapping",
                        "write the key as text")
            return None
        return self.text(node) if self.known_tag(node, _SCALAR_TAGS | {_MERGE}) else None

    def merge(self, result: dict[str, Any], node: Node, path: KeyPath) -> None:
        """``<<: *base`` or ``<<: [*a, *b]``: the keys of the mappings named, the earliest winning."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in reversed(sources):
            if isinstance(source, MappingNode):
                result.update(self.mapping(source, path))
            else:
                self.refuse(source, f"{self.reader.label}: '<<' merges only mappings",
                            "write <<: *name, where &name is a mapping")


def _number(node: ScalarNode) -> int | float | str:
    """An int or a float as YAML reads it; too long, out of 64-bit range, NaN or infinite: the text."""
    if len(node.value) > _MAX_NUMBER_CHARS:
        return node.value
    try:
        if node.tag == _TAG + "int":
            number: int | float = _CONVERT.construct_yaml_int(node)
            return number if -_INT64 <= number < _INT64 else node.value
        number = _CONVERT.construct_yaml_float(node)
    except (ValueError, IndexError):  # an explicit !!int or !!float on text that is not one
        return node.value
    return number if math.isfinite(number) else node.value
