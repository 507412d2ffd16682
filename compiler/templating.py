"""tokeffc's own template tags in prompt bodies; everything else is the framework's text.

tokeffc recognises, outside fenced code and code spans (also spans that wrap a line):

* ``{% if EXPR %}`` / ``{% elif EXPR %}`` whose expression tests a ``tokeffc.`` value, with the
  ``{% else %}`` and ``{% endif %}`` that pair with it;
* ``{% include "path" %}`` with a literal path, on a line of its own;
* ``{{ tokeffc.NAME }}``.

Every other ``{{ }}``, ``{% %}`` and ``{# #}`` belongs to the framework and is kept byte for byte.
Expressions are parsed by Jinja2's parser and evaluated here over a whitelist (``tokeffc.tier``,
``.command``, ``.framework``, ``.version``, literals, ``== != in not in``, ``and or not``): there
are no loops, calls, filters or arithmetic, so rendering is bounded by the size of the text.
A tag alone on its line takes the line with it; ``{%-`` and ``-%}`` also trim whitespace beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import Span, TokeffcError
from .markdown import prose_and_code

VARIABLES = ("tier", "command", "framework", "version")
_BLOCK_TAG = re.compile(r"\{%(-?)\s*(if|elif|else|endif|include)\b(.*?)(-?)%\}", re.S)
_OUR_EXPRESSION = re.compile(r"\{\{(-?)\s*tokeffc\s*\.(.*?)(-?)\}\}", re.S)
_MENTIONS_US = re.compile(r"\btokeffc\s*\.")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1)(?!\n[ \t]*\n)[\s\S])+?\1")
_INCLUDE_ARG = re.compile(r"""\s*(["'])([^"'\n]+)\1\s*""")
INCLUDE_SENTINEL = re.compile(r"\x00I([^\x00]*)\x00")
MAX_NESTING = 64


@dataclass(frozen=True, slots=True)
class Include:
    name: str
    line: int


@dataclass(frozen=True, slots=True)
class Var:
    name: str


@dataclass(frozen=True, slots=True)
class Cond:
    branches: tuple[tuple[Any, tuple[Node, ...]], ...]  # (expression or None for else, body)


Node = str | Include | Var | Cond


@dataclass(frozen=True, slots=True)
class BodyTemplate:
    """A body ready to render per tier. ``is_template`` False means the body renders as itself."""

    body: str
    nodes: tuple[Node, ...]
    includes: tuple[tuple[str, int], ...]  # (name as written, line in the file)
    variables: frozenset[str]  # the tokeffc.* values it reads
    is_template: bool
    span: Span  # the body's first line


@dataclass(frozen=True, slots=True)
class TemplateContext:
    """The one set of values templates see (built in one place: ``template_context``)."""

    tier: str
    command: str  # the entry's id (never its path)
    framework: str
    version: str

    def value(self, name: str) -> str:
        return str(getattr(self, name))


def plain_body(body: str, span: Span) -> BodyTemplate:
    return BodyTemplate(body, (body,), (), frozenset(), False, span)


def prepare_body(body: str, span: Span, enabled: bool = True) -> BodyTemplate:
    """Find tokeffc's tags, pair them, parse their expressions, and list the includes with their lines."""
    if not enabled or ("{%" not in body and "{{" not in body) or "tokeffc" not in body and "include" not in body:
        return plain_body(body, span)
    tags = _our_tags(body, span)
    if not tags:
        return plain_body(body, span)
    nodes = _Builder(body, span, tags).build()
    includes = tuple((t.argument, t.line) for t in tags if t.kind == "include")
    variables = frozenset(v for t in tags for v in VARIABLES if re.search(rf"\btokeffc\s*\.\s*{v}\b", t.text))
    return BodyTemplate(body, nodes, includes, variables, True, span)


def render_body(template: BodyTemplate, context: TemplateContext) -> str:
    """The body for one tier and entry; includes become sentinel lines for the renderer."""
    if not template.is_template:
        return template.body
    out: list[str] = []
    _render(template.nodes, context, out)
    return "".join(out)


def _render(nodes: tuple[Node, ...], context: TemplateContext, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Include):
            out.append(f"\x00I{node.name}\x00\n")
        elif isinstance(node, Var):
            out.append(context.value(node.name))
        else:
            for test, body in node.branches:
                if test is None or _truthy(evaluate(test, context)):
                    _render(body, context, out)
                    break


# --- finding and pairing tags ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Tag:
    kind: str  # if | elif | else | endif | include | var
    argument: str  # the expression, the include's path, or the variable
    start: int  # what the tag removes from the body: [start, end)
    end: int
    line: int
    text: str


def _our_tags(body: str, span: Span) -> list[_Tag]:
    """tokeffc's tags in order; ``else``/``endif`` are ours when they close an ``if`` of ours."""
    candidates = sorted(_candidates(body, span), key=lambda t: t.start)
    tags: list[_Tag] = []
    stack: list[bool] = []  # True for an if of tokeffc's, False for the framework's
    for tag in candidates:
        ours = _is_ours(tag, stack, span)
        if ours:
            tags.append(tag)
    if True in stack:
        opened = [t for t in tags if t.kind == "if"]
        raise TokeffcError("{% if %} on tokeffc values is never closed", Span(span.path, opened[-1].line),
                           "add {% endif %}")
    return tags


def _is_ours(tag: _Tag, stack: list[bool], span: Span) -> bool:
    where = Span(span.path, tag.line)
    if tag.kind in ("include", "var"):
        return True
    if tag.kind == "if":
        stack.append(bool(_MENTIONS_US.search(tag.argument)))
        return stack[-1]
    if not stack:
        return False  # a stray else/endif: the framework's text
    if tag.kind == "elif" and stack[-1] != bool(_MENTIONS_US.search(tag.argument)):
        raise TokeffcError("an {% elif %} must test tokeffc values exactly when its {% if %} does", where,
                           "write the framework's own conditions outside tokeffc's")
    return stack.pop() if tag.kind == "endif" else stack[-1]


def _candidates(body: str, span: Span):
    """Block tags and ``{{ tokeffc.x }}`` outside fenced code and code spans."""
    offset = 0
    for is_code, chunk in prose_and_code(body):
        if not is_code and ("{%" in chunk or "{{" in chunk):
            hidden = _code_spans(chunk)
            for match in _BLOCK_TAG.finditer(chunk):
                if not _inside(match.start(), hidden) and _wanted(match):
                    yield _tag(body, offset, match, match.group(2), match.group(3).strip(), span)
            for match in _OUR_EXPRESSION.finditer(chunk):
                if not _inside(match.start(), hidden):
                    yield _tag(body, offset, match, "var", _variable(match, body, offset, span), span)
        offset += len(chunk)


def _wanted(match: re.Match) -> bool:
    """An include is ours only with a literal path; other include forms are the framework's."""
    return match.group(2) != "include" or bool(_INCLUDE_ARG.fullmatch(match.group(3)))


def _variable(match: re.Match, body: str, offset: int, span: Span) -> str:
    name = match.group(2).strip()
    if name not in VARIABLES:
        raise TokeffcError(f"{{{{ tokeffc.{name} }}}} is not a tokeffc value",
                           Span(span.path, span.line + body.count("\n", 0, offset + match.start())),
                           f"tokeffc values: {', '.join('tokeffc.' + v for v in VARIABLES)}")
    return name


def _tag(body: str, offset: int, match: re.Match, kind: str, argument: str, span: Span) -> _Tag:
    start, end = offset + match.start(), offset + match.end()
    line = span.line + body.count("\n", 0, start)
    if kind == "include":
        argument = _INCLUDE_ARG.fullmatch(argument).group(2)  # type: ignore[union-attr]
    cut_start, cut_end = _cut(body, start, end, kind, match.group(1) == "-", match.group(match.lastindex or 0) == "-")
    line_start, line_end = body.rfind("\n", 0, start) + 1, body.find("\n", end)
    if kind == "include" and (body[line_start:start].strip() or body[end:None if line_end < 0 else line_end].strip()):
        raise TokeffcError("{% include %} must stand on a line of its own", Span(span.path, line),
                           "move the include to its own line")
    return _Tag(kind, argument, cut_start, cut_end, line, match.group(0))


def _cut(body: str, start: int, end: int, kind: str, trim_left: bool, trim_right: bool) -> tuple[int, int]:
    """What removing a tag removes: its whole line when it stands alone there."""
    line_start = body.rfind("\n", 0, start) + 1
    line_end = body.find("\n", end)
    line_end = len(body) if line_end < 0 else line_end + 1
    if kind != "var" and not body[line_start:start].strip(" \t") and not body[end:line_end].strip(" \t\n"):
        return line_start, line_end
    if trim_left:
        start = len(body[:start].rstrip())
    if trim_right:
        end = len(body) - len(body[end:].lstrip())
    return start, end


def _code_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _CODE_SPAN.finditer(text)] if "`" in text else []


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


class _Builder:
    """Turns the paired tags into a tree of text, includes, variables and conditions."""

    def __init__(self, body: str, span: Span, tags: list[_Tag]):
        self.body, self.span, self.tags, self.index, self.position = body, span, tags, 0, 0

    def build(self) -> tuple[Node, ...]:
        nodes, closer = self._sequence(0)
        if closer is not None:
            raise self._error(closer, f"{{% {closer.kind} %}} without an {{% if %}}", "remove it or add the if")
        return nodes

    def _sequence(self, depth: int) -> tuple[tuple[Node, ...], _Tag | None]:
        nodes: list[Node] = []
        while self.index < len(self.tags):
            tag = self.tags[self.index]
            self._text_until(tag.start, nodes)
            self.index += 1
            self.position = tag.end
            if tag.kind in ("elif", "else", "endif"):
                return tuple(nodes), tag
            nodes.append(self._node(tag, depth))
        self._text_until(len(self.body), nodes)
        return tuple(nodes), None

    def _node(self, tag: _Tag, depth: int) -> Node:
        if tag.kind == "include":
            return Include(tag.argument, tag.line)
        if tag.kind == "var":
            return Var(tag.argument)
        if depth >= MAX_NESTING:
            raise self._error(tag, f"conditions nest deeper than {MAX_NESTING} levels", "flatten them")
        return self._condition(tag, depth)

    def _condition(self, opener: _Tag, depth: int) -> Cond:
        branches, test = [], parse_condition(opener.argument, Span(self.span.path, opener.line))
        while True:
            body, closer = self._sequence(depth + 1)
            branches.append((test, body))
            if closer is None:
                raise self._error(opener, "{% if %} on tokeffc values is never closed", "add {% endif %}")
            if closer.kind == "endif":
                return Cond(tuple(branches))
            test = None if closer.kind == "else" else parse_condition(closer.argument,
                                                                      Span(self.span.path, closer.line))

    def _text_until(self, end: int, nodes: list[Node]) -> None:
        if end > self.position:
            nodes.append(self.body[self.position:end])
        self.position = max(self.position, end)

    def _error(self, tag: _Tag, message: str, hint: str) -> TokeffcError:
        return TokeffcError(message, Span(self.span.path, tag.line), hint)


# --- expressions -----------------------------------------------------------------------------

_ALLOWED_OPERATORS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
                      "in": lambda a, b: a in b, "notin": lambda a, b: a not in b}
_EXPRESSION_HINT = ("compare tokeffc.tier, .command, .framework or .version with a quoted value using "
                    "== != in 'not in', and combine with and, or, not")


@dataclass(frozen=True, slots=True)
class Compare:
    left: Any
    operations: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # and | or | not
    operands: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Value:
    name: str  # a tokeffc value


def parse_condition(source: str, where: Span) -> Any:
    """Parse an ``if`` expression with Jinja2's parser, keeping only the whitelisted forms."""
    import jinja2
    from jinja2 import nodes

    try:
        tree = jinja2.Environment().parse("{% if " + source + " %}{% endif %}")
    except jinja2.TemplateSyntaxError as exc:
        raise TokeffcError(f"tokeffc condition '{source}': {exc.message}", where, _EXPRESSION_HINT) from None
    condition = tree.body[0]
    if not isinstance(condition, nodes.If):
        raise TokeffcError(f"tokeffc condition '{source}' is not an expression", where, _EXPRESSION_HINT)
    return _convert(condition.test, source, where, 0)


def _convert(node: Any, source: str, where: Span, depth: int) -> Any:
    from jinja2 import nodes

    if depth > MAX_NESTING:
        raise TokeffcError("tokeffc condition nests too deeply", where, _EXPRESSION_HINT)
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name == "tokeffc" \
            and node.attr in VARIABLES:
        return Value(node.attr)
    if isinstance(node, nodes.Const) and isinstance(node.value, (str, int, bool)) or \
            isinstance(node, nodes.Const) and node.value is None:
        return node.value
    if isinstance(node, (nodes.Tuple, nodes.List)):
        return tuple(_convert(item, source, where, depth + 1) for item in node.items)
    if isinstance(node, nodes.Compare) and all(op.op in _ALLOWED_OPERATORS for op in node.ops):
        return Compare(_convert(node.expr, source, where, depth + 1),
                       tuple((op.op, _convert(op.expr, source, where, depth + 1)) for op in node.ops))
    if isinstance(node, (nodes.And, nodes.Or)):
        return Logic(type(node).__name__.lower(), (_convert(node.left, source, where, depth + 1),
                                                    _convert(node.right, source, where, depth + 1)))
    if isinstance(node, nodes.Not):
        return Logic("not", (_convert(node.node, source, where, depth + 1),))
    raise TokeffcError(f"tokeffc condition '{source}' uses something tokeffc does not evaluate", where,
                       _EXPRESSION_HINT)


def evaluate(expression: Any, context: TemplateContext) -> Any:
    if isinstance(expression, Value):
        return context.value(expression.name)
    if isinstance(expression, tuple):
        return tuple(evaluate(item, context) for item in expression)
    if isinstance(expression, Compare):
        left = evaluate(expression.left, context)
        for op, right_expression in expression.operations:
            right = evaluate(right_expression, context)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    if isinstance(expression, Logic):
        values = [_truthy(evaluate(operand, context)) for operand in expression.operands]
        return {"and": all, "or": any}.get(expression.op, lambda v: not v[0])(values)
    return expression


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("in", "notin") and not isinstance(right, (tuple, str)):
        return op == "notin"
    try:
        return bool(_ALLOWED_OPERATORS[op](left, right))
    except TypeError:  # "a" in 3 and the like: not true
        return op == "notin"


def _truthy(value: Any) -> bool:
    return bool(value)
