"""Jinja2 in prompt bodies, in a sandbox: a framework's templates are not trusted code.

Prompt text is full of braces that are not Jinja (``{{project_name}}`` placeholders,
``${{ secrets.X }}``, code samples), so before compiling a body we set aside, as opaque
placeholders, all of it but the lines that hold Jinja tags, and on those lines every code span
and every ``{{ … }}`` that uses none of the compiler's variables. Jinja then parses only the tag
lines, which also keeps compiling cheap. Includes render to sentinels that the emitter later
replaces by the module's text or by a reference to it.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, field

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from .errors import Span, TokeffcError
from .markdown import INLINE_CODE, prose_and_code

CONTEXT_VARIABLES = ("tier", "command", "framework", "version")
JINJA_MARKERS = ("{{", "{%", "{#")
_EXPRESSION = re.compile(r"\{\{-?\s*([A-Za-z_]\w*)?.*?-?\}\}", re.S)
_COMMENT_OR_OPEN = re.compile(r"\{#.*?#\}|\{#", re.S)
_OPENER = re.compile(r"\{[{%#]")
_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
INCLUDE_SENTINEL = re.compile(r"\x00I([^\x00]*)\x00")
_TEMPLATE_NAME = "<template>"  # what Jinja calls a template made from a string, in tracebacks


@dataclass(frozen=True, slots=True)
class BodyTemplate:
    """A body ready to render per tier. ``is_template`` False means the body renders as itself."""

    body: str
    source: str  # the body with literals set aside
    literals: tuple[str, ...]
    includes: tuple[tuple[str, int], ...]  # (name as written, line in the file)
    variables: frozenset[str]
    is_template: bool
    span: Span  # the body's first line
    compiled: jinja2.Template | None = field(default=None, compare=False, repr=False)


def prepare_body(body: str, span: Span) -> BodyTemplate:
    """Protect literal braces, parse once, and list the includes with their lines."""
    source, literals = _protect_literals(body)
    if not any(marker in source for marker in JINJA_MARKERS):
        return BodyTemplate(body, body, (), (), frozenset(), False, span)
    env = _environment()
    try:
        tree = env.parse(source)
        compiled = env.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        raise TokeffcError(f"Jinja2 syntax: {exc.message}", _line(span, exc.lineno),
                           "fix the tag, or wrap literal braces in {% raw %}…{% endraw %}") from None
    includes = tuple(_includes(tree, span))
    # Plain text is set aside, so the source holds only tags: a word match is cheap and safe.
    variables = frozenset(v for v in CONTEXT_VARIABLES if re.search(rf"\b{v}\b", source))
    return BodyTemplate(body, source, tuple(literals), includes, variables, True, span, compiled)


def render_body(template: BodyTemplate, context: dict[str, str]) -> str:
    """Render for one tier/command; includes stay as sentinels for the emitter."""
    if not template.is_template:
        return template.body
    try:
        text = template.compiled.render(context)
    except jinja2.exceptions.SecurityError as exc:
        raise TokeffcError(f"template reaches outside the sandbox: {exc}", _error_line(template, exc),
                           "templates may use tier, command, framework and version only") from None
    except jinja2.TemplateError as exc:
        raise TokeffcError(f"Jinja2: {exc}", _error_line(template, exc),
                           f"templates may use {', '.join(CONTEXT_VARIABLES)}") from None
    return _restore_literals(text, template.literals)


def _restore_literals(text: str, literals: tuple[str, ...]) -> str:
    """Put set-aside text back. Placeholders are ``\\x00L<n><newlines>\\x00``; other ``\\x00`` pairs stay."""
    parts = text.split("\x00")
    for index in range(1, len(parts), 2):
        part = parts[index]
        parts[index] = literals[int(part[1:].rstrip("\n"))] if part[:1] == "L" else f"\x00{part}\x00"
    return "".join(parts)


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=_SentinelLoader(),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


class _SentinelLoader(jinja2.BaseLoader):
    """Every include renders as a sentinel naming it; the emitter resolves it."""

    def get_source(self, environment, template):
        return f"\x00I{template}\x00", None, lambda: True


def _protect_literals(body: str) -> tuple[str, list[str]]:
    """The body with everything but Jinja tag lines set aside as numbered placeholders.

    Fenced code and lines without Jinja markers are set aside whole; on tag lines, code spans
    and ``{{ … }}`` that use none of the compiler's variables are. Each placeholder keeps the
    newlines of what it replaces, so Jinja's line numbers and trim_blocks behave as before.
    """
    literals: list[str] = []

    def stash(text: str) -> str:
        literals.append(text)
        return f"\x00L{len(literals) - 1}" + "\n" * text.count("\n") + "\x00"

    if not any(marker in body for marker in JINJA_MARKERS):
        return body, literals
    out = []
    for is_code, chunk in prose_and_code(body):
        last = 0
        for start, end in ([] if is_code else _tag_regions(chunk)):
            if start > last:
                out.append(stash(chunk[last:start]))
            out.append(_protect_inline(chunk[start:end], stash))
            last = end
        if last < len(chunk):
            out.append(stash(chunk[last:]))
    return "".join(out), literals


def _tag_regions(text: str) -> list[tuple[int, int]]:
    """Whole-line ranges holding Jinja markers, widened so that a tag spanning lines stays whole."""
    regions: list[tuple[int, int]] = []
    for opener in _OPENER.finditer(text):
        close = text.find(_CLOSERS[opener.group()], opener.end())
        # An opener never closed (a stray "{#anchor}") is literal text on its own line.
        reach = opener.end() if close < 0 else close + 2
        if regions and opener.start() < regions[-1][1]:
            start, end = regions[-1]
            if reach <= end:
                continue
            regions.pop()
        else:
            start = text.rfind("\n", 0, opener.start()) + 1
        line_end = text.find("\n", reach)
        regions.append((start, len(text) if line_end < 0 else line_end + 1))
    return regions


def _protect_inline(text: str, stash) -> str:
    text = INLINE_CODE.sub(lambda m: stash(m.group(0)) if any(k in m.group(0) for k in JINJA_MARKERS)
                           else m.group(0), text)
    text = _EXPRESSION.sub(lambda m: m.group(0) if _is_jinja_expression(m) else stash(m.group(0)), text)
    return _COMMENT_OR_OPEN.sub(lambda m: m.group(0) if m.group(0) != "{#" else stash("{#"), text)


def _is_jinja_expression(match: re.Match) -> bool:
    """Ours if it uses a compiler variable; also if it pokes at internals, so the sandbox refuses it."""
    return match.group(1) in CONTEXT_VARIABLES or "__" in match.group(0) or "attr(" in match.group(0)


def _includes(tree: nodes.Template, span: Span):
    for node in tree.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
        if not isinstance(node, nodes.Include):
            raise TokeffcError(f"'{type(node).__name__.lower()}' is not supported in prompt bodies",
                               _line(span, node.lineno), "use {% include \"path.md\" %} or requires:")
        if not isinstance(node.template, nodes.Const) or not isinstance(node.template.value, str):
            raise TokeffcError("include needs a literal path", _line(span, node.lineno),
                               "write {% include \"modules/x.md\" %}")
        yield node.template.value, _line(span, node.lineno).line


def _line(span: Span, lineno: int | None) -> Span:
    return Span(span.path, span.line + (lineno or 1) - 1)


def _error_line(template: BodyTemplate, exc: Exception) -> Span:
    """Jinja rewrites tracebacks so template frames carry template line numbers."""
    lineno = getattr(exc, "lineno", None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _TEMPLATE_NAME:
            lineno = frame.lineno
    return _line(template.span, lineno)
