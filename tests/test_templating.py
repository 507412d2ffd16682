import pytest

from tokeffc.errors import Span, TokeffcError
from tokeffc.templating import prepare_body, render_body

CONTEXT = {"tier": "minimal", "command": "task", "framework": "acme", "version": "1.0.0"}


def render(body, **context):
    return render_body(prepare_body(body, Span("a.md", 10)), {**CONTEXT, **context})


def test_plain_text_is_not_a_template():
    template = prepare_body("Hello {{project_name}}.\n", Span("a.md", 1))
    assert not template.is_template and render_body(template, CONTEXT) == "Hello {{project_name}}.\n"


def test_tier_conditional_text():
    body = "a\n{% if tier != \"minimal\" %}\nbig only\n{% endif %}\nb\n"
    assert render(body) == "a\nb\n"
    assert render(body, tier="full") == "a\nbig only\nb\n"


def test_foreign_braces_survive_rendering():
    body = ("{% if tier == 'minimal' %}\nx {{ tier }}\n{% endif %}\n{{project_name}} ${{ secrets.TOKEN }}\n"
            "`{% raw %}` and {#anchor}\n```\n{% not jinja %}\n```\n")
    assert render(body) == ("x minimal\n{{project_name}} ${{ secrets.TOKEN }}\n"
                            "`{% raw %}` and {#anchor}\n```\n{% not jinja %}\n```\n")


def test_includes_are_listed_with_file_lines():
    template = prepare_body("a\n\n{% include \"modules/x.md\" %}\n", Span("a.md", 10))
    assert template.includes == (("modules/x.md", 12),)


@pytest.mark.parametrize("body", [
    "{{ tier.__class__.__mro__ }}\n",
    "{% if tier %}\n{{ ''.__class__.__base__.__subclasses__() }}\n{% endif %}\n",
    "{{ cycler.__init__.__globals__ }}\n",
])
def test_sandbox_refuses_python_internals(body):
    with pytest.raises(TokeffcError, match=r"a.md:1\d: (template reaches outside the sandbox|Jinja2)"):
        render(body)


def test_syntax_error_names_the_line():
    with pytest.raises(TokeffcError, match=r"a.md:12: Jinja2 syntax"):  # where the template ends
        prepare_body("ok\n{% if tier %}\nnever closed\n", Span("a.md", 10))


def test_unknown_variable_is_an_error_not_empty_text():
    with pytest.raises(TokeffcError, match=r"a.md:11: Jinja2: 'feature_x' is undefined"):
        render("x\n{% if feature_x %}\ny\n{% endif %}\n")


def test_extends_is_refused():
    with pytest.raises(TokeffcError, match="'extends' is not supported"):
        prepare_body("{% extends 'base.md' %}\n", Span("a.md", 1))


def test_a_tag_spanning_lines_is_kept_whole():
    body = "a\n{% if tier ==\n   \"full\" %}\nbig\n{% endif %}\nb {{ tier }} c\n"
    assert render(body) == "a\nb minimal c\n"
    assert render(body, tier="full") == "a\nbig\nb full c\n"
