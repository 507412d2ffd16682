"""Where a cold ``tokeffc build`` spends its time: imports, then stages, modules and functions.

One fresh process under ``-X importtime`` (what each package costs to import), one under cProfile
(cold: fresh output and empty cache). Profiling slows pure-Python code more than C code, so read
the shares, not the seconds; bench.py gives the real wall times. cProfile sees the build's own
process and main thread only: the sources' tokenization runs in a helper process beside it
(``TokenCounter.prime``; a thread where it cannot fork, and then a main-thread function's time
includes any wait for the interpreter lock that thread holds).

    python benchmarks/profile_build.py [1x|8x|bmad|market] [--top 20]
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import PYTHON, build_argv, child_env, fresh_dir, make_workload, run_child  # noqa: E402

PACKAGES = ("click", "rich", "jinja2", "markupsafe", "tiktoken", "networkx", "yaml", "zstandard")
# The build's stages, as (label, file suffix, function name). A stage whose function was renamed shows
# "not found"; the per-module and per-function lists below do not depend on these names.
STAGES = (
    ("imports (all of them)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("config", "config.py", "load_config"),
    ("encoding load", "tokens.py", "resolve_encoding"),
    ("reading sources", "sources.py", "discover_sources"),
    ("waiting for the helper that tokenizes the sources", "tokens.py", "settle"),
    ("parsing + graph", "pipeline.py", "load_framework"),
    ("selection", "selection.py", "select_bundles"),
    ("assembly (rendering, passes, counting)", "assemble.py", "bundle"),
    ("budgets", "budgets.py", "check_budgets"),
    ("emit (manifest, index templates)", "emit.py", "emit_release"),
    ("writing the release and .tokb", "publish.py", "write_release"),
    ("printing the table", "cli.py", "_show"),
)


def import_costs(argv: list[str], env: dict[str, str]) -> tuple[float, list[tuple[str, float]]]:
    """Total import time, and each top-level package's share: the self time of all its modules (s)."""
    stderr = run_child([PYTHON, "-X", "importtime", *argv], env).stderr
    total, by_package = 0.0, defaultdict(float)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2 or "imported package" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        by_package[name.strip().split(".")[0]] += int(own) / 1e6
        if not name.startswith("  "):  # a top-level import: its cumulative time covers everything it pulled in
            total += int(cumulative) / 1e6
    return total, sorted(by_package.items(), key=lambda item: -item[1])


def profile(argv: list[str], env: dict[str, str], scratch: Path) -> pstats.Stats:
    target = scratch / "build.prof"
    run_child([PYTHON, "-m", "cProfile", "-o", str(target), *argv], env)
    return pstats.Stats(str(target))


def stage_times(stats: pstats.Stats) -> list[tuple[str, float | None]]:
    found = []
    for label, suffix, function in STAGES:
        times = [cumulative for (path, _, name), (_, _, _, cumulative, _) in stats.stats.items()
                 if path.endswith(suffix) and name == function]
        found.append((label, max(times) if times else None))
    return found


def module_of(path: str, name: str) -> str:
    """A function's owner: ``tokeffc.<module>``, a third-party package, or the builtin's name."""
    if path == "~":
        return name.strip("<>")
    parts = Path(path).parts
    if "compiler" in parts:
        return "tokeffc." + Path(path).stem
    for package in PACKAGES:
        if package in parts:
            return package
    return "python " + (path if path.startswith("<") else Path(path).name)


def self_time_by_module(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    for (path, _, name), (_, _, own, _, _) in stats.stats.items():
        totals[module_of(path, name)] += own
    return sorted(totals.items(), key=lambda item: -item[1])


def top_functions(stats: pstats.Stats, key: int, top: int, only_tokeffc: bool) -> list[tuple[str, float]]:
    rows = []
    for (path, line, name), values in stats.stats.items():
        if only_tokeffc and "compiler" not in Path(path).parts:
            continue
        rows.append((module_of(path, name) if path == "~" else f"{module_of(path, name)}:{line} {name}", values[key]))
    return sorted(rows, key=lambda item: -item[1])[:top]


def show(title: str, rows: list[tuple[str, float | None]], total: float) -> None:
    print(f"\n{title}")
    for label, seconds in rows:
        figure = "not found" if seconds is None else f"{seconds * 1000:8.1f} ms  {seconds / total:6.1%}"
        print(f"  {label:<64} {figure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", default="1x", choices=("1x", "8x", "bmad", "market"))
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tokeffc-profile-") as tmp:
        scratch = Path(tmp)
        work = make_workload(args.workload, scratch)
        run_child(build_argv(work, scratch / "warm"), child_env(fresh_dir(scratch / "cache-warm")))  # OS caches, .pyc
        argv = build_argv(work, scratch / "out-imports")
        imports, packages = import_costs(argv, child_env(fresh_dir(scratch / "cache-imports")))
        stats = profile(build_argv(work, scratch / "out-profile"), child_env(fresh_dir(scratch / "cache-p")), scratch)
    total = stats.total_tt
    print(f"cold build of {work.label}: {total:.3f} s under cProfile; imports {imports * 1000:.0f} ms unprofiled")
    show("imports by package (self time of its modules; -X importtime)", packages[: args.top], imports)
    show("stages (cumulative; they nest: assembly includes its rendering and counting)", stage_times(stats), total)
    show("self time by module", self_time_by_module(stats)[: args.top], total)
    show("tokeffc functions by cumulative time", top_functions(stats, 3, args.top, True), total)
    show("all functions by self time", top_functions(stats, 2, args.top, False), total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
