import pytest

from tokeffc.config import load_config
from tokeffc.errors import TokeffcError
from tokeffc.parse import parse_document
from tokeffc.sources import SourceFile


def parse(text, config, kind="module", path="modules/x.md"):
    return parse_document(SourceFile(path, kind, "x", text, "0" * 64), config)


@pytest.fixture
def config(mini):
    return load_config(mini({}))


def test_front_matter_and_references_carry_lines(config):
    doc = parse("---\nid: q/gates\ntier: standard\nload: on_demand\nwhen: TDD\n"
                "requires: [a, {module: b, load: lazy}]\ndescription: kept\n---\n\n# Body\n"
                "{% include \"modules/c.md\" %}\n@d.md\n`@e.md`\n```\n@f.md\n```\n", config)
    assert (doc.id, doc.tier, doc.load, doc.when) == ("q/gates", "standard", "on_demand", "TDD")
    assert doc.meta == (("description", "kept"),)
    refs = [(r.kind, r.written, r.load, r.span.line) for r in doc.references]
    assert refs == [("requires", "a", None, 6), ("requires", "b", "lazy", 6),
                    ("include", "modules/c.md", None, 11), ("import", "d.md", None, 12)]
    assert doc.text == doc.head + doc.body and doc.body.startswith("# Body")


def test_unknown_tier_suggests_the_closest(config):
    with pytest.raises(TokeffcError, match=r"modules/x.md:2: unknown tier 'standrd'; did you mean 'standard'\?"):
        parse("---\ntier: standrd\n---\nx\n", config)


def test_broken_front_matter_names_the_line(config):
    with pytest.raises(TokeffcError, match=r"modules/x.md:4: invalid YAML front matter"):
        parse("---\nid: a\nrequires: [b\nwhen: c\n---\nbody\n", config)


def test_bad_load_and_requires_are_refused(config):
    with pytest.raises(TokeffcError, match="unknown load 'sometimes'"):
        parse("---\nload: sometimes\n---\nx\n", config)
    with pytest.raises(TokeffcError, match="bad requires entry"):
        parse("---\nrequires: [{mod: a}]\n---\nx\n", config)


def test_command_budget_per_tier(config):
    doc = parse("---\nbudget: {minimal: 500}\n---\nx\n", config, kind="command")
    assert doc.budget_for("minimal") == 500 and doc.budget_for("full") is None


def test_declared_dependency_lists_in_fenced_yaml(config):
    doc = parse("# Agent\n\n```yaml\nagent: {name: Dev}\ndependencies:\n  tasks:\n    - build.md\n"
                "    - review # a comment\n  templates: [story-tmpl.yaml]\n```\n\n```yaml\nnot: [valid\n```\n",
                config, kind="command", path="agents/dev.md")
    declared = [(r.written, r.load, r.span.line) for r in doc.references if r.kind == "declared"]
    assert declared == [("tasks/build.md", "on_demand", 7), ("tasks/review", "on_demand", 8),
                        ("templates/story-tmpl.yaml", "on_demand", 9)]


def test_yaml_files_have_no_front_matter(config):
    doc = parse("---\ntemplate: {id: prd}\n---\nsections: []\n", config, path="templates/prd.yaml")
    assert doc.head == "" and doc.body.startswith("---\ntemplate")


@pytest.mark.parametrize("bad", ["../../etc/x", "/abs", "a/../../b", "c:\\\\x", "a//b"])
def test_ids_must_stay_safe_relative_names(config, bad):
    with pytest.raises(TokeffcError, match="is not a safe relative name"):
        parse(f"---\nid: \"{bad}\"\n---\nx\n", config, kind="command")


def test_ids_may_hold_spaces_and_dots(config):
    assert parse("---\nid: My Module v1.2\n---\nx\n", config).id == "My Module v1.2"
