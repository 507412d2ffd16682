"""Random frameworks through the CLI: whatever the bodies, front matter and config hold, tokeffc answers
with 0, 1 or 3 and one located line per problem; never exit 4 (a bug), never a traceback."""

import tempfile
from pathlib import Path

from click.testing import CliRunner
from conftest import write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokeffc.cli import main

PIECES = [
    "plain text\n", "{{version}} and {{ tokeffc.version }}\n", "{% if tokeffc.tier == 'full' %}\n",
    "{% endif %}\n", "{% else %}\n", "{% if user %}\n", "{% include \"modules/m0.md\" %}\n",
    "{% include \"modules/nope.md\" %}\n", "{% if tokeffc.tier * 9 %}\n", "{{ tokeffc.nope }}\n",
    "@modules/m1.md\n", "- @modules/m0.md (list)\n", "Follow @../x.md now.\n", "@~/.claude/a.md\n",
    "```\n", "`code {% if %}\n", "wrapped` span\n", "<!-- c -->\n", "<checkpoint><conclusion>x</conclusion>",
    "</checkpoint>\n", "# Heading\n", "\n\n\n", "  \t\n", "{#\n", "{%\n", "%}\n", "\x7f\u200b\ufeff\n",
    "```yaml\ndependencies:\n  tasks: [a.md, {x: 1}]\n```\n", "```yaml\ncommands:\n  - run: task a.md\n```\n",
]
FRONT = st.sampled_from([
    "", "---\n---\n", "---\ntokeffc: {tier: full}\n---\n", "---\ntokeffc: {requires: [m0, m1]}\n---\n",
    "---\ntokeffc: {load: on_demand, when: x}\n---\n", "---\ntokeffc: [1]\n---\n", "---\ntokeffc: {tier: 7}\n---\n",
    "---\ndescription: a: b: c\n---\n", "---\na: &x [*x]\n---\n", "---\n1: a\n'1': b\n---\n", "---\nunclosed\n",
    "---\ntokeffc: {requires: [{module: m1, load: lazy}], budget: {minimal: true}}\n---\n",
    "---\ntokeffc: {id: ../x}\n---\n", "---\nrequires: [content]\n---\n",
])
CONFIG = st.sampled_from([
    "name: f\nversion: 1.0.0\ncore: [CORE.md]\n",
    "name: f\nversion: 1.0.0\ncore: [CORE.md]\non_missing: warn\nexternal: ['x/**']\n",
    "name: f\nversion: 1.0.0\ncore: [CORE.md]\npasses: {strip_comments: true}\n",
    "name: f\nversion: 1.0.0\ncore: [CORE.md]\ntiers: {a: {budget: 10}, b: {budget: 5}}\n",
    "name: f\nversion: 1.0.0\ncore: [CORE.md]\ntiers: {1: {budget: true}}\n",
    "name: f\nversion: 1.0.0\ncore: [CORE.md]\nrules: [{match: 'modules/*', load: lazy}, {match: 1}]\n",
    "name: f\nversion: 1.0.0\ncore: [CORE.md]\nextractors: [{kind: mention, pattern: '(', target: x}]\n",
    "name: f\nversion: 1.0.0\ncore: [CORE.md]\nagent_commands: true\ndeclared_load: immediate\n",
    "name: F\nversion: one\n", "preset: claude-code\n", "preset: bmad\nname: f\n", "[]\n", "a: &a [*a]\n",
])
body = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
document = st.tuples(FRONT, body).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIG, st.lists(document, min_size=1, max_size=3), st.lists(document, max_size=3))
def test_no_framework_makes_an_internal_error(config, commands, modules):
    files = {"tokeffc.yaml": config, "CORE.md": "# Core\n"}
    files.update({f"commands/c{i}.md": text for i, text in enumerate(commands)})
    files.update({f"modules/m{i}.md": text for i, text in enumerate(modules)})
    with tempfile.TemporaryDirectory() as tmp:
        root = write_tree(Path(tmp) / "fw", {k: v.encode() for k, v in files.items()})
        result = CliRunner().invoke(main, ["check", str(root), "--json"])
    assert result.exit_code in (0, 1, 3), (result.exit_code, result.output[-400:])
    assert "Traceback" not in result.output and "internal error" not in result.output
    if result.exit_code == 3:
        lines = result.stderr.strip().splitlines()
        assert lines and all(line.startswith("error: ") for line in lines)
