from tokeffc.config import load_config
from tokeffc.pipeline import load_framework
from tokeffc.rendering import Renderer
from tokeffc.selection import select_bundles

from conftest import EXAMPLE


def selections(root, counter):
    fw = load_framework(load_config(root))
    renderer = Renderer(fw, counter, ("normalise", "dedupe", "checkpoints"))
    return fw, {(fw.documents[s.command].id, s.tier): s for s in select_bundles(fw, renderer)}


def test_tier_prunes_modules_and_what_only_they_reach(mini, counter):
    root = mini({
        "commands/c.md": "---\nrequires: [base, big]\n---\nc\n",
        "modules/base.md": "base\n",
        "modules/big.md": "---\ntier: full\nrequires: [only-big]\n---\nbig\n",
        "modules/only-big.md": "only big\n",
    })
    _, found = selections(root, counter)
    assert found["c", "minimal"].sections == ("modules/base.md",)
    assert found["c", "minimal"].dropped == ("modules/big.md",)
    assert set(found["c", "full"].sections) == {"modules/base.md", "modules/big.md", "modules/only-big.md"}


def test_most_eager_load_wins_and_laziness_propagates(mini, counter):
    root = mini({
        "commands/c.md": "---\nrequires: [{module: x, load: lazy}, y, {module: d, load: on_demand}]\n---\nc\n",
        "modules/y.md": "---\nrequires: [x]\n---\ny\n",
        "modules/x.md": "x\n",
        "modules/d.md": "---\nrequires: [under-d]\n---\nd\n",
        "modules/under-d.md": "under d\n",
    })
    _, found = selections(root, counter)
    chosen = found["c", "minimal"]
    assert set(chosen.sections) == {"modules/x.md", "modules/y.md"}  # x: immediate through y beats lazy
    assert {(p.path, p.load) for p in chosen.chunks} == {("modules/d.md", "on_demand"),
                                                         ("modules/under-d.md", "on_demand")}


def test_command_tier_starts_its_bundles(counter):
    _, found = selections(EXAMPLE, counter)
    assert ("swarm", "minimal") not in found and ("swarm", "standard") in found


def test_sections_put_dependencies_first_then_the_most_shared(counter):
    fw, found = selections(EXAMPLE, counter)
    order = found["task", "minimal"].sections
    assert order.index("modules/errors/handling.md") < order.index("modules/quality/gates.md")
    shared_first = found["feature", "minimal"].sections
    assert shared_first[: len(order)] == order  # task's sections are a prefix of feature's


def test_tier_conditional_include_is_an_edge_only_where_rendered(mini, counter):
    root = mini({
        "commands/c.md": "c\n{% if tier == \"full\" %}\n{% include \"modules/x.md\" %}\n{% endif %}\n",
        "modules/x.md": "---\nload: on_demand\n---\nx\n",
    })
    _, found = selections(root, counter)
    assert found["c", "minimal"].chunks == ()
    assert [p.path for p in found["c", "full"].chunks] == ["modules/x.md"]
