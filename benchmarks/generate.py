"""Generate deterministic prompt frameworks at the sizes that motivate tokeffc.

At scale 1: 18 commands and 64 modules, about 261,000 cl100k tokens in all, shaped like large real
frameworks: a core file, modules that require one another, includes, on-demand and lazy modules,
reasoning checkpoints, tier-conditional text, and blocks repeated across modules. Scale k adds k-1
replicas of that shape (their own text, ids and commands; requires stay inside a replica), so every
bundle stays the same size and the total work grows exactly k times.

``--marketplace`` writes a Claude Code plugin marketplace instead (~715 files, ~1.3M tokens): a
``.claude-plugin/marketplace.json`` and per plugin ``commands/``, ``agents/`` and ``skills/*/SKILL.md``,
with the tokeffc config beside the root (``market.tokeffc.yaml``), since a marketplace has none.

    python benchmarks/generate.py OUT_DIR [--seed 1] [--scale 8]
    python benchmarks/generate.py OUT_DIR --marketplace [--plugins 42]
"""

from __future__ import annotations

import argparse
import json
import random
import textwrap
from pathlib import Path

COMMANDS = 18
MODULES = 64
AREAS = ("thinking", "errors", "quality", "tdd", "perf", "domains", "meta", "advanced")
WORDS = (
    "agent context module command review test failure boundary interface contract budget token tier "
    "evidence hypothesis change repository file function branch commit release migration schema query "
    "latency memory profile benchmark gate lint type coverage document owner user request response "
    "retry timeout error message cause signal metric dashboard incident rollback flag deploy pipeline "
    "validate verify measure compare report summarise decide prefer avoid keep split merge refactor "
    "carefully quickly explicitly always never only first then before after because unless when while "
    "small large critical optional stable flaky slow fast safe risky clear vague exact approximate"
).split()
SHARED_BLOCKS = (
    "### Escalation rule\nIf the same failure happens twice after a fix attempt, stop changing code. Summarise "
    "what was tried, what was observed, and ask the owner how to proceed.\n",
    "### Evidence rule\nEvery claim about the code points to a file, a test or a command output seen in this "
    "session; a claim without evidence is a question, not an answer.\n",
)


# tokeffc's own front matter keys and tier conditionals, as this compiler reads them. When the
# namespaced syntax lands (keys under ``tokeffc:``, conditionals on ``tokeffc.tier``), set this True.
NAMESPACED = True
TIER_FULL = '{% if tokeffc.tier == "full" %}' if NAMESPACED else '{% if tier == "full" %}'


def tokeffc_keys(lines: list[str]) -> list[str]:
    """Front matter lines for tokeffc's keys (id, tier, load, when, requires)."""
    return ["tokeffc:", *("  " + line for line in lines)] if NAMESPACED and lines else lines


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 20))]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return textwrap.fill(" ".join(sentence(rng) for _ in range(sentences)), width=88) + "\n"


def section(rng: random.Random, title: str, paragraphs: int, tiered: bool) -> str:
    parts = [f"## {title}\n"]
    for _ in range(paragraphs):
        kind = rng.random()
        if kind < 0.2:
            parts.append("".join(f"- {sentence(rng)}\n" for _ in range(rng.randint(3, 6))))
        elif kind < 0.27:
            parts.append("```bash\n" + "".join(f"run-step --{rng.choice(WORDS)} {rng.choice(WORDS)}\n"
                                                for _ in range(4)) + "```\n")
        else:
            parts.append(paragraph(rng, rng.randint(3, 6)))
    if tiered:
        parts.append(TIER_FULL + "\n" + paragraph(rng, 4) + "{% endif %}\n")
    return "\n".join(parts)


def checkpoint(rng: random.Random, name: str) -> str:
    return (f'<checkpoint id="{name}">\n<reasoning>{paragraph(rng, 6)}</reasoning>\n'
            f"<conclusion>{sentence(rng)}</conclusion>\n</checkpoint>\n")


def module_ids(prefix: str = "") -> list[str]:
    return [f"{prefix}{AREAS[i % len(AREAS)]}/m{i:02d}" for i in range(MODULES)]


def module_text(rng: random.Random, index: int, ids: list[str]) -> str:
    front = [f"id: {ids[index]}"]
    if index % 5 == 3:
        front.append("tier: standard")
    elif index % 7 == 6:
        front.append("tier: full")
    if index % 4 == 1:
        front += ["load: on_demand", f'when: "the work involves {rng.choice(WORDS)} {rng.choice(WORDS)}"']
    elif index % 9 == 8:
        front += ["load: lazy", f'when: "a {rng.choice(WORDS)} step failed"']
    earlier = ids[:index]
    if earlier and index % 3 == 0:
        front.append(f"requires: [{', '.join(rng.sample(earlier, min(2, len(earlier))))}]")
    # Real frameworks carry maintainer comments, stray trailing spaces and blank-line runs.
    body = [f"<!-- Maintainer note: owned by the {AREAS[index % len(AREAS)]} team; review quarterly. -->\n",
            f"# {ids[index].replace('/', ': ').title()}  \n\n"]
    for number in range(rng.randint(8, 11)):
        body.append(section(rng, f"{sentence(rng)[:40].rstrip('.')}", rng.randint(3, 6), tiered=number == 0))
    body.append(checkpoint(rng, f"{ids[index].replace('/', '-')}-why"))
    if index % 6 == 2:
        body.append(SHARED_BLOCKS[index % 2])
    return "---\n" + "\n".join(tokeffc_keys(front)) + "\n---\n\n" + "\n".join(body)


def command_text(rng: random.Random, name: str, index: int, ids: list[str]) -> str:
    required = sorted(rng.sample(ids, 5))
    front = [f"requires: [{', '.join(required)}]"]
    if index % 6 == 5:
        front.append("tier: standard")
    front = [f'description: "{sentence(rng)}"', *tokeffc_keys(front)]
    body = [f"# /{name}\n", paragraph(rng, 4)]
    for _ in range(rng.randint(8, 11)):
        body.append(section(rng, sentence(rng)[:36].rstrip("."), rng.randint(3, 5), tiered=False))
    body.append(f'{{% include "modules/{rng.choice(ids)}.md" %}}\n')
    return "---\n" + "\n".join(front) + "\n---\n\n" + "\n".join(body)


def generate(out: Path, seed: int = 1, scale: int = 1) -> Path:
    """The framework at ``scale`` (1 is the seed-scale framework; k is k replicas of its shape)."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    rng = random.Random(seed)
    files = {
        "tokeffc.yaml": ("name: bench\nversion: 1.0.0\ncore: [CLAUDE.md]\ntiers:\n  minimal: {budget: 60000}\n"
                         "  standard: {budget: 90000}\n  full: {budget: 150000}\n"),
        "CLAUDE.md": "# Core rules\n\n" + paragraph(rng, 10) + "\n" + paragraph(rng, 10),
    }
    files.update(replica(rng, ""))
    for number in range(1, scale):  # each replica its own text, so no build can reuse another's work
        files.update(replica(random.Random(f"{seed}-replica-{number}"), f"r{number}-"))
    return write_files(out, files)


def replica(rng: random.Random, prefix: str) -> dict[str, str]:
    """One seed-scale set of modules and commands; ids and command names start with ``prefix``."""
    ids = module_ids(prefix.replace("-", "/"))
    files = {f"modules/{ids[index]}.md": module_text(rng, index, ids) for index in range(MODULES)}
    for index in range(COMMANDS):
        name = f"{prefix}cmd{index:02d}"
        files[f"commands/{name}.md"] = command_text(rng, name, index, ids)
    return files


def write_files(out: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    return out


# --- a Claude Code plugin marketplace ---------------------------------------------------------------

PLUGINS = 42
PLUGIN_AREAS = ("review", "testing", "release", "docs", "security", "data", "frontend", "infra", "perf",
                "api", "mobile", "ml", "observability", "migration")
COMMAND_VERBS = ("review", "plan", "ship", "audit", "explain")
AGENT_ROLES = ("reviewer", "architect", "debugger", "writer")
SKILL_TOPICS = ("checklist", "patterns", "testing", "rollout", "diagnosis", "style", "reference")
MARKET_CONFIG = "market.tokeffc.yaml"


def marketplace(out: Path, seed: int = 1, plugins: int = PLUGINS) -> tuple[Path, Path]:
    """A plugin marketplace under ``out/marketplace``, and its tokeffc config ``out/market.tokeffc.yaml``."""
    rng = random.Random(f"{seed}-marketplace")
    names = [f"{PLUGIN_AREAS[i % len(PLUGIN_AREAS)]}-kit{i:02d}" for i in range(plugins)]
    files = {".claude-plugin/marketplace.json": marketplace_json(rng, names)}
    for name in names:
        files.update(plugin_files(rng, name))
    root = write_files(out / "marketplace", files)
    config = out / MARKET_CONFIG
    config.write_text(MARKET_YAML, encoding="utf-8")
    return root, config


# Today's compiler reads the layout from globs; a claude-plugin preset will replace these lines.
MARKET_YAML = """\
name: market
version: 1.0.0
commands: ["plugins/*/commands/*.md"]
modules: ["plugins/*/agents/*.md", "plugins/*/skills/*/SKILL.md"]
tiers:
  minimal:  {budget: 8000}
  standard: {budget: 16000}
  full:     {budget: 32000}
"""


def marketplace_json(rng: random.Random, names: list[str]) -> str:
    entries = [{"name": n, "source": f"./plugins/{n}", "description": sentence(rng), "version": "1.0.0"}
               for n in names]
    data = {"name": "bench-market", "owner": {"name": "Bench Tools"}, "plugins": entries}
    return json.dumps(data, indent=2) + "\n"


def plugin_files(rng: random.Random, name: str) -> dict[str, str]:
    base = f"plugins/{name}"
    manifest = {"name": name, "version": "1.0.0", "description": sentence(rng)}
    files = {f"{base}/.claude-plugin/plugin.json": json.dumps(manifest, indent=2) + "\n"}
    for verb in COMMAND_VERBS:
        files[f"{base}/commands/{verb}.md"] = plugin_command(rng, verb)
    for role in AGENT_ROLES:
        files[f"{base}/agents/{role}.md"] = plugin_agent(rng, f"{name}-{role}")
    for topic in SKILL_TOPICS:
        files[f"{base}/skills/{topic}/SKILL.md"] = plugin_skill(rng, f"{name}-{topic}")
    return files


def plugin_command(rng: random.Random, verb: str) -> str:
    front = [f'description: "{sentence(rng)}"', 'argument-hint: "<target>"',
             "allowed-tools: [Read, Grep, Bash, Edit]"]
    body = [f"# /{verb}\n", paragraph(rng, 4),
            f"Use the `{rng.choice(AGENT_ROLES)}` agent for the first pass, then apply the "
            f"{rng.choice(SKILL_TOPICS)} skill to what it finds. Target: `$ARGUMENTS`.\n"]
    body += [section(rng, sentence(rng)[:36].rstrip("."), rng.randint(3, 5), tiered=False) for _ in range(4)]
    return "---\n" + "\n".join(front) + "\n---\n\n" + "\n".join(body)


def plugin_agent(rng: random.Random, name: str) -> str:
    front = [f"name: {name}", f'description: "{sentence(rng)} Use proactively."', "tools: Read, Grep, Glob",
             "model: sonnet"]
    body = [f"You are the {name.replace('-', ' ')}. {paragraph(rng, 3)}"]
    body += [section(rng, sentence(rng)[:30].rstrip("."), rng.randint(3, 5), tiered=False) for _ in range(6)]
    return "---\n" + "\n".join(front) + "\n---\n\n" + "\n".join(body)


def plugin_skill(rng: random.Random, name: str) -> str:
    front = [f"name: {name}", f'description: "{sentence(rng)} Use when {sentence(rng).lower()}"']
    body = [f"# {name.replace('-', ' ').title()}\n", paragraph(rng, 3)]
    body += [section(rng, sentence(rng)[:30].rstrip("."), rng.randint(3, 6), tiered=False) for _ in range(7)]
    return "---\n" + "\n".join(front) + "\n---\n\n" + "\n".join(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1, help="Replicas of the seed-scale shape (1-8 in bench.py).")
    parser.add_argument("--marketplace", action="store_true", help="Write a plugin marketplace instead.")
    parser.add_argument("--plugins", type=int, default=PLUGINS, help="Plugins in the marketplace.")
    args = parser.parse_args()
    if args.marketplace:
        root, config = marketplace(args.out, args.seed, args.plugins)
        print(f"{root} (build with --config {config})")
    else:
        print(generate(args.out, args.seed, args.scale))


if __name__ == "__main__":
    main()
