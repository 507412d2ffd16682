"""Time a cold ``tokeffc build`` of the seed-scale framework against the floor, in one run.

The floor is the least any compiler must do: read every source once and tokenize its text
once (with the same offline encoding, loaded inside the timing as the build loads it).
A cold build starts from a fresh output folder and an empty token cache.

    python benchmarks/bench_build.py [--runs 5] [--framework DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tokeffc.config import load_config
from tokeffc.pipeline import build_release
from tokeffc.sources import discover_sources
from tokeffc.tokens import resolve_encoding

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402

TARGET_RATIO = 3.0


def floor_seconds(root: Path) -> tuple[float, int]:
    start = time.perf_counter()
    config = load_config(root)
    encoding = resolve_encoding(config.encoding, config.encoding_sha256, config.root)
    texts = [source.text for source in discover_sources(config)]
    tokens = sum(len(ids) for ids in encoding.encode_ordinary_batch(texts, num_threads=2))
    return time.perf_counter() - start, tokens


def build_seconds(root: Path, scratch: Path, run: int) -> tuple[float, int]:
    out = scratch / f"out-{run}"  # fresh every run: nothing to reuse
    start = time.perf_counter()
    result, _, _ = build_release(root, out, allow_over=True)
    return time.perf_counter() - start, len(result.bundles)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--framework", type=Path, help="Benchmark this framework instead of the generated one.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        root = args.framework or generate(scratch / "framework")
        floor_seconds(root), build_seconds(root, scratch, -1)  # warm the OS file cache and imports once
        floors, builds = [], []
        for run in range(args.runs):  # interleaved, so drift hits both alike
            os.sync()  # flush earlier runs' writes, so that no run pays for another's write-back
            seconds, tokens = floor_seconds(root)
            floors.append(seconds)
            os.sync()
            seconds, bundles = build_seconds(root, scratch, run)
            builds.append(seconds)
    floor, build = statistics.median(floors), statistics.median(builds)
    ratio = build / floor
    print(f"framework: {root if args.framework else 'generated (18 commands, 64 modules)'}: "
          f"{tokens:,} source tokens, {bundles} bundles")
    print(f"floor (read + tokenize every source once): median {floor * 1000:.0f} ms "
          f"(runs: {', '.join(f'{s * 1000:.0f}' for s in floors)})")
    print(f"cold build (fresh output, empty cache):    median {build * 1000:.0f} ms "
          f"(runs: {', '.join(f'{s * 1000:.0f}' for s in builds)})")
    print(f"ratio build/floor: {ratio:.2f}x (target: within {TARGET_RATIO:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
