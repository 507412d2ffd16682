"""tokeffc's own tags only; every other brace is the framework's text; conditions are bounded."""

from dataclasses import replace

import pytest

from tokeffc.errors import Span, TokeffcError
from tokeffc.templating import TemplateContext, prepare_body, render_body

CONTEXT = TemplateContext(tier="minimal", command="task", framework="acme", version="1.0.0")


def render(body, **values):
    context = replace(CONTEXT, **values)
    return render_body(prepare_body(body, Span("a.md", 10)), context)


def test_plain_text_is_not_a_template():
    template = prepare_body("Hello {{project_name}}.\n", Span("a.md", 1))
    assert not template.is_template and render_body(template, CONTEXT) == "Hello {{project_name}}.\n"


def test_tier_conditional_text():
    body = "a\n{% if tokeffc.tier != \"minimal\" %}\nbig only\n{% endif %}\nb\n"
    assert render(body) == "a\nb\n"
    assert render(body, tier="full") == "a\nbig only\nb\n"


def test_elif_else_and_membership():
    body = ("{% if tokeffc.tier == 'full' %}\nF\n{% elif tokeffc.tier in ('standard', 'minimal') and "
            "not tokeffc.command == 'x' %}\nS\n{% else %}\nE\n{% endif %}\n")
    assert render(body) == "S\n" and render(body, tier="full") == "F\n" and render(body, command="x") == "E\n"


def test_the_frameworks_own_braces_are_text():
    """{{version}} is the framework's placeholder (the user's milestone), not tokeffc's version."""
    body = ("Mark milestone {{version}} complete; tag v{{ version }}.\n{% if user %}\nx {{ tier }}\n{% endif %}\n"
            "{{project_name}} ${{ secrets.TOKEN }} {# note #} {% for s in steps %}{{ s }}{% endfor %}\n"
            "{% include some_variable %}\n```\n{% include \"modules/x.md\" %}\n```\n"
            "tokeffc {{ tokeffc.version }} for {{ tokeffc.framework }}\n")
    expected = body.replace("{{ tokeffc.version }}", "1.0.0").replace("{{ tokeffc.framework }}", "acme")
    assert render(body) == expected


def test_a_code_span_that_wraps_a_line_is_text():
    body = "Use `{% generation %}...\n{% endgeneration %}` around the output.\n"
    template = prepare_body(body, Span("a.md", 1))
    assert not template.is_template and render(body) == body


def test_includes_are_listed_with_file_lines():
    template = prepare_body("a\n\n{% include \"modules/x.md\" %}\n", Span("a.md", 10))
    assert template.includes == (("modules/x.md", 12),)


def test_include_must_stand_on_its_own_line():
    with pytest.raises(TokeffcError, match=r"a.md:1: \{% include %\} must stand on a line of its own"):
        prepare_body("see {% include \"x.md\" %} here\n", Span("a.md", 1))


@pytest.mark.parametrize("condition", [
    "tokeffc.tier.__class__", "tokeffc.tier * 200000000", "tokeffc.tier + 1", "range(10**9) or tokeffc.tier",
    "tokeffc.tier | truncate(-1)", "9 ** (9 ** 9) and tokeffc.tier", "tokeffc.nope == 1",
    "tokeffc.tier == other",
])
def test_conditions_outside_the_whitelist_are_refused_at_their_line(condition):
    with pytest.raises(TokeffcError, match=r"a.md:11: tokeffc condition .* (does not evaluate|not an)"):
        prepare_body(f"x\n{{% if {condition} %}}\ny\n{{% endif %}}\n", Span("a.md", 10))


def test_a_condition_that_is_not_tokeffcs_is_text_even_when_hostile():
    body = "{% if range(10**9) %}\n{{ ''.__class__.__mro__ }}\n{% endif %}\n"
    assert render(body) == body


def test_unknown_tokeffc_value_is_an_error():
    with pytest.raises(TokeffcError, match=r"a.md:11: \{\{ tokeffc.feature \}\} is not a tokeffc value"):
        prepare_body("x\n{{ tokeffc.feature }}\n", Span("a.md", 10))


def test_unclosed_condition_names_its_line():
    with pytest.raises(TokeffcError, match=r"a.md:11: \{% if %\} on tokeffc values is never closed"):
        prepare_body("ok\n{% if tokeffc.tier == 'full' %}\nnever closed\n", Span("a.md", 10))


def test_syntax_error_names_the_line():
    with pytest.raises(TokeffcError, match=r"a.md:11: tokeffc condition 'tokeffc.tier ==': "):
        prepare_body("ok\n{% if tokeffc.tier == %}\nx\n{% endif %}\n", Span("a.md", 10))


def test_a_tag_spanning_lines_is_kept_whole():
    body = "a\n{% if tokeffc.tier ==\n   \"full\" %}\nbig\n{% endif %}\nb {{ tokeffc.tier }} c\n"
    assert render(body) == "a\nb minimal c\n"
    assert render(body, tier="full") == "a\nbig\nb full c\n"


def test_templating_off_keeps_every_tag():
    body = "{% if tokeffc.tier == 'full' %}\nx\n{% endif %}\n"
    assert render_body(prepare_body(body, Span("a.md", 1), enabled=False), CONTEXT) == body
