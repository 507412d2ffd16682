"""Selection: what each bundle holds per tier, how loads combine, and the order of sections."""

from conftest import EXAMPLE

from tokeffc.pipeline import compile_framework


def selections(root):
    result = compile_framework(root)
    return {(b.entry, b.tier): b.selection for b in result.bundles}


def test_tier_prunes_modules_and_what_only_they_reach(mini):
    root = mini({
        "commands/c.md": "---\ntokeffc: {requires: [base, big]}\n---\nc\n",
        "modules/base.md": "base\n",
        "modules/big.md": "---\ntokeffc: {tier: full, requires: [only-big]}\n---\nbig\n",
        "modules/only-big.md": "only big\n",
    })
    found = selections(root)
    assert found["c", "minimal"].sections == ("modules/base.md",)
    assert [d.path for d in found["c", "minimal"].dropped] == ["modules/big.md"]
    assert set(found["c", "full"].sections) == {"modules/base.md", "modules/big.md", "modules/only-big.md"}


def test_most_eager_load_wins_and_laziness_propagates(mini):
    root = mini({
        "commands/c.md": "---\ntokeffc:\n  requires: [{module: x, load: lazy}, y, {module: d, load: on_demand}]\n"
                         "---\nc\n",
        "modules/y.md": "---\ntokeffc: {requires: [x]}\n---\ny\n",
        "modules/x.md": "x\n",
        "modules/d.md": "---\ntokeffc: {requires: [under-d]}\n---\nd\n",
        "modules/under-d.md": "under d\n",
    })
    chosen = selections(root)["c", "minimal"]
    assert set(chosen.sections) == {"modules/x.md", "modules/y.md"}  # x: immediate through y beats lazy
    assert {(p.path, p.load) for p in chosen.chunks} == {("modules/d.md", "on_demand"),
                                                         ("modules/under-d.md", "on_demand")}


def test_command_tier_starts_its_bundles():
    found = selections(EXAMPLE)
    assert ("swarm", "minimal") not in found and ("swarm", "standard") in found


def test_sections_put_dependencies_first_then_the_most_shared():
    found = selections(EXAMPLE)
    order = found["task", "minimal"].sections
    assert order.index("modules/errors/handling.md") < order.index("modules/quality/gates.md")
    shared_first = found["feature", "minimal"].sections
    assert shared_first[: len(order)] == order  # task's sections are a prefix of feature's


def test_tier_conditional_include_is_an_edge_only_where_rendered(mini):
    root = mini({
        "commands/c.md": "c\n{% if tokeffc.tier == \"full\" %}\n{% include \"modules/x.md\" %}\n{% endif %}\n",
        "modules/x.md": "---\ntokeffc: {load: on_demand}\n---\nx\n",
    })
    found = selections(root)
    assert found["c", "minimal"].chunks == ()
    assert [p.path for p in found["c", "full"].chunks] == ["modules/x.md"]


def test_soft_references_offer_a_chunk_and_a_chunk_lists_its_own(mini):
    root = mini({
        "tokeffc.yaml": "name: mini\nversion: 1.0.0\ncore: [CORE.md]\nextractors: [{kind: prose_paths}]\n",
        "commands/c.md": "See `modules/guide.md` when stuck.\n",
        "modules/guide.md": "# Guide\n\nMore in `modules/deep.md`.\n",
        "modules/deep.md": "Deep detail.\n",
    })
    result = compile_framework(root)
    bundle = next(b for b in result.bundles if b.tier == "minimal")
    assert {(p.path, p.soft) for p in bundle.selection.chunks} == {("modules/guide.md", True),
                                                                   ("modules/deep.md", True)}
    text = bundle.content.data.decode()
    assert "See `modules/guide.md` when stuck." in text and "`guide` (module" in text and "`deep`" not in text
    guide = next(c for p, c in bundle.chunks if c.id == "guide")
    assert "`deep` (module" in guide.content.data.decode()  # the chunk offers what it names


def test_a_rule_with_paths_is_offered_in_every_bundle_and_reached(tmp_path):
    from conftest import write_tree

    from tokeffc.pipeline import BuildOptions
    root = write_tree(tmp_path / "fw", {
        "CLAUDE.md": "# Project\n",
        ".claude/commands/fix.md": "Fix the bug.\n",
        ".claude/commands/ship.md": "Ship it.\n",
        ".claude/rules/api.md": "---\npaths: ['src/api/**']\n---\nValidate every request.\n",
        ".claude/rules/style.md": "Use tabs.\n"})
    result = compile_framework(root, BuildOptions(preset="claude-code"))
    for bundle in result.manifest.bundles:
        chunks = {c.id for c in bundle.chunks}
        assert "rules/api" in chunks, bundle.command  # read when the model touches src/api, any command
        assert "rules/style" not in chunks  # always loaded: in the bundle's text
    assert ".claude/rules/api.md" not in {str(p) for p in result.framework.unreached}
