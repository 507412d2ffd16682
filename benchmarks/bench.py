"""Whole-process benchmarks: tokeffc as a user runs it, against the floor, in one table (issue 11).

Every figure is a fresh process (a new interpreter each time), tokeffc and its floor interleaved
run by run, median and min-max of N runs. Nothing here is a unit test; nothing in tests/ times.

    python benchmarks/bench.py [--quick] [--only NAME] [--runs N] [--markdown FILE]

Groups (``--only`` takes a group's name, or its first word: ``--only build``):
  build-1x, build-8x, build-bmad, build-market   cold build vs the floor process (8x also: peak memory)
  rebuild-bmad, rebuild-8x                       nothing changed, warm cache (the build before settled)
                                                 vs ``import tokeffc.cli``
  incremental-bmad                               one task file changed vs BMAD's cold build
  cli                                            --help, inspect, diff: wall time and heavy imports
  runtime                                        import, Release.open + context(), warm context()
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
from generate import generate, marketplace  # noqa: E402

from tokeffc.cache import SETTLED_NS  # noqa: E402

CORPORA = Path(os.environ.get("TOKEFFC_CORPORA") or REPO.parent / "shared" / "corpora")  # third-party frameworks
BMAD = CORPORA / "bmad"
BMAD_ARGS = ("--preset", "bmad")
BMAD_EDIT = "bmad-core/tasks/create-next-story.md"  # the task file the incremental rows change
PYTHON = sys.executable
TOKEFFC = str(Path(sys.executable).parent / "tokeffc")  # the console script a user runs, beside this Python
if not Path(TOKEFFC).is_file():
    TOKEFFC = shutil.which("tokeffc") or TOKEFFC
FLOOR = str(BENCH / "floor.py")

# Goals from issue 11.
COLD_RATIO = 2.0  # cold build / floor process
GROWTH = 1.10  # 8x ratio / 1x ratio: "the ratio must not climb with size", with 10% for noise
REBUILD_RATIO = 1.5  # nothing changed / python -c "import tokeffc.cli"
INCREMENTAL_RATIO = 0.4  # one module changed / cold build
IMPORT_MS = 15.0  # import tokeffc.runtime above bare start-up
OPEN_MS = 5.0  # Release.open + first context()
WARM_US = 10.0  # a warm context()
MEMORY_RATIO = 2.0  # peak RSS of the 8x build / the floor process's
HEAVY = ("jinja2", "tiktoken", "networkx", "rich.table")  # what a light CLI command does not import


# --- what a workload is, and how to build it --------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    name: str
    label: str
    root: Path
    args: tuple[str, ...] = ()  # build arguments besides ROOT and -o: the one line to change per workload


def make_workload(name: str, scratch: Path) -> Workload:
    """The workload's sources (generated into ``scratch`` when they are generated) and its build arguments."""
    if name == "1x":
        return Workload(name, "generated 1x", generate(scratch / "gen-1x", scale=1))
    if name == "8x":
        return Workload(name, "generated 8x", generate(scratch / "gen-8x", scale=8))
    if name == "bmad":
        return Workload(name, "BMAD 4.44.3", BMAD, BMAD_ARGS)
    if name == "market":
        root, config = marketplace(scratch / "market")
        return Workload(name, "plugin marketplace", root, ("--config", str(config)))  # later: --preset claude-plugin
    raise ValueError(f"unknown workload {name!r}")


def build_argv(work: Workload, out: Path, root: Path | None = None) -> list[str]:
    return [TOKEFFC, "build", str(root or work.root), *work.args, "-o", str(out), "--allow-over"]


# --- running one child process ----------------------------------------------------------------------

class BenchError(Exception):
    """A child failed, or a workload is missing: the group's row says so and the run goes on."""


@dataclass(frozen=True)
class Sample:
    seconds: float  # wall time, from spawn to exit
    max_rss_kib: int
    stdout: str
    stderr: str


Runner = Callable[[int], Sample]  # one timed run, given its number


def run_child(argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run one process to its end; its wall time and peak RSS (``os.wait4``). A non-zero exit raises."""
    os.sync()  # earlier runs' writes are flushed before, not during, this one
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        text = [f.read().decode(errors="replace") for f in (out, err)]
        sample = Sample(seconds, usage.ru_maxrss, *text)
    if child.returncode != 0:
        tail = (sample.stderr.strip() or sample.stdout.strip()).splitlines()[-1:] or ["no output"]
        what = f"{Path(argv[0]).name} {' '.join(argv[1:3])}".replace("\n", "; ")[:80]
        raise BenchError(f"{what} exited {child.returncode}: {tail[0][:200]}")
    return sample


def child_env(cache_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC")}
    if cache_dir is not None:
        env["TOKEFFC_CACHE_DIR"] = str(cache_dir)
    return env


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# --- statistics and the table -----------------------------------------------------------------------

@dataclass(frozen=True)
class Stat:
    median: float
    low: float
    high: float


def summarise(values: Iterable[float]) -> Stat:
    values = list(values)
    if not values:
        raise ValueError("no values to summarise")
    return Stat(statistics.median(values), min(values), max(values))


UNITS = {"s": (1.0, "s", 3), "ms": (1e3, "ms", 1), "us": (1e6, "µs", 2), "MiB": (1 / 1024, "MiB", 0)}


def quantity(value: float, unit: str) -> str:
    scale, suffix, digits = UNITS[unit]
    return f"{value * scale:.{digits}f} {suffix}"


def stat_cell(stat: Stat | None, unit: str) -> str:
    if stat is None:
        return "—"
    scale, _, digits = UNITS[unit]
    return f"{quantity(stat.median, unit)} ({stat.low * scale:.{digits}f}–{stat.high * scale:.{digits}f})"


@dataclass(frozen=True)
class Row:
    work: str
    mine: Stat | None
    floor: Stat | None
    unit: str
    ratio: str
    goal: str
    met: str

    def cells(self) -> list[str]:
        return [self.work, stat_cell(self.mine, self.unit), stat_cell(self.floor, self.unit), self.ratio,
                self.goal, self.met]


HEADER = ["work", "tokeffc median (min–max)", "floor median (min–max)", "ratio", "goal", "met?"]


def yes_no(ok: bool) -> str:
    return "yes" if ok else "no"


def ratio_row(work: str, mine: Stat, floor: Stat, unit: str, goal: float) -> Row:
    ratio = mine.median / floor.median
    return Row(work, mine, floor, unit, f"{ratio:.2f}x", f"≤ {goal:g}x", yes_no(ratio <= goal))


def above_row(work: str, mine: Stat, floor: Stat, goal_ms: float) -> Row:
    """A row whose goal is a time above the floor's (an import above bare start-up)."""
    extra = (mine.median - floor.median) * 1e3
    return Row(work, mine, floor, "ms", f"+{extra:.1f} ms", f"≤ +{goal_ms:g} ms", yes_no(extra <= goal_ms))


def limit_row(work: str, mine: Stat, unit: str, goal: float) -> Row:
    """A row with no floor: the median against an absolute limit (``goal`` in ``unit``)."""
    scale, suffix, _ = UNITS[unit]
    return Row(work, mine, None, unit, "—", f"≤ {goal:g} {suffix}", yes_no(mine.median * scale <= goal))


def error_row(work: str) -> Row:
    return Row(work, None, None, "s", "—", "—", "error (see the notes)")


def format_table(rows: Sequence[Row]) -> str:
    """Aligned plain text: the work left, every figure right."""
    grid = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(HEADER))]
    lines = []
    for number, line in enumerate(grid):
        cells = [c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(rows: Sequence[Row]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---", "---:", "---:", "---:", "---:", "---"]
    return "\n".join([line(HEADER), line(align), *(line(row.cells()) for row in rows)])


# --- the machine ------------------------------------------------------------------------------------

def machine() -> list[str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"machine: {cpu_model()}, {cores} cores, {platform.system()} {platform.release()}",
        f"python: {platform.python_implementation()} {platform.python_version()} ({PYTHON})",
        f"tokeffc: {tokeffc_version()}",
        f"load average at the start: {load_average()} (other work on the machine skews every figure)",
    ]


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tokeffc_version() -> str:
    from tokeffc import __version__

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}" + (f" (commit {commit})" if commit else "")


# --- the file list the floor reads ------------------------------------------------------------------

def source_paths(manifest_bytes: bytes, root: Path) -> list[Path]:
    """Every source file a build read: the manifest's modules (core included) and commands, sorted."""
    from tokeffc.manifest import read_manifest

    manifest = read_manifest(manifest_bytes)
    paths = {doc.path for doc in (*manifest.modules.values(), *manifest.commands.values())}
    return [root / path for path in sorted(paths)]


def release_paths(out: Path) -> tuple[Path, Path]:
    """The release folder and .tokb a build wrote under ``out``."""
    manifests = sorted(out.glob("*/*/manifest.json"))
    archives = sorted(out.glob("*.tokb"))
    if len(manifests) != 1 or len(archives) != 1:
        raise BenchError(f"expected one release under {out}, found {len(manifests)} folder(s), {len(archives)} .tokb")
    return manifests[0].parent, archives[0]


def tree_digest(out: Path) -> dict[str, str]:
    """Every file under ``out`` by relative path: its sha256 (to compare two builds' outputs byte for byte)."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def identical(a: dict[str, str], b: dict[str, str]) -> str:
    if a == b:
        return "yes"
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"NO ({len(differ)} files differ, e.g. {differ[0]})"


# --- the lab: scratch space, references built once, notes -------------------------------------------

@dataclass
class Reference:
    work: Workload
    out: Path  # a cold build's output folder, kept for comparisons
    folder: Path
    archive: Path
    sources: list[Path]
    file_list: Path  # the floor's input
    digest: dict[str, str]


@dataclass
class Lab:
    scratch: Path
    runs: int
    notes: list[str] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    end_load: str = "unknown"
    _references: dict[str, Reference] = field(default_factory=dict)

    def reference(self, name: str) -> Reference:
        """A cold build of the workload, made once (untimed): its release, sources and output digest."""
        if name not in self._references:
            self._references[name] = self._build_reference(name)
        return self._references[name]

    def _build_reference(self, name: str) -> Reference:
        if name == "bmad" and not BMAD.is_dir():
            raise BenchError(f"BMAD not found at {BMAD}")
        work = make_workload(name, self.scratch)
        _, out = cold_run(self, work, f"reference-{name}")
        folder, archive = release_paths(out)
        sources = source_paths((folder / "manifest.json").read_bytes(), work.root)
        file_list = self.scratch / f"sources-{name}.txt"
        file_list.write_text("".join(f"{p}\n" for p in sources), encoding="utf-8")
        return Reference(work, out, folder, archive, sources, file_list, tree_digest(out))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def interleave(self, mine: Runner, floor: Runner) -> tuple[list[Sample], list[Sample]]:
        """N runs of each, alternating, so that drift on the machine hits both alike."""
        mine_samples, floor_samples = [], []
        for number in range(self.runs):
            progress(f"run {number + 1}/{self.runs}")
            mine_samples.append(mine(number))
            floor_samples.append(floor(number))
        return mine_samples, floor_samples


def progress(text: str) -> None:
    print(f"\r  {text}   ", end="", file=sys.stderr, flush=True)


def seconds(samples: Sequence[Sample]) -> Stat:
    return summarise(s.seconds for s in samples)


# --- the groups -------------------------------------------------------------------------------------

def cold_run(lab: Lab, work: Workload, tag: str, root: Path | None = None) -> tuple[Sample, Path]:
    """One cold build: a fresh output folder and an empty cache folder. Returns the sample and the output."""
    out = lab.scratch / f"{tag}-out"
    shutil.rmtree(out, ignore_errors=True)
    return run_child(build_argv(work, out, root), child_env(fresh_dir(lab.scratch / f"{tag}-cache"))), out


def cold_build(lab: Lab, name: str) -> list[Row]:
    ref = lab.reference(name)
    floor_argv = [PYTHON, FLOOR, str(ref.file_list)]
    files, _, tokens, _ = run_child(floor_argv).stdout.split()  # a warm-up, and what the floor counted
    differ: list[int] = []

    def build(number: int) -> Sample:
        sample, out = cold_run(lab, ref.work, f"cold-{name}")
        if tree_digest(out) != ref.digest:
            differ.append(number + 1)
        return sample

    builds, floors = lab.interleave(build, lambda _: run_child(floor_argv))
    lab.note(f"build-{name}: the floor read {files} files, {int(tokens):,} tokens; every cold build's output "
             f"identical to the first: {yes_no(not differ)}" + (f" (runs {differ} differ)" if differ else ""))
    row = ratio_row(f"cold build, {ref.work.label}", seconds(builds), seconds(floors), "s", COLD_RATIO)
    lab.ratios[name] = row.mine.median / row.floor.median
    return [row, *memory_rows(name, builds, floors)]


def memory_rows(name: str, builds: Sequence[Sample], floors: Sequence[Sample]) -> list[Row]:
    if name != "8x":
        return []
    return [ratio_row("peak memory (max RSS), cold build 8x", summarise(s.max_rss_kib for s in builds),
                      summarise(s.max_rss_kib for s in floors), "MiB", MEMORY_RATIO)]


def growth_row(lab: Lab) -> list[Row]:
    if "1x" not in lab.ratios or "8x" not in lab.ratios:
        return []
    growth = lab.ratios["8x"] / lab.ratios["1x"]
    return [Row("linear growth: ratio at 8x ÷ ratio at 1x", None, None, "s", f"{growth:.2f}", f"≤ {GROWTH:g}",
                yes_no(growth <= GROWTH))]


def rebuild(lab: Lab, name: str) -> list[Row]:
    ref = lab.reference(name)
    _, out = cold_run(lab, ref.work, f"rebuild-{name}")  # fills the cache and the output
    argv, env = build_argv(ref.work, out), child_env(lab.scratch / f"rebuild-{name}-cache")
    # The cache trusts a file's recorded digest once the file has not changed for SETTLED_NS (the output
    # was just written): the state of any rebuild that comes more than that after the build before it.
    time.sleep(SETTLED_NS / 1e9)
    run_child(argv, env)  # records the digests of the now settled output
    import_cli = [PYTHON, "-c", "import tokeffc.cli"]
    run_child(import_cli)
    builds, imports = lab.interleave(lambda _: run_child(argv, env), lambda _: run_child(import_cli))
    lab.note(f"rebuild-{name}: output after {lab.runs} warm rebuilds identical to a cold build: "
             f"{identical(tree_digest(out), ref.digest)}")
    return [ratio_row(f"rebuild, nothing changed, {ref.work.label} (floor: import tokeffc.cli)",
                      seconds(builds), seconds(imports), "s", REBUILD_RATIO)]


def incremental(lab: Lab, name: str = "bmad") -> list[Row]:
    ref = lab.reference(name)
    root = copy_sources(ref.work.root, lab.scratch / f"copy-{name}")
    edit = appender(root / BMAD_EDIT)
    _, out = cold_run(lab, ref.work, f"incremental-{name}", root)  # the warm cache, before the first edit
    argv, env = build_argv(ref.work, out, root), child_env(lab.scratch / f"incremental-{name}-cache")
    differ: list[str] = []

    def changed(number: int) -> Sample:
        edit(f"Benchmark edit {number}: keep the story file in sync.")
        return run_child(argv, env)

    def cold(number: int) -> Sample:
        sample, cold_out = cold_run(lab, ref.work, f"incremental-cold-{name}", root)
        verdict = identical(tree_digest(out), tree_digest(cold_out))
        if verdict != "yes":
            differ.append(f"run {number + 1}: {verdict}")
        return sample

    builds, colds = lab.interleave(changed, cold)
    lab.note(f"incremental-{name}: {BMAD_EDIT} changed before each run; each incremental output identical to a "
             f"cold build of the same sources: {'; '.join(differ) or 'yes'}")
    return [ratio_row(f"one module changed, {ref.work.label} (floor: its cold build)", seconds(builds),
                      seconds(colds), "s", INCREMENTAL_RATIO)]


def copy_sources(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    return Path(shutil.copytree(source, target))


def appender(path: Path) -> Callable[[str], None]:
    """Set ``path`` to its original text plus one line (a different line makes a different file)."""
    original = path.read_text(encoding="utf-8")
    return lambda line: path.write_text(f"{original}\n{line}\n", encoding="utf-8")


def cli_weight(lab: Lab) -> list[Row]:
    ref = lab.reference("bmad" if BMAD.is_dir() else "1x")
    commands = {"tokeffc --help": ["--help"], f"tokeffc inspect ({ref.work.name} .tokb)": ["inspect", str(ref.archive)]}
    if has_command("diff"):
        other = edited_release(lab, ref)
        commands[f"tokeffc diff ({ref.work.name}, one file changed)"] = ["diff", str(ref.folder), str(other)]
    else:
        lab.note("cli: no 'tokeffc diff' command in this tokeffc; its row is skipped")
    lab.note(f"cli: heavy imports are {', '.join(HEAVY)} (python -X importtime, stdout not a terminal)")
    return [cli_row(lab, label, args) for label, args in commands.items()]


def cli_row(lab: Lab, label: str, args: list[str]) -> Row:
    argv, bare = [TOKEFFC, *args], [PYTHON, "-c", "pass"]
    progress(label)
    run_child(argv)
    timed, bares = lab.interleave(lambda _: run_child(argv), lambda _: run_child(bare))
    heavy = heavy_imports(args)
    mine, floor = seconds(timed), seconds(bares)
    return Row(f"{label} (floor: python -c pass)", mine, floor, "s", f"{mine.median / floor.median:.2f}x",
               "no heavy imports", "yes" if not heavy else "no: " + ", ".join(heavy))


def has_command(name: str) -> bool:
    return subprocess.run([TOKEFFC, name, "--help"], capture_output=True).returncode == 0


def edited_release(lab: Lab, ref: Reference) -> Path:
    """A release of the same workload with one source file changed, for ``diff``."""
    root = copy_sources(ref.work.root, lab.scratch / f"diff-{ref.work.name}")
    appender(root / ref.sources[-1].relative_to(ref.work.root))("One more line for diff to find.")
    _, out = cold_run(lab, ref.work, f"diff-{ref.work.name}", root)
    return release_paths(out)[0]


def heavy_imports(args: Sequence[str]) -> list[str]:
    """Which of HEAVY a command imports: ``python -X importtime`` on the console script, stdout not a terminal."""
    stderr = run_child([PYTHON, "-X", "importtime", TOKEFFC, *args]).stderr
    return [name for name in HEAVY if name in imported_modules(stderr)]


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from ``-X importtime`` lines (``import time: self | cumulative | name``), parents included."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                parts = name.split(".")
                names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


OPEN_PROBE = """\
import sys, time
from tokeffc.runtime import Release
path, command, tier = sys.argv[1:4]
start = time.perf_counter()
Release.open(path).context(command, tier=tier)
print(time.perf_counter() - start)
"""
WARM_PROBE = """\
import sys, timeit
from tokeffc.runtime import Release
path, command, tier, repeat, number = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
release = Release.open(path)
release.context(command, tier=tier)
print(*(t / number for t in timeit.repeat(lambda: release.context(command, tier=tier), number=number, repeat=repeat)))
"""


def runtime(lab: Lab) -> list[Row]:
    ref = lab.reference("bmad" if BMAD.is_dir() else "1x")
    command, tier = first_bundle(ref)
    lab.note(f"runtime: context({command!r}, tier={tier!r}) on {ref.work.label}")
    return [runtime_import(lab), *(release_open(lab, ref, kind, command, tier) for kind in ("folder", ".tokb")),
            warm_context(lab, ref, command, tier)]


def runtime_import(lab: Lab) -> Row:
    bare, load = [PYTHON, "-c", "pass"], [PYTHON, "-c", "import tokeffc.runtime"]
    run_child(load)
    loads, bares = lab.interleave(lambda _: run_child(load), lambda _: run_child(bare))
    return above_row("import tokeffc.runtime (floor: python -c pass)", seconds(loads), seconds(bares), IMPORT_MS)


def release_open(lab: Lab, ref: Reference, kind: str, command: str, tier: str) -> Row:
    """Release.open + the first context(), timed inside fresh processes (one figure per process)."""
    path = ref.folder if kind == "folder" else ref.archive
    probe = [PYTHON, "-c", OPEN_PROBE, str(path), command, tier]
    times = [float(run_child(probe).stdout) for _ in range(lab.runs)]
    return limit_row(f"Release.open + first context(), {ref.work.name} {kind}", summarise(times), "ms", OPEN_MS)


def warm_context(lab: Lab, ref: Reference, command: str, tier: str, number: int = 2000) -> Row:
    """A warm context() in one process: timeit, ``lab.runs`` repeats of ``number`` calls."""
    warm = run_child([PYTHON, "-c", WARM_PROBE, str(ref.archive), command, tier, str(lab.runs), str(number)])
    per_call = summarise(map(float, warm.stdout.split()))
    return limit_row(f"warm context(), {ref.work.name} .tokb ({lab.runs} × {number} calls)", per_call, "us", WARM_US)


def first_bundle(ref: Reference) -> tuple[str, str]:
    from tokeffc.manifest import read_manifest

    bundle = read_manifest((ref.folder / "manifest.json").read_bytes()).bundles[0]
    return bundle.command, bundle.tier


GROUPS: dict[str, Callable[[Lab], list[Row]]] = {
    "build-1x": lambda lab: cold_build(lab, "1x"),
    "build-8x": lambda lab: cold_build(lab, "8x"),
    "build-bmad": lambda lab: cold_build(lab, "bmad"),
    "build-market": lambda lab: cold_build(lab, "market"),
    "rebuild-bmad": lambda lab: rebuild(lab, "bmad"),
    "rebuild-8x": lambda lab: rebuild(lab, "8x"),
    "incremental-bmad": lambda lab: incremental(lab, "bmad"),
    "cli": cli_weight,
    "runtime": runtime,
}


def chosen_groups(only: Sequence[str]) -> list[str]:
    """The groups ``--only`` names (each NAME a group or its first word); every group when empty."""
    if not only:
        return list(GROUPS)
    unknown = [n for n in only if not any(g == n or g.split("-")[0] == n for g in GROUPS)]
    if unknown:
        raise SystemExit(f"bench: unknown group {unknown[0]!r}; groups: {', '.join(GROUPS)}")
    return [g for g in GROUPS if any(g == n or g.split("-")[0] == n for n in only)]


def run_groups(lab: Lab, names: Sequence[str]) -> list[Row]:
    rows = []
    for name in names:
        print(f"{name} …", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            rows += GROUPS[name](lab)
        except BenchError as exc:
            rows.append(error_row(name))
            lab.note(f"{name}: error: {exc}")
        print(f"\r  done in {time.perf_counter() - started:.0f} s", " " * 20, file=sys.stderr, flush=True)
    return rows + growth_row(lab)


def report(lab: Lab, head: list[str], rows: Sequence[Row], markdown: bool) -> str:
    head = [*head, f"load average at the end: {lab.end_load}",
            f"runs: {lab.runs} per figure, whole processes, interleaved; medians (min–max)"]
    table = format_markdown(rows) if markdown else format_table(rows)
    notes = [f"- {note}" for note in lab.notes]
    if markdown:
        return "\n".join([*(f"{line}  " for line in head), "", table, "", *notes]) + "\n"
    return "\n".join([*head, "", table, "", *notes]) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per figure instead of 11.")
    parser.add_argument("--runs", type=int, help="Runs per figure (default 11; 3 with --quick).")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"Only this group (repeatable): {', '.join(GROUPS)}, or a first word (build).")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="Also write the table as Markdown to FILE.")
    args = parser.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 11)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = chosen_groups(args.only)
    with tempfile.TemporaryDirectory(prefix="tokeffc-bench-") as tmp:
        lab = Lab(Path(tmp), args.runs)
        head = machine()
        rows = run_groups(lab, names)
        lab.end_load = load_average()
    print(report(lab, head, rows, markdown=False))
    if args.markdown:
        args.markdown.write_text(report(lab, head, rows, markdown=True), encoding="utf-8")
    return 1 if any(row.met.startswith("error") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
