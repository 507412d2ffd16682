"""The Claude Code target: a CLAUDE.md and .claude/ tree Claude Code uses as it is, installed into a project
without touching a file tokeffc did not write; checked on the example, the fixtures and every corpus."""

import json
import re
import shutil

import pytest
import yaml
from click.testing import CliRunner
from conftest import CORPORA, EXAMPLE, FIXTURES, write_tree
from fidelity import Held, check_installed
from helpers import reference_count
from hypothesis import given
from hypothesis import strategies as st

from tokeffc.cli import main
from tokeffc.errors import OutputError
from tokeffc.pipeline import BuildOptions
from tokeffc.references import find_mentions
from tokeffc.targets.claude_code import (
    InstallOptions,
    host_head,
    install_claude_code,
    plan_claude_code,
    without_our_key,
)
from tokeffc.targets.ledger import LEDGER, apply_changes, plan_changes

FAITHFUL = FIXTURES / "faithful"
ROW = re.compile(r"^- `([^`]+)` \([\w-]+, (\d+) tokens(?:, only if needed)?\): ", re.M)
CORPUS_CASES = {"bmad": BuildOptions(preset="bmad"), "superclaude": BuildOptions(preset="claude-code"),
                "superpowers": BuildOptions(preset="claude-plugin"),
                "superclaude-trimmed": BuildOptions(config_path=FIXTURES / "corpora" / "superclaude.tokeffc.yaml")}
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason="shared corpora not present")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def install(root, project, **options):
    return install_claude_code(root, InstallOptions(into=project, **options))


def check_tree(installed, project, users=()):
    """Everything a user can see in the tree: files, counts, front matter, index paths, @ mentions, fidelity.
    ``users``: the project's own files, which the install must leave as they are."""
    layout = installed.layout
    files = {f.path: f for f in layout.files}
    on_disk = snapshot(project)
    assert {p: d for p, d in on_disk.items() if p != LEDGER and p not in users} == {p: f.data for p, f in files.items()}
    assert json.loads(on_disk[LEDGER])["files"].keys() == files.keys()
    for file in layout.files:
        assert file.tokens == reference_count(file.data), file.path  # exact, as written
    _check_front_matter(layout)
    _check_index_paths(layout, on_disk)
    _check_no_second_import(layout)
    _check_fidelity(installed, on_disk)


def _check_front_matter(layout):
    """Each entry's file begins with its source's front matter: the same keys in the same order, no tokeffc."""
    documents = {d.id: d for d in layout.result.framework.documents.values()}
    for file in layout.files:
        if file.head is None:
            continue
        text = file.data.decode()
        assert text.startswith("---\n"), file.path
        written = yaml.safe_load(text.split("---\n", 2)[1])
        source = dict(documents[file.head].meta)
        assert "tokeffc" not in written and written == source, file.path
        original = yaml.safe_load((layout.result.framework.config.root / documents[file.head].path)
                                  .read_text(encoding="utf-8").split("---\n", 2)[1])
        assert list(written) == [k for k in original if k != "tokeffc"], file.path  # the source's order


def _check_index_paths(layout, on_disk):
    """Every path an index names exists and holds that module: its text (after a skill's front matter) counts
    what the row says."""
    by_path = {f.path: f for f in layout.files}
    rows = 0
    for file in layout.files:
        for path, tokens in ROW.findall(file.data.decode()):
            rows += 1
            assert path in on_disk, (file.path, path)
            target = by_path[path]
            body = target.data[len(host_head(_document(layout, target.head)).encode()):] if target.head else target.data
            own = body.split(b"\n## Modules on request\n")[0]  # a module's own text, before what it offers in turn
            counts = (reference_count(body), reference_count(own.rstrip(b"\n") + b"\n"))
            assert int(tokens) in counts, (file.path, path)  # a chunk's index gives its modules' own size
            assert target.sources[0] == target.name and target.kind in ("chunk", "skill")
    return rows


def _document(layout, doc_id):
    return next(d for d in layout.result.framework.documents.values() if d.id == doc_id)


def _check_no_second_import(layout):
    """An @ mention left in any file names a run-time file or nothing, never a file tokeffc placed."""
    manifest = layout.result.manifest
    kept = {r.written for r in (*manifest.external, *manifest.missing)}
    for file in layout.files:
        if file.path.endswith(".md"):
            left = {m.written for m in find_mentions(file.data.decode())}
            assert left <= kept, (file.path, left - kept)


def _check_fidelity(installed, on_disk):
    layout = installed.layout
    after = "CLAUDE.md" if "CLAUDE.md" in on_disk else None
    holds = {f.path: Held(f.sources, f.tier, f.name if f.kind != "chunk" else "", f.head,
                          after if f.kind in ("command", "agent") else None) for f in layout.files}
    headings = layout.result.framework.config.reasoning_headings
    problems = check_installed(layout.result.framework.config.root, layout.result.release.manifest_bytes, on_disk,
                               holds, headings)
    assert problems == []


# --- the example ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    project = tmp_path_factory.mktemp("project")
    result = run("build", EXAMPLE, "--target", "claude-code", "--into", project, "--json")
    assert result.exit_code == 0, result.output
    return project, json.loads(result.stdout), install(EXAMPLE, project)


def test_the_example_installs_as_claude_code_reads_it(forge):
    project, report, installed = forge
    check_tree(installed, project)
    assert installed.layout.tiers == ("standard",)  # swarm's smallest tier: the smallest every command has
    assert sorted(p.relative_to(project).as_posix() for p in (project / ".claude/commands").iterdir()) == [
        f".claude/commands/{c}.md" for c in ("feature", "meta", "protocol", "query", "swarm", "task")]
    task = (project / ".claude/commands/task.md").read_text()
    assert task.startswith('---\ndescription: Carry out a scoped engineering task end to end\nargument-hint: '
                           '"<what to do>"\nallowed-tools: [Read, Edit, Bash, Grep]\n---\n')
    assert "- `.claude/tokeffc/api.md` (module, 169 tokens): the work adds or changes" in task  # by its short name
    assert task.rstrip().endswith("Wait for the owner to pick one.")  # the command's own text last


def test_claude_md_holds_only_what_every_session_loads(forge):
    project, report, installed = forge
    claude_md = (project / "CLAUDE.md").read_text()
    assert claude_md.startswith("# Forge\n") and "## Thinking principles" in claude_md  # its @ import, inlined
    assert "# /task" not in claude_md and "Modules on request" not in claude_md
    for command in (project / ".claude/commands").iterdir():
        text = command.read_text()
        assert "You are Forge" not in text and "## Thinking principles" not in text  # never loaded twice
    session = installed.layout.session
    assert report["session_start"] == {"claude_md": reference_count(claude_md.encode()), "listing": 0,
                                       "tokens": session.tokens, "baseline": session.baseline}
    assert session.baseline == 381  # CLAUDE.md and the file its @ imports, as written


def test_the_json_report_gives_exact_counts_per_file(forge):
    project, report, _ = forge
    assert report["schema"] == "tokeffc.install-report/1" and report["target"] == "claude-code"
    assert report["status"] == "ok" and report["tiers"] == ["standard"]
    for file in report["files"]:
        assert file["tokens"] == reference_count((project / file["path"]).read_bytes())
    assert sorted(report["changes"]["written"]) == sorted([f["path"] for f in report["files"]] + [LEDGER])


def test_a_second_install_of_the_same_sources_changes_nothing(forge):
    project, _, installed = forge
    before = snapshot(project)
    again = install(EXAMPLE, project)
    assert again.changes.write == () and again.changes.remove == ()
    assert len(again.changes.unchanged) == len(installed.layout.files) and snapshot(project) == before


def test_other_tiers_install_as_commands_of_their_own(tmp_path):
    installed = install(EXAMPLE, tmp_path, all_tiers=True)
    check_tree(installed, tmp_path)
    commands = {f.path: f.tier for f in installed.layout.files if f.kind == "command"}
    assert commands[".claude/commands/task.md"] == "standard"
    assert commands[".claude/commands/task-minimal.md"] == "minimal"
    assert commands[".claude/commands/task-full.md"] == "full"
    assert ".claude/commands/swarm-minimal.md" not in commands  # swarm starts at standard
    full = (tmp_path / ".claude/commands/task-full.md").read_text()
    assert "`.claude/tokeffc/full/api.md`" in full and (tmp_path / ".claude/tokeffc/full/api.md").is_file()
    (tmp_path / "other").mkdir()
    first = install(EXAMPLE, tmp_path / "other", tiers=("full", "minimal"))
    assert first.layout.tiers == ("full", "minimal")
    assert {f.path for f in first.layout.files if f.kind == "command"} >= {".claude/commands/task.md",
                                                                           ".claude/commands/task-minimal.md"}


# --- installing again into a project -------------------------------------------------------------

@pytest.fixture
def framework(tmp_path):
    """A copy of the example that a test may change."""
    root = tmp_path / "forge"
    shutil.copytree(EXAMPLE, root)
    return root


def test_a_reinstall_removes_stale_files_and_never_touches_the_users(framework, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    install(framework, project)
    users = {".claude/commands/mine.md": "my own command\n", ".claude/tokeffc/notes.md": "mine\n",
             "README.md": "my project\n"}
    write_tree(project, users)
    (framework / "commands/query.md").unlink()
    gates = framework / "modules/quality/gates.md"
    gates.write_text(gates.read_text().replace("A change is done when", "A change is finished when"))
    again = install(framework, project)
    assert ".claude/commands/query.md" in again.changes.remove and not (project / ".claude/commands/query.md").exists()
    assert (project / ".claude/commands/mine.md").read_text() == "my own command\n"
    assert (project / ".claude/tokeffc/notes.md").read_text() == "mine\n"
    assert (project / "README.md").read_text() == "my project\n"
    assert "A change is finished when" in (project / ".claude/commands/task.md").read_text()
    assert ".claude/commands/query.md" not in json.loads((project / LEDGER).read_text())["files"]
    check_tree(again, project, users)


def test_a_file_the_user_edited_is_refused_and_nothing_changes(framework, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    install(framework, project)
    task = project / ".claude/commands/task.md"
    task.write_text(task.read_text() + "\nMy own note.\n")
    (framework / "commands/query.md").write_text("# /query\n\nAnswer briefly.\n")
    before = snapshot(project)
    result = run("build", framework, "--target", "claude-code", "--into", project)
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        f"error: {task}: 'task.md' changed since tokeffc wrote it; tokeffc never overwrites or removes an edited "
        "file: keep your edit elsewhere, delete the file, and install again"]
    assert snapshot(project) == before


def test_a_stale_file_the_user_edited_is_not_removed(framework, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    install(framework, project)
    query = project / ".claude/commands/query.md"
    query.write_text("edited\n")
    (framework / "commands/query.md").unlink()
    result = run("build", framework, "--target", "claude-code", "--into", project)
    assert result.exit_code == 3 and f"{query}: 'query.md' changed since tokeffc wrote it" in result.stderr
    assert query.read_text() == "edited\n"


def test_a_file_tokeffc_did_not_write_is_refused(tmp_path):
    write_tree(tmp_path, {"CLAUDE.md": "# My project\n", ".claude/commands/task.md": "my task\n"})
    before = snapshot(tmp_path)
    result = run("build", EXAMPLE, "--target", "claude-code", "--into", tmp_path)
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {tmp_path / '.claude/commands/task.md'}: 'task.md' exists and tokeffc did not write "
                     "it; move it away, or install into another folder with --into",
                     f"error: {tmp_path / 'CLAUDE.md'}: 'CLAUDE.md' exists and tokeffc did not write it; Claude Code "
                     "also loads .claude/CLAUDE.md and CLAUDE.local.md: move your own text there, or install into "
                     "another folder with --into"]
    assert snapshot(tmp_path) == before


def test_another_framework_replaces_the_first(tmp_path):
    install(EXAMPLE, tmp_path)
    result = run("build", FAITHFUL, "--target", "claude-code", "--into", tmp_path)
    assert result.exit_code == 0 and "replaced the install of forge 2.3.0" in result.stdout
    assert not (tmp_path / ".claude/commands/task.md").exists() and (tmp_path / ".claude/commands/ask.md").is_file()
    assert json.loads((tmp_path / LEDGER).read_text())["owner"] == "faithful 9.9.9"


def test_a_damaged_ledger_is_refused(tmp_path):
    install(EXAMPLE, tmp_path)
    (tmp_path / LEDGER).write_text('{"schema": "tokeffc.ledger/1", "owner": "x", "files": {"../../etc/passwd": "0"}}')
    result = run("build", EXAMPLE, "--target", "claude-code", "--into", tmp_path)
    assert result.exit_code == 3 and "the install ledger is damaged (bad entry '../../etc/passwd')" in result.stderr


def test_a_failed_install_puts_everything_back(framework, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    install(framework, project)
    write_tree(framework, {"modules/zz/new.md": "# New\n\nA new module.\n",  # two "new": a path with a folder
                           "modules/yy/new.md": "# Other new\n"})
    task = framework / "commands/task.md"
    task.write_text(task.read_text().replace("    - quality/gates\n",
                                             "    - quality/gates\n    - {module: zz/new, load: on_demand}\n"))
    gates = framework / "modules/quality/gates.md"
    gates.write_text(gates.read_text().replace("A change is done when", "A change is finished when"))
    layout = plan_claude_code(framework, InstallOptions(into=project))
    changes = plan_changes(project, {f.path: f.data for f in layout.files}, layout.owner)
    written = [path for path, _ in changes.write]
    assert written.index(".claude/commands/task.md") < written.index(".claude/tokeffc/zz/new.md")
    (project / ".claude/tokeffc/zz").write_text("a file where the install needs a folder\n")  # after the check
    before = snapshot(project)
    with pytest.raises(OutputError) as caught:
        apply_changes(changes)
    assert caught.value.exit_code == 5 and "nothing was changed" in caught.value.hint
    assert snapshot(project) == before
    assert not any(p.name.startswith(".tokeffc-install-") for p in project.iterdir())


# --- what the target changes in the text ---------------------------------------------------------

def test_mentions_of_placed_files_lose_their_at_and_run_time_files_keep_it(tmp_path):
    installed = install(FAITHFUL, tmp_path)
    check_tree(installed, tmp_path)
    complete = (tmp_path / ".claude/commands/complete.md").read_text()
    assert "- ~/.claude/fw/workflows/complete-milestone.md (main workflow)\n" in complete
    assert "Follow workflows/verify.md end-to-end.\n" in complete and "Run the test suite and the linters" in complete
    assert "Current state:\n@.planning/STATE.md\n" in complete  # exists only at run time: the host attaches it
    skill = (tmp_path / ".claude/skills/tdd/SKILL.md").read_text()
    assert skill.startswith("---\n") and "tokeffc" not in skill.split("---\n", 2)[1]
    assert "(skill," not in (tmp_path / "CLAUDE.md").read_text()  # the host lists skills itself


def test_a_module_claude_md_defers_comes_with_the_command_that_needs_it(mini, tmp_path):
    root = mini({"CORE.md": "# Core\n\nBe precise.\n\n@modules/x.md\n",
                 "modules/x.md": "---\ntokeffc: {load: on_demand, when: when x matters, requires: [{module: y, "
                                 "load: on_demand}]}\n---\n# X\n\nThe x rules.\n",
                 "modules/y.md": "# Y\n\nThe y details.\n",
                 "commands/a.md": "---\ntokeffc: {requires: [{module: x, load: immediate}]}\n---\n# A\n\nDo a.\n",
                 "commands/b.md": "# B\n\nDo b.\n"})
    project = tmp_path / "project"
    project.mkdir()
    installed = install(root, project)
    check_tree(installed, project)
    claude_md, a, b = ((project / p).read_text() for p in ("CLAUDE.md", ".claude/commands/a.md",
                                                            ".claude/commands/b.md"))
    assert '(Not loaded here: "x"; see "Modules on request".)' in claude_md and "- `.claude/tokeffc/x.md`" in claude_md
    assert a.startswith("# X\n\nThe x rules.\n") and "- `.claude/tokeffc/y.md` (module, " in a  # what x offers
    assert "The x rules." not in b and "Be precise." not in a + b


def test_the_front_matter_is_written_back_without_tokeffcs_key(mini, tmp_path):
    root = mini({"commands/a.md": "---\ndescription: first\ntokeffc:\n  tier: minimal\n  requires: [m]\n"
                                  "allowed-tools: [Read]\nmodel: opus\n---\n# A\n",
                 "commands/b.md": "---\ntokeffc: {tier: minimal}\n---\n# B\n",
                 "commands/c.md": "---\n{description: flow, tokeffc: {tier: minimal}, argument-hint: x}\n---\n# C\n",
                 "commands/d.md": "---\n{description: two lines,\n tokeffc: {tier: minimal}}\n---\n# D\n",
                 "modules/m.md": "# M\n\nText.\n"})
    layout = plan_claude_code(root, InstallOptions(into=tmp_path))
    documents = {d.id: d for d in layout.result.framework.documents.values()}
    assert host_head(documents["a"]) == "---\ndescription: first\nallowed-tools: [Read]\nmodel: opus\n---\n"
    assert host_head(documents["b"]) == ""
    assert host_head(documents["c"]) == "---\ndescription: flow\nargument-hint: x\n---\n"
    assert host_head(documents["d"]) == "---\ndescription: two lines\n---\n"
    heads = [f.data.decode().split("\n---\n", 1)[0] for f in layout.files if f.head]
    assert len(heads) == 3 and not any("tokeffc" in head or "tier:" in head for head in heads)


KEYS = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,11}", fullmatch=True).filter(lambda k: k != "tokeffc"),
                min_size=0, max_size=6, unique=True)
VALUES = st.one_of(st.integers(-5, 5), st.booleans(), st.text("ab :#-", max_size=8), st.lists(st.integers(0, 3)))


@given(KEYS, st.data())
def test_tokeffcs_key_goes_and_every_other_line_stays(keys, data):
    """Whatever the host's keys and wherever tokeffc's key stands, the host reads the same mapping, in order."""
    values = {k: data.draw(VALUES) for k in keys}
    at = data.draw(st.integers(0, len(keys)))
    block = [yaml.safe_dump({k: v}, default_flow_style=False, allow_unicode=True) for k, v in values.items()]
    ours = "tokeffc:\n  tier: minimal\n  requires: [a, {module: b, load: lazy}]\n"
    head = "---\n" + "".join(block[:at]) + ours + "".join(block[at:]) + "---\n\n"
    kept = without_our_key(head, "x.md")
    if not keys:
        assert kept == ""
        return
    assert kept == "---\n" + "".join(block) + "---\n\n"  # every other line as written
    front = kept[len("---\n"):kept.rindex("---\n")]  # a value may hold "---" itself ("a---")
    assert list(yaml.safe_load(front)) == keys


def test_an_agent_that_cannot_read_is_told(tmp_path):
    root = write_tree(tmp_path / "fw", {
        "tokeffc.yaml": "name: fw\nversion: 1.0.0\ncore: [CORE.md]\ncommands: commands/*.md\n"
                        "modules: [modules/*.md, agents/*.md]\n"
                        "entries: [command, agent]\nrules:\n  - match: agents/*.md\n    role: agent\n"
                        "tiers:\n  minimal: {budget: 1000}\n",
        "CORE.md": "# Core\n",
        "agents/helper.md": "---\nname: helper\ndescription: helps\ntools: Bash, Edit\ntokeffc:\n"
                            "  requires: [{module: guide, load: on_demand}]\n---\nHelp.\n",
        "modules/guide.md": "# Guide\n"})
    (tmp_path / "project").mkdir()
    result = run("build", root, "--target", "claude-code", "--into", tmp_path / "project")
    assert result.exit_code == 0
    assert "agent 'helper' has modules on request but its 'tools' leave out Read" in result.stderr
    agent = (tmp_path / "project/.claude/agents/helper.md").read_text()
    assert agent.startswith("---\nname: helper\ndescription: helps\ntools: Bash, Edit\n---\n")


# --- the command line ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--into", "{tmp}"], "--into and --all-tiers install for a host; add --target claude-code"),
    (["--target", "claude-code", "-o", "{tmp}"], "-o/--out writes a release; --target installs"),
    (["--target", "claude-code", "--into", "{tmp}/nowhere"], "is not a folder"),
    (["--target", "claude-code", "--into", str(EXAMPLE)], "holds the framework's own sources"),
    (["--target", "claude-code", "--into", "{tmp}", "--tier", "huge"], "unknown tier 'huge'"),
    (["--target", "claude-code", "--into", "{tmp}", "--command", "tsak"], "did you mean 'task'?"),
])
def test_usage_errors(tmp_path, args, message):
    result = run("build", EXAMPLE, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_over_budget_installs_nothing_unless_allowed(mini, tmp_path):
    root = mini({"commands/big.md": "# Big\n\n" + "word " * 1200 + "\n"})
    (tmp_path / "project").mkdir()
    result = run("build", root, "--target", "claude-code", "--into", tmp_path / "project")
    assert result.exit_code == 1 and "nothing installed" in result.stderr
    assert list((tmp_path / "project").iterdir()) == []
    result = run("build", root, "--target", "claude-code", "--into", tmp_path / "project", "--allow-over")
    assert result.exit_code == 0 and (tmp_path / "project/.claude/commands/big.md").is_file()


def test_the_default_project_is_inside_the_framework_and_never_read_back(framework):
    assert run("build", framework, "--target", "claude-code").exit_code == 0
    again = install(framework, None)  # the installed CLAUDE.md must not become a source
    assert again.layout.project == framework / "dist/claude-code"
    assert again.changes.write == () and (framework / "dist/claude-code/CLAUDE.md").is_file()


# --- real frameworks -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Each corpus installed once, with the preset a new user would pick."""
    if not CORPORA.is_dir():
        pytest.skip("shared corpora not present")
    installs = {}
    for name, build in CORPUS_CASES.items():
        project = tmp_path_factory.mktemp(name)
        installs[name] = project, install_claude_code(CORPORA / name.split("-")[0], InstallOptions(build, into=project))
    return installs


@needs_corpora
@pytest.mark.parametrize("name", sorted(CORPUS_CASES))
def test_every_corpus_installs_faithfully(corpora, name):
    project, installed = corpora[name]
    check_tree(installed, project)
    assert not installed.layout.over and installed.written


@needs_corpora
def test_bmad_agents_and_their_commands_are_commands(corpora):
    project, installed = corpora["bmad"]
    assert not (project / "CLAUDE.md").exists()  # BMAD loads nothing in every session
    assert (project / ".claude/commands/pm.md").is_file() and (project / ".claude/commands/pm/create-prd.md").is_file()
    prd = (project / ".claude/commands/pm/create-prd.md").read_text()
    held = next(f for f in installed.layout.files if f.path == ".claude/commands/pm/create-prd.md").sources
    assert held == ("common/tasks/create-doc", "bmad-core/templates/prd-tmpl", "pm")  # what the command names, inline
    template = next(p for p in ROW.findall(prd) if p[0].endswith("/brownfield-prd-tmpl.yaml"))[0]
    module = next(f.name for f in installed.layout.files if f.path == template)
    source = CORPORA / "bmad" / _document(installed.layout, module).path
    assert template == ".claude/tokeffc/bmad-core/templates/brownfield-prd-tmpl.yaml" == ".claude/tokeffc/" + module + \
        ".yaml"  # two packs have one: the path keeps what tells them apart
    assert yaml.safe_load((project / template).read_text()) == yaml.safe_load(source.read_text())


@needs_corpora
def test_superclaude_keeps_its_agents_and_loads_less_at_session_start(corpora):
    project, installed = corpora["superclaude"]
    agent = (project / ".claude/agents/backend-architect.md").read_text()
    assert agent.startswith("---\nname: backend-architect\ndescription: Design reliable backend systems")
    assert len(list((project / ".claude/commands").iterdir())) == 25
    session = installed.layout.session
    assert session.claude_md == reference_count((project / "CLAUDE.md").read_bytes())
    assert session.baseline == installed.layout.result.manifest.baseline.always_tokens > session.tokens


@needs_corpora
def test_a_command_carries_what_claude_md_defers_but_it_loads_at_once(corpora):
    project, installed = corpora["superclaude-trimmed"]
    claude_md = (project / "CLAUDE.md").read_text()
    assert '(Not loaded here: "MODE_Brainstorming"; see "Modules on request".)' in claude_md
    assert "- `.claude/tokeffc/MODE_Brainstorming.md` (module, " in claude_md
    assert "# Brainstorming Mode" not in claude_md
    brainstorm = (project / ".claude/commands/brainstorm.md").read_text()
    assert brainstorm.index("# Brainstorming Mode") < brainstorm.index("# /sc:brainstorm")
    session = installed.layout.session
    assert session.tokens < 0.35 * session.baseline  # modes and MCP docs on request: CLAUDE.md is a third


@needs_corpora
def test_superpowers_skills_are_skills_and_its_hook_text_is_claude_md(corpora):
    project, installed = corpora["superpowers"]
    claude_md = (project / "CLAUDE.md").read_text()
    skills = sorted(p.parent.name for p in (project / ".claude/skills").glob("*/SKILL.md"))
    assert len(skills) == 13 and "using-superpowers" not in skills  # that one is always loaded: CLAUDE.md
    assert "Invoke relevant or requested skills BEFORE any response" in claude_md and "(skill," not in claude_md
    session = installed.layout.session
    assert session.listing > 0 and session.baseline == installed.layout.result.manifest.baseline.always_tokens


def test_the_fidelity_check_catches_an_import_left_in_and_a_changed_head(tmp_path):
    installed = install(FAITHFUL, tmp_path)
    layout = installed.layout
    tree = snapshot(tmp_path)
    holds = {f.path: Held(f.sources, f.tier, f.name, f.head, "CLAUDE.md") for f in layout.files
             if f.path == ".claude/commands/complete.md"}
    args = (layout.result.framework.config.root, layout.result.release.manifest_bytes)
    assert check_installed(*args, tree, holds) == []
    name = ".claude/commands/complete.md"
    broken = {**tree, name: tree[name].replace(b"Follow workflows/verify.md", b"Follow @workflows/verify.md")}
    assert any("Follow @workflows/verify.md" in p for p in check_installed(*args, broken, holds))
    broken = {**tree, name: tree[name].replace(b"description: Complete", b"description: Finish")}
    assert any("does not begin with the front matter of commands/complete.md" in p
               for p in check_installed(*args, broken, holds))


TWO_TIERS = ("name: two\nversion: 0.1.0\ncore: [CLAUDE.md]\ncommands: commands/**/*.md\nmodules: modules/**/*.md\n"
             "tiers:\n  minimal: {budget: 20000}\n  full: {budget: 40000, compress: false}\n")
LONG = ("Long paragraph: the core holds it only at the full tier, so the minimal tier's CLAUDE.md does not, and no "
        "command file may point to it there.")


@pytest.mark.parametrize("core, module", [
    ('# Core\n\n{% if tokeffc.tier == "full" %}\nFULL-ONLY CORE TEXT.\n{% endif %}\n', None),
    ("# Core\n\n@modules/extra.md\n", "---\ntokeffc: {tier: full}\n---\n## Extra\n\nFULL-TIER MODULE TEXT.\n"),
    (f'# Core\n\n{{% if tokeffc.tier == "full" %}}\n{LONG}\n{{% endif %}}\n', None),
])
def test_a_tier_whose_always_loaded_text_differs_from_claude_md_carries_its_own(tmp_path, core, module):
    files = {"tokeffc.yaml": TWO_TIERS, "CLAUDE.md": core, "commands/go.md": f"# /go\n\nDo it.\n\n{LONG}\n"}
    root = write_tree(tmp_path / "fw", {**files, **({"modules/extra.md": module} if module else {})})
    project = tmp_path / "project"
    project.mkdir()
    installed = install(root, project, all_tiers=True)
    check_tree(installed, project)
    full = (project / ".claude/commands/go-full.md").read_text()
    for text in ("FULL-ONLY CORE TEXT." if "FULL-ONLY" in core else "FULL-TIER MODULE TEXT." if module else LONG,
                 "Do it."):
        assert text in full  # nothing of the full tier's is lost to CLAUDE.md holding the minimal tier's
    assert "FULL" not in (project / "CLAUDE.md").read_text()
    assert LONG in (project / ".claude/commands/go.md").read_text()  # the minimal tier's core lacks it


def test_a_rule_with_paths_is_installed_as_a_rule_and_offered_by_no_index(tmp_path):
    root = write_tree(tmp_path / "fw", {
        "CLAUDE.md": "# Project\n", ".claude/commands/fix.md": "Fix the bug.\n", ".claude/rules/style.md": "Tabs.\n",
        ".claude/rules/api/auth.md": "---\npaths: ['src/api/**']\n---\nValidate every request.\n"})
    project = tmp_path / "project"
    project.mkdir()
    installed = install(root, project, build=BuildOptions(preset="claude-code"))
    check_tree(installed, project)
    rule = project / ".claude/rules/api/auth.md"
    assert rule.read_text() == "---\npaths: ['src/api/**']\n---\nValidate every request.\n"
    assert {f.kind for f in installed.layout.files if f.path == ".claude/rules/api/auth.md"} == {"rule"}
    for name in ("CLAUDE.md", ".claude/commands/fix.md"):
        assert "auth" not in (project / name).read_text()  # the host reads it by its paths, not an index
    assert "Tabs." in (project / "CLAUDE.md").read_text()
