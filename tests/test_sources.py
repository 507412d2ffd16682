"""Sources: one bounded walk, globs as a shell reads them, strict UTF-8, nothing outside the root."""

import os

import pytest

from tokeffc.config import load_config
from tokeffc.errors import Problems, TokeffcError
from tokeffc.globs import glob_regex
from tokeffc.sources import discover_sources, id_from_pattern, walk_tree


def sources(root):
    config = load_config(root)
    return discover_sources(config, walk_tree(config))


def test_ids_come_from_the_folders_the_glob_names():
    assert id_from_pattern("modules/quality/gates.md", "modules/**/*.md") == "quality/gates"
    assert id_from_pattern("commands/sc/task.md", "commands/**/*.md") == "sc/task"
    assert id_from_pattern("lib/x.md", "**/*.md") == "lib/x"
    assert id_from_pattern("SuperClaude/Commands/x.md", "**/[Cc]ommands/**/*.md") == "x"
    assert id_from_pattern("expansion-packs/p/agents/a.md", "expansion-packs/*/agents/*.md") == "p/agents/a"


@pytest.mark.parametrize("pattern, path, matches", [
    ("**/*.md", "a/b/c.md", True), ("**/*.md", ".claude/c.md", False), (".claude/**/*.md", ".claude/a/c.md", True),
    ("*.md", ".hidden.md", False), ("[a-c]*.md", "b.md", True), ("[!a]*.md", "a.md", False),
    ("skills/*/SKILL.md", "skills/x/SKILL.md", True), ("skills/*/SKILL.md", "skills/x/y/SKILL.md", False),
])
def test_globs(pattern, path, matches):
    assert bool(glob_regex(pattern).fullmatch(path)) == matches


def test_walk_is_sorted_core_first_and_skips_hidden(mini):
    root = mini({"commands/b.md": "b\n", "commands/a.md": "a\n", "modules/z.md": "z\n",
                 "modules/.drafts/x.md": "x\n"})
    found = sources(root)
    assert [s.path for s in found] == ["CORE.md", "commands/a.md", "commands/b.md", "modules/z.md"]
    assert [s.role for s in found] == ["core", "command", "command", "module"]


def test_release_folders_are_never_sources(mini):
    root = mini({"commands/a.md": "a\n", "modules/m.md": "m\n",
                 "modules/old/x/1.0.0/manifest.json": '{"schema": "tokeffc.manifest/2"}',
                 "modules/old/x/1.0.0/bundles/a/minimal.md": "stale\n", "modules/dist2/x-1.0.0.tokb": b"\x28"})
    assert [s.path for s in sources(root)] == ["CORE.md", "commands/a.md", "modules/m.md"]


def test_symlinked_folder_loops_are_not_followed(mini):
    root = mini({"commands/a.md": "a\n", "modules/m.md": "m\n"})
    os.symlink(root / "modules", root / "modules" / "loop")
    os.symlink(root, root / "modules" / "up")
    assert [s.path for s in sources(root)] == ["CORE.md", "commands/a.md", "modules/m.md"]


def test_bom_is_stripped(mini):
    root = mini({"commands/a.md": "\ufeff# A\n".encode("utf-8")})
    (source,) = [s for s in sources(root) if s.role == "command"]
    assert source.text == "# A\n"


@pytest.mark.parametrize("content, message", [
    (b"ok\n\xff\xfe bad\n", r"commands/a.md:2: not valid UTF-8"),
    (b"ok\nbin\x00ary\n", r"commands/a.md:2: binary file"),
])
def test_bad_bytes_name_file_and_line(mini, content, message):
    root = mini({"commands/a.md": content})
    with pytest.raises(TokeffcError, match=message):
        sources(root)


def test_every_unreadable_file_is_reported_at_once(mini):
    root = mini({"commands/a.md": b"\xff\n", "commands/b.md": b"\x00\n"})
    with pytest.raises(Problems) as caught:
        sources(root)
    assert len(caught.value.lines()) == 2


def test_huge_file_is_refused(mini):
    root = mini({"commands/a.md": "x" * 100}, config="name: m\nversion: 1.0.0\ncore: [CORE.md]\nmax_file_bytes: 50\n")
    with pytest.raises(TokeffcError, match=r"commands/a.md:1: file is .* over the .* limit"):
        sources(root)


def test_symlink_leaving_the_root_is_refused(mini, tmp_path):
    outside = tmp_path / "secret.md"
    outside.write_text("secret\n")
    root = mini({})
    (root / "modules").mkdir()
    os.symlink(outside, root / "modules" / "leak.md")
    with pytest.raises(TokeffcError, match="resolves outside the framework root"):
        sources(root)


def test_missing_core_file_points_at_config(mini):
    root = mini({}, config="name: m\nversion: 1.0.0\ncore: [NOPE.md]\n")
    with pytest.raises(TokeffcError, match=r"tokeffc.yaml:3: 'NOPE.md' matches no file"):
        sources(root)


def test_an_agent_is_known_by_its_file_name_unless_that_name_is_taken(tmp_path):
    from conftest import write_tree

    from tokeffc.pipeline import BuildOptions, compile_framework
    agent = "---\nname: {0}\ndescription: does {0}\n---\nYou are {0}.\n"
    root = write_tree(tmp_path / "fw", {
        "CLAUDE.md": "# P\n", "commands/review.md": "Review.\n",
        "core/agents/architect.md": agent.format("architect"),
        "core/agents/review.md": agent.format("review"),  # a command has that id
        "a/agents/tester.md": agent.format("tester"), "b/agents/tester.md": agent.format("tester")})
    result = compile_framework(root, BuildOptions(preset="claude-code"))
    ids = {e.path: e.id for e in result.entries if e.role == "agent"}
    assert ids["core/agents/architect.md"] == "architect"
    assert "/" in ids["core/agents/review.md"]  # by its path: the name is a command's id
    assert "/" in ids["a/agents/tester.md"] and "/" in ids["b/agents/tester.md"]  # two would take one name
