"""Parse: front matter as the host reads it, tokeffc's key, rules, references with their lines."""

import pytest
from conftest import MINI_CONFIG

from tokeffc.config import load_config
from tokeffc.errors import Problems, TokeffcError
from tokeffc.parse import parse_document, parse_documents
from tokeffc.sources import SourceFile


def parse(text, config, role="module", path="modules/x.md"):
    return parse_document(SourceFile(path, role, "x", text, "0" * 64), config)


@pytest.fixture
def config(mini):
    return load_config(mini({}))


def test_tokeffc_key_and_references_carry_lines(config):
    doc = parse("---\ntokeffc:\n  id: q/gates\n  tier: standard\n  load: on_demand\n  when: TDD\n"
                "  requires: [a, {module: b, load: lazy}]\ndescription: kept\n---\n\n# Body\n"
                "{% include \"modules/c.md\" %}\n@d.md\n`@e.md`\n```\n@f.md\n```\n"
                "- @g.md (the workflow)\nFollow @h.md end-to-end.\n", config)
    assert (doc.id, doc.tier, doc.load, doc.when) == ("q/gates", "standard", "on_demand", "TDD")
    assert doc.meta == (("description", "kept"),)
    refs = [(r.kind, r.written, r.load, r.span.line) for r in doc.references]
    assert refs == [("requires", "a", None, 7), ("requires", "b", "lazy", 7), ("include", "modules/c.md", None, 12),
                    ("import", "d.md", None, 13), ("attach", "g.md", None, 18), ("attach", "h.md", None, 19)]
    assert doc.text == doc.head + doc.body and doc.body.startswith("# Body")
    assert doc.kept_head == "---\ndescription: kept\n---\n\n"  # the file's own front matter, without tokeffc's


def test_the_frameworks_own_keys_are_not_tokeffcs(config):
    """A template whose front matter is content (its own requires:) is the framework's business."""
    doc = parse("---\nrequires: [story]\ntier: gold\nload: later\n---\nTemplate body\n", config)
    assert dict(doc.meta) == {"requires": ["story"], "tier": "gold", "load": "later"}
    assert doc.references == () and doc.tier == "minimal" and doc.load == "immediate"
    assert doc.kept_head == doc.head


def test_front_matter_the_host_reads_leniently(config):
    """Claude Code accepts an agent description full of colons; tokeffc reads it as Claude Code does."""
    text = ("---\nname: reviewer\ndescription: Use this agent when code needs review. Examples: <example>user: "
            "review it</example>\ntools: Read, Grep\n---\nYou review code.\n")
    doc = parse(text, config, role="agent", path="agents/reviewer.md")
    assert dict(doc.meta)["description"].startswith("Use this agent when") and doc.kept_head == ""
    assert doc.warnings == ()


def test_unreadable_front_matter_keeps_the_file_as_text_with_a_warning(config):
    doc = parse("---\nid: a\nrequires: [b\nnot a key at all\n---\nbody\n", config)
    assert doc.head == "" and doc.body.startswith("---\nid: a") and doc.meta == ()
    assert len(doc.warnings) == 1 and "modules/x.md:3: invalid YAML front matter" in doc.warnings[0].one_line()


def test_front_matter_never_closed_is_text_with_a_warning(config):
    doc = parse("---\ntitle: x\nbody without a closing line\n", config)
    assert doc.body.startswith("---") and "never closed" in doc.warnings[0].message


def test_unknown_tier_suggests_the_closest(config):
    with pytest.raises(TokeffcError, match=r"modules/x.md:3: unknown tier 'standrd'; did you mean 'standard'\?"):
        parse("---\ntokeffc:\n  tier: standrd\n---\nx\n", config)


def test_unknown_tokeffc_key_suggests_the_closest(config):
    with pytest.raises(TokeffcError, match=r"modules/x.md:3: unknown key 'tokeffc.requries'; did you mean"):
        parse("---\ntokeffc:\n  requries: [a]\n---\nx\n", config)


def test_bad_load_and_requires_are_refused(config):
    with pytest.raises(TokeffcError, match="unknown load 'sometimes'"):
        parse("---\ntokeffc: {load: sometimes}\n---\nx\n", config)
    with pytest.raises(TokeffcError, match="bad requires entry"):
        parse("---\ntokeffc: {requires: [{mod: a}]}\n---\nx\n", config)


def test_every_document_problem_is_reported_in_one_run(config):
    sources = tuple(SourceFile(f"modules/{n}.md", "module", n, f"---\ntokeffc: {{tier: nope{n}}}\n---\nx\n",
                               "0" * 64) for n in "abc")
    with pytest.raises(Problems) as caught:
        parse_documents(sources, config)
    assert [line.split(":")[0] for line in caught.value.lines()] == ["modules/a.md", "modules/b.md", "modules/c.md"]


def test_command_budget_per_tier(config):
    doc = parse("---\ntokeffc: {budget: {minimal: 500}}\n---\nx\n", config, role="command")
    assert doc.budget_for("minimal") == 500 and doc.budget_for("full") is None


def test_rules_say_what_front_matter_would(mini):
    config = load_config(mini({"tokeffc.yaml": MINI_CONFIG + "rules:\n  - match: 'skills/*/SKILL.md'\n"
                                               "    load: on_demand\n    role: skill\n"
                                               "    when: {front_matter: description}\n"}))
    doc = parse("---\nname: tdd\ndescription: Use before writing code\n---\nBody\n", config,
                path="skills/tdd/SKILL.md")
    assert (doc.role, doc.load, doc.when) == ("skill", "on_demand", "Use before writing code")
    own = parse("---\ndescription: d\ntokeffc: {load: immediate}\n---\nBody\n", config, path="skills/a/SKILL.md")
    assert own.load == "immediate"  # the file's own key wins over its rule


def test_declared_dependency_lists_in_fenced_yaml(config):
    doc = parse("# Agent\n\n```yaml\nagent: {name: Dev}\ndependencies:\n  tasks:\n    - build.md\n"
                "    - review # a comment\n  templates: [story-tmpl.yaml]\n```\n\n```yaml\nnot: [valid\n```\n",
                config, role="command", path="agents/dev.md")
    declared = [(r.written, r.load, r.span.line) for r in doc.references if r.kind == "declared"]
    assert declared == [("tasks/build.md", "on_demand", 7), ("tasks/review", "on_demand", 8),
                        ("templates/story-tmpl.yaml", "on_demand", 9)]


def test_yaml_files_have_no_front_matter(config):
    doc = parse("---\ntemplate: {id: prd}\n---\nsections: []\n", config, path="templates/prd.yaml")
    assert doc.head == "" and doc.body.startswith("---\ntemplate") and doc.format == "yaml"


@pytest.mark.parametrize("bad", ["../../etc/x", "/abs", "a/../../b", "c:\\\\x", "a//b"])
def test_ids_must_stay_safe_relative_names(config, bad):
    with pytest.raises(TokeffcError, match="is not a safe relative name"):
        parse(f"---\ntokeffc:\n  id: \"{bad}\"\n---\nx\n", config, role="command")


def test_ids_may_hold_spaces_and_dots(config):
    assert parse("---\ntokeffc: {id: My Module v1.2}\n---\nx\n", config).id == "My Module v1.2"
