import pytest

from tokeffc.config import load_config
from tokeffc.errors import TokeffcError
from tokeffc.pipeline import load_framework

from conftest import EXAMPLE


def framework(root):
    return load_framework(load_config(root))


def test_example_graph_has_typed_edges_and_reports_unreached():
    fw = framework(EXAMPLE)
    kinds = {e.kind for _, _, data in fw.graph.edges(data=True) for e in data["edges"]}
    assert kinds == {"requires", "include", "import"}
    assert fw.graph.has_edge("CLAUDE.md", "modules/thinking/principles.md")  # through the alias
    assert fw.unreached == ("modules/perf/legacy-profiler.md",)


def test_cycle_prints_the_chain_with_lines(mini):
    root = mini({
        "commands/c.md": "---\nrequires: [a]\n---\nc\n",
        "modules/a.md": "a\n{% include \"modules/b.md\" %}\n",
        "modules/b.md": "---\nrequires: [a]\n---\nb\n",
    })
    with pytest.raises(TokeffcError) as caught:
        framework(root)
    message = str(caught.value)
    assert "dependency cycle: modules/a.md:2 -> modules/b.md:2 -> modules/a.md" in message


def test_missing_include_is_reported_where_it_is_written(mini):
    root = mini({"commands/c.md": "# C\n\n{% include \"modules/nope.md\" %}\n"})
    with pytest.raises(TokeffcError, match=r"commands/c.md:3: include 'modules/nope.md' not found"):
        framework(root)


@pytest.mark.parametrize("line", ["@../../etc/passwd.md", "@/etc/passwd.md", "@~/secrets.md",
                                  "{% include \"../../outside.md\" %}"])
def test_references_cannot_leave_the_root(mini, line):
    root = mini({"commands/c.md": f"# C\n{line}\n"})
    with pytest.raises(TokeffcError, match=r"commands/c.md:2: .* escapes the framework root"):
        framework(root)


def test_file_reached_only_by_reference_becomes_a_module(mini):
    root = mini({"commands/c.md": "# C\n@../shared/snippet.md\n", "shared/snippet.md": "snippet\n"})
    fw = framework(root)
    assert fw.documents["shared/snippet.md"].kind == "module"
    assert fw.graph.has_edge("commands/c.md", "shared/snippet.md")


def test_duplicate_module_ids_are_refused(mini):
    root = mini({"modules/a.md": "a\n", "modules/b.md": "---\nid: a\n---\nb\n"})
    with pytest.raises(TokeffcError, match="module id 'a' is also used by modules/a.md"):
        framework(root)


def test_duplicate_command_ids_are_refused(mini):
    config = "name: m\nversion: 1.0.0\ncore: [CORE.md]\ncommands: ['a/commands/*.md', 'b/commands/*.md']\n"
    root = mini({"a/commands/x.md": "x\n", "b/commands/x.md": "x\n"}, config=config)
    with pytest.raises(TokeffcError, match="command id 'x' is also used by a/commands/x.md"):
        framework(root)
