"""Print what tokeffc saves on a framework: per tier, averaged over commands, against the baseline.

The baseline of a bundle is what loads with no compiler: core + every module + the command, each
file as written. Each pass's share is the tokens it removed divided by that baseline.

    python benchmarks/savings.py [ROOT ...]     # default: examples/forge and the generated framework
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from tokeffc.pipeline import compile_framework

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402

PASSES = ("pruned", "compressed", "normalised", "deduped", "structure")


def report(root: Path, label: str) -> None:
    manifest = json.loads(compile_framework(root).release.manifest_bytes)
    by_tier = defaultdict(list)
    for bundle in manifest["bundles"]:
        by_tier[bundle["tier"]].append(bundle)
    print(f"{label}: {len(manifest['commands'])} commands, {len(manifest['modules'])} modules and core files")
    print(f"  {'tier':9} {'baseline':>9} {'emitted':>8} {'saving':>7}  " + "  ".join(f"{p:>10}" for p in PASSES)
          )
    for tier, bundles in by_tier.items():
        baseline = sum(b["baseline_tokens"] for b in bundles) / len(bundles)
        emitted = sum(b["tokens"] for b in bundles) / len(bundles)
        shares = [sum(b["saved"][p] for b in bundles) / len(bundles) / baseline for p in PASSES]
        print(f"  {tier:9} {baseline:>9,.0f} {emitted:>8,.0f} {1 - emitted / baseline:>7.1%}  "
              + "  ".join(f"{s:>10.2%}" for s in shares))


def main() -> None:
    roots = [Path(a) for a in sys.argv[1:]]
    if roots:
        for root in roots:
            report(root, str(root))
        return
    report(Path(__file__).resolve().parent.parent / "examples" / "forge", "examples/forge")
    with tempfile.TemporaryDirectory() as tmp:
        report(generate(Path(tmp) / "framework"), "generated seed-scale framework (benchmarks/generate.py)")


if __name__ == "__main__":
    main()
