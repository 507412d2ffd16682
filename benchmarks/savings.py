"""What tokeffc saves, per framework and tier, against the baseline each names (host or all).

For every tier: the baseline (median over entries), tokens emitted (median, min, max), the median
saving, each step's share of the baseline (summed over bundles), chunks per bundle, and how many
documents were inlined versus offered. Frameworks in ../shared/corpora are built with their presets.

    python benchmarks/savings.py                 # the example and every corpus found
    python benchmarks/savings.py ROOT [--preset NAME] [--config FILE]
    python benchmarks/savings.py --markdown FILE # also write the table as Markdown
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from tokeffc.pipeline import BuildOptions, compile_framework

REPO = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("TOKEFFC_CORPORA") or REPO.parent / "shared" / "corpora")  # third-party frameworks
FRAMEWORKS = [
    ("examples/forge", REPO / "examples" / "forge", BuildOptions()),
    ("superclaude (--preset claude-code)", CORPORA / "superclaude", BuildOptions(preset="claude-code")),
    ("superclaude (preset + rules)", CORPORA / "superclaude",
     BuildOptions(config_path=REPO / "tests" / "fixtures" / "corpora" / "superclaude.tokeffc.yaml")),
    ("bmad (--preset bmad)", CORPORA / "bmad", BuildOptions(preset="bmad")),
    ("superpowers (--preset claude-plugin)", CORPORA / "superpowers", BuildOptions(preset="claude-plugin")),
]
HEADERS = ("framework", "baseline", "tier", "bundles", "baseline (median)", "tokens median", "min", "max",
           "saving (median)", "steps (share of baseline)", "chunks/bundle", "inlined", "offered")


def rows(label: str, root: Path, options: BuildOptions) -> list[tuple[str, ...]]:
    manifest = compile_framework(root, options).manifest
    by_tier = defaultdict(list)
    for bundle in manifest.bundles:
        by_tier[bundle.tier].append(bundle)
    out = []
    for tier in manifest.tier_names:
        bundles = by_tier[tier]
        if not bundles:
            continue
        baseline = sum(b.baseline_tokens for b in bundles)
        steps = {step: sum(b.saved[step] for b in bundles) / baseline for step in bundles[0].saved}
        inlined = {m.id for b in bundles for m in b.modules if m.placement in ("section", "inline")}
        offered = {c.id for b in bundles for c in b.chunks}
        tokens = [b.tokens for b in bundles]
        out.append((label, manifest.baseline.kind, tier, str(len(bundles)),
                    f"{statistics.median(b.baseline_tokens for b in bundles):,.0f}",
                    f"{statistics.median(tokens):,.0f}", f"{min(tokens):,}", f"{max(tokens):,}",
                    f"{statistics.median(1 - b.tokens / b.baseline_tokens for b in bundles):.1%}",
                    ", ".join(f"{k} {v:.1%}" for k, v in steps.items() if v),
                    f"{statistics.median(len(b.chunks) for b in bundles):.0f}", str(len(inlined)),
                    str(len(offered))))
    return out


def markdown(table: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in table]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path)
    parser.add_argument("--preset")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    chosen = [(str(args.root), args.root, BuildOptions(config_path=args.config, preset=args.preset))] if args.root \
        else [f for f in FRAMEWORKS if f[1].is_dir()]
    table = [row for label, root, options in chosen for row in rows(label, root, options)]
    print(markdown(table))
    absent = sorted({str(root) for _, root, _ in FRAMEWORKS if not root.is_dir()}) if not args.root else []
    if absent:
        print(f"not found, so not measured: {', '.join(absent)} (the corpora live beside the repository, "
              "in ../shared/corpora; pass a framework's folder as ROOT to measure it)", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(markdown(table), encoding="utf-8")


if __name__ == "__main__":
    main()
