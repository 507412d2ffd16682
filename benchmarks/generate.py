"""Generate a deterministic prompt framework at the size that motivates tokeffc.

18 commands and 64 modules, about 261,000 cl100k tokens in all, shaped like large real
frameworks: a core file, modules that require one another, includes, on-demand and lazy
modules, reasoning checkpoints, tier-conditional text, and blocks repeated across modules.

    python benchmarks/generate.py OUT_DIR [--seed 1]
"""

from __future__ import annotations

import argparse
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
        parts.append('{% if tier == "full" %}\n' + paragraph(rng, 4) + "{% endif %}\n")
    return "\n".join(parts)


def checkpoint(rng: random.Random, name: str) -> str:
    return (f'<checkpoint id="{name}">\n<reasoning>{paragraph(rng, 6)}</reasoning>\n'
            f"<conclusion>{sentence(rng)}</conclusion>\n</checkpoint>\n")


def module_ids() -> list[str]:
    return [f"{AREAS[i % len(AREAS)]}/m{i:02d}" for i in range(MODULES)]


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
    return "---\n" + "\n".join(front) + "\n---\n\n" + "\n".join(body)


def command_text(rng: random.Random, index: int, ids: list[str]) -> str:
    required = sorted(rng.sample(ids, 5))
    front = [f'description: "{sentence(rng)}"', f"requires: [{', '.join(required)}]"]
    if index % 6 == 5:
        front.append("tier: standard")
    body = [f"# /cmd{index:02d}\n", paragraph(rng, 4)]
    for _ in range(rng.randint(8, 11)):
        body.append(section(rng, sentence(rng)[:36].rstrip("."), rng.randint(3, 5), tiered=False))
    body.append(f'{{% include "modules/{rng.choice(ids)}.md" %}}\n')
    return "---\n" + "\n".join(front) + "\n---\n\n" + "\n".join(body)


def generate(out: Path, seed: int = 1) -> Path:
    rng = random.Random(seed)
    ids = module_ids()
    files = {
        "tokeffc.yaml": ("name: bench\nversion: 1.0.0\ncore: [CLAUDE.md]\ntiers:\n  minimal: {budget: 60000}\n"
                         "  standard: {budget: 90000}\n  full: {budget: 150000}\n"),
        "CLAUDE.md": "# Core rules\n\n" + paragraph(rng, 10) + "\n" + paragraph(rng, 10),
    }
    for index in range(MODULES):
        files[f"modules/{ids[index]}.md"] = module_text(rng, index, ids)
    for index in range(COMMANDS):
        files[f"commands/cmd{index:02d}.md"] = command_text(rng, index, ids)
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(generate(args.out, args.seed))
