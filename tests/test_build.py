"""The whole pipeline on the example and on small frameworks: contents and exact accounting."""


from conftest import EXAMPLE
from helpers import assert_counts_exact, assert_savings_reconcile

from tokeffc.pipeline import BuildOptions, compile_framework


def bundle_text(result, command, tier):
    return dict(result.release.files)[f"bundles/{command}/{tier}.md"].decode()


def test_example_counts_are_exact_and_savings_reconcile():
    result = compile_framework(EXAMPLE)
    assert_counts_exact(result)
    assert_savings_reconcile(result)


def test_example_bundles_follow_the_tiers():
    result = compile_framework(EXAMPLE)
    minimal, full = bundle_text(result, "task", "minimal"), bundle_text(result, "task", "full")
    assert minimal.startswith("# Forge\n")  # core first
    # the command (and its include) last
    assert minimal.rstrip().endswith("- Before pushing, run the quality gates locally.")
    assert "Test a hypothesis by the cheapest check that could prove it wrong." in minimal
    assert "<reasoning>" not in minimal and "<reasoning>" in full  # checkpoints compressed below full
    assert "When the task is larger than it looked" not in minimal  # tier-conditional
    assert "When the task is larger than it looked" in full
    assert "Maintainers:" in minimal  # HTML comments are the framework's text (strip_comments is opt-in)
    assert minimal.count("\n### Escalation rule\n") == 1  # the repeated section is deduped, with a pointer
    assert 'the section that begins "### Escalation rule If the same failure happens…" stands above' in minimal
    assert "## Rationale" not in minimal and "## Rationale" in full  # reasoning heading dropped below full


def test_on_demand_modules_become_chunks_in_the_index():
    result = compile_framework(EXAMPLE)
    entry = result.manifest.bundle("task", "standard")
    chunks = {c.id: c for c in entry.chunks}
    assert set(chunks) == {"domains/api", "domains/frontend", "domains/data", "errors/recovery"}
    assert chunks["domains/data"].load == "lazy"
    text = bundle_text(result, "task", "standard")
    api = result.bundles[[b.file for b in result.bundles].index("bundles/task/standard.md")].chunks
    api_tokens = next(c.content.tokens for p, c in api if c.id == "domains/api")
    assert f"- `api` (module, {api_tokens} tokens): the work adds or changes an HTTP or RPC endpoint" in text
    assert f"`data` (module, {chunks['domains/data'].tokens} tokens, only if needed)" in text
    assert "## Domain template: API endpoint" not in text  # the chunk's text is not inlined


def test_a_module_left_out_by_the_tier_leaves_one_line(mini):
    root = mini({"commands/c.md": "Before.\n\nConsult the questioning guide:\n"
                                  "{% include \"modules/questioning.md\" %}\nAfter.\n",
                 "modules/questioning.md": "---\ntokeffc: {tier: full}\n---\nAsk one question at a time.\n"})
    result = compile_framework(root)
    minimal, full = bundle_text(result, "c", "minimal"), bundle_text(result, "c", "full")
    assert ('Consult the questioning guide:\n(Module "questioning", 18 tokens, is left out at the minimal tier; '
            'it belongs to full and above.)\nAfter.') in minimal
    assert "Ask one question at a time." in full
    assert [d.id for d in result.manifest.bundle("c", "minimal").dropped] == ["questioning"]


def test_include_inlines_once_then_refers(mini):
    root = mini({
        "commands/c.md": "# C\n\n{% include \"modules/x.md\" %}\n\nmiddle\n\n@../modules/x.md\n",
        "modules/x.md": "The included text.\n",
    })
    result = compile_framework(root)
    text = bundle_text(result, "c", "minimal")
    assert text.count("The included text.") == 1
    assert '(Module "x" is included above.)' in text
    assert_counts_exact(result)


def test_required_module_already_inlined_is_not_repeated(mini):
    root = mini({
        "CORE.md": "# Core\n\n{% include \"modules/x.md\" %}\n",
        "commands/c.md": "---\ntokeffc: {requires: [x]}\n---\n# C\n",
        "modules/x.md": "Shared text.\n",
    })
    result = compile_framework(root)
    assert bundle_text(result, "c", "minimal").count("Shared text.") == 1


def test_command_filter_and_disabled_passes(mini):
    root = mini({"commands/a.md": "a  \n\n\n\nb\n", "commands/b.md": "b\n"})
    result = compile_framework(root, BuildOptions(commands=("a",), tiers=("full",), disabled_passes=("normalise",)))
    assert [(b.entry, b.tier) for b in result.bundles] == [("a", "full")]
    assert "a  \n\n\n\nb" in bundle_text(result, "a", "full")
    assert result.passes == ("checkpoints", "dedupe")


def test_over_budget_lists_what_to_cut(mini):
    big = "Some long guidance sentence that costs tokens. " * 40 + "\n"
    root = mini({"commands/c.md": "---\ntokeffc: {requires: [big, shared]}\n---\nc\n",
                 "commands/d.md": "---\ntokeffc: {requires: [shared]}\n---\nd\n",
                 "modules/big.md": big, "modules/shared.md": "shared\n"},
                config="name: m\nversion: 1.0.0\ncore: [CORE.md]\ntiers: {only: {budget: 100}}\n")
    result = compile_framework(root)
    (check,) = result.over_budget
    assert check.command == "c" and check.status == "over"
    assert ("big", "largest") in [(h.id, h.reason) for h in check.cut]
    assert ("big", "only-this-command") in [(h.id, h.reason) for h in check.cut]
    assert ("shared", "only-this-command") not in [(h.id, h.reason) for h in check.cut]


def test_chunk_text_naming_the_command_is_kept_per_command(mini):
    """tokeffc.command is the entry's id (never its path), and what an include pulls in comes with it."""
    root = mini({
        "commands/a.md": "---\ntokeffc: {requires: [{module: m, load: on_demand}]}\n---\na\n",
        "commands/b.md": "---\ntokeffc: {requires: [{module: m, load: on_demand}]}\n---\nb\n",
        "modules/m.md": "Shared part.\n{% include \"modules/who.md\" %}\n",
        "modules/who.md": "Run for /{{ tokeffc.command }}.\n",
    })
    result = compile_framework(root, BuildOptions(tiers=("minimal",)))
    texts = {b.entry: b.chunks[0][1].content.data.decode() for b in result.bundles}
    assert texts == {"a": "Shared part.\nRun for /a.\n", "b": "Shared part.\nRun for /b.\n"}
    assert_counts_exact(result)


def test_conditional_include_on_the_command_brings_its_requirements(mini):
    root = mini({
        "commands/task.md": "# Task\n{% if tokeffc.command == \"task\" %}\n{% include \"modules/x.md\" %}\n"
                            "{% endif %}\n",
        "commands/other.md": "# Other\n{% include \"modules/y.md\" %}\n",
        "modules/x.md": "---\ntokeffc: {requires: [z]}\n---\nX text.\n",
        "modules/y.md": "{% if tokeffc.command == \"task\" %}\nonly for task\n{% endif %}\nY text.\n",
        "modules/z.md": "Z, required by x.\n",
    })
    result = compile_framework(root, BuildOptions(tiers=("minimal",)))
    task, other = bundle_text(result, "task", "minimal"), bundle_text(result, "other", "minimal")
    assert "X text." in task and "Z, required by x." in task
    assert "X text." not in other and "Z, required" not in other and "only for task" not in other
    assert_counts_exact(result)
