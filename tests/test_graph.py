"""The graph: references resolved as the host resolves them, run-time paths, missing files, cycles."""

import pytest
from conftest import EXAMPLE, MINI_CONFIG
from hypothesis import given
from hypothesis import strategies as st

from tokeffc.config import load_config
from tokeffc.errors import TokeffcError
from tokeffc.pipeline import load_framework


def framework(root):
    return load_framework(load_config(root))[0]


def edges(fw, source):
    return {(target, e.kind) for target, es in fw.edges_from(source) for e in es}


def test_example_graph_has_typed_edges_and_reports_unreached():
    fw = framework(EXAMPLE)
    kinds = {e.kind for _, _, data in fw.graph.edges(data=True) for e in data["edges"]}
    assert kinds == {"requires", "include", "import"}
    assert fw.graph.has_edge("CLAUDE.md", "modules/thinking/principles.md")  # through the alias
    assert fw.unreached == ("modules/perf/legacy-profiler.md",)


def test_imports_where_claude_code_follows_them(mini):
    root = mini({"commands/c.md": "# C\n\n- @../wf/main.md (main workflow)\n\nFollow @../wf/other.md end-to-end.\n"
                                  "`@../wf/code.md` and\n```\n@../wf/fenced.md\n```\nmail me@x.md\n",
                 "wf/main.md": "main\n", "wf/other.md": "other\n", "wf/code.md": "c\n", "wf/fenced.md": "f\n"})
    assert edges(framework(root), "commands/c.md") == {("wf/main.md", "attach"), ("wf/other.md", "attach")}


def test_cycle_prints_the_chain_with_lines(mini):
    root = mini({
        "commands/c.md": "---\ntokeffc: {requires: [a]}\n---\nc\n",
        "modules/a.md": "a\n{% include \"modules/b.md\" %}\n",
        "modules/b.md": "---\ntokeffc:\n  requires: [a]\n---\nb\n",
    })
    with pytest.raises(TokeffcError) as caught:
        framework(root)
    assert "dependency cycle: modules/a.md:2 -> modules/b.md:3 -> modules/a.md" in str(caught.value)


def test_missing_include_is_reported_where_it_is_written(mini):
    root = mini({"commands/c.md": "# C\n\n{% include \"modules/nope.md\" %}\n"})
    with pytest.raises(TokeffcError, match=r"commands/c.md:3: include 'modules/nope.md' not found"):
        framework(root)


def test_run_time_paths_stay_literal_and_are_listed(mini):
    root = mini({"tokeffc.yaml": MINI_CONFIG + "external: ['.planning/**']\n",
                 "commands/c.md": "Read the state:\n@.planning/STATE.md\n"})
    fw = framework(root)
    assert edges(fw, "commands/c.md") == set()
    assert [(u.written, str(u.span)) for u in fw.external] == [(".planning/STATE.md", "commands/c.md:2")]


def test_on_missing_warn_keeps_going_and_lists_each(mini):
    root = mini({"tokeffc.yaml": MINI_CONFIG + "on_missing: warn\n",
                 "commands/c.md": "@nope.md\n{% include \"gone.md\" %}\n"})
    fw = framework(root)
    assert [(u.written, u.span.line) for u in fw.missing] == [("gone.md", 2), ("nope.md", 1)]
    assert all("kept as written" in w.message for w in fw.warnings)


@pytest.mark.parametrize("line", ["@../../etc/passwd.md", "@/etc/passwd.md", "@~/secrets.md",
                                  "{% include \"../../outside.md\" %}"])
def test_references_cannot_leave_the_root(mini, line):
    root = mini({"commands/c.md": f"# C\n{line}\n"})
    with pytest.raises(TokeffcError, match=r"commands/c.md:2: .* escapes the framework root"):
        framework(root)


def test_file_reached_only_by_reference_becomes_a_module(mini):
    root = mini({"commands/c.md": "# C\n@../shared/snippet.md\n", "shared/snippet.md": "snippet\n"})
    fw = framework(root)
    assert fw.documents["shared/snippet.md"].role == "module"
    assert fw.graph.has_edge("commands/c.md", "shared/snippet.md")


def test_a_flattened_install_is_resolved_by_file_name(mini):
    root = mini({"tokeffc.yaml": MINI_CONFIG + "resolve_by_name: true\n",
                 "commands/c.md": "@FLAGS.md\n", "src/core/FLAGS.md": "flags\n"})
    assert edges(framework(root), "commands/c.md") == {("src/core/FLAGS.md", "import")}


def test_front_matter_fields_name_files_through_a_pattern(mini):
    root = mini({"tokeffc.yaml": MINI_CONFIG + "extractors:\n  - {kind: front_matter, field: personas, "
                                               "target: 'agents/*{name}*.md', load: immediate}\n",
                 "commands/c.md": "---\npersonas: [architect, nobody]\n---\nc\n",
                 "agents/system-architect.md": "a\n"})
    with pytest.raises(TokeffcError, match="front-matter reference 'agents/\\*nobody\\*.md' not found"):
        framework(root)


def test_duplicate_module_ids_are_refused(mini):
    root = mini({"modules/a.md": "a\n", "modules/b.md": "---\ntokeffc: {id: a}\n---\nb\n"})
    with pytest.raises(TokeffcError, match="module id 'a' is also used by modules/a.md"):
        framework(root)


def test_duplicate_command_ids_are_refused(mini):
    config = "name: m\nversion: 1.0.0\ncore: [CORE.md]\ncommands: ['a/commands/*.md', 'b/commands/*.md']\n"
    root = mini({"a/commands/x.md": "x\n", "b/commands/x.md": "x\n"}, config=config)
    with pytest.raises(TokeffcError, match="command id 'x' is also used by a/commands/x.md"):
        framework(root)


def test_every_reference_to_nothing_is_reported_in_one_run(mini):
    from tokeffc.errors import Problems

    root = mini({"commands/a.md": "@gone.md\n", "commands/b.md": "x\n{% include \"modules/nope.md\" %}\n"})
    with pytest.raises(Problems) as caught:
        framework(root)
    assert [line.split(": ")[0] for line in caught.value.lines()] == ["commands/a.md:1", "commands/b.md:2"]



def test_an_agents_fenced_yaml_is_read_once_for_its_dependencies_and_its_commands(mini, monkeypatch):
    from tokeffc import yamlio
    from tokeffc.entries import find_entries

    block = ("agent:\n  name: Pat\ncommands:\n  - draft: write it with draft-task\n"
             "dependencies:\n  tasks:\n    - draft-task.md\n")
    config = "name: mini\nversion: 1.0.0\ncore: [CORE.md]\ncommands: ['agents/*.md']\nsearch_paths: [.]\n" \
             "agent_commands: true\n"
    root = mini({"agents/pat.md": f"# Pat\n\n```yaml\n{block}```\n", "tasks/draft-task.md": "Draft.\n"}, config=config)
    real, reads = yamlio.read_yaml, []
    monkeypatch.setattr(yamlio, "read_yaml", lambda text, *a, **k: reads.append(text) or real(text, *a, **k))
    yamlio.try_read_yaml.cache_clear()
    entries, _ = find_entries(framework(root))
    assert "pat/draft" in {e.id for e in entries}
    assert reads == [block.rstrip("\n")]  # the fence's text, read by references.py; entries.py reuses it


_WORDS = st.text(alphabet="ab.-_ x", max_size=12)


@given(_WORDS, st.lists(st.text(alphabet="ab.-_x", min_size=1, max_size=4), min_size=1, max_size=3))
def test_an_agent_command_names_a_resource_as_one_pattern_does_as_each_name_did(description, names):
    import re

    from tokeffc.entries import _names_any

    each = any(re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", description) for name in names)
    assert _names_any(description, tuple(names)) == each
