"""``tokeffc diff``: two releases compared per bundle and per module, each change attributed.

Each side is a release (a ``.tokb``, a release folder or its ``manifest.json``, hashes verified) or
a framework's source folder, compiled on the fly; :func:`base_sides` builds a folder as it was at
a git ref. :func:`compare` returns plain frozen records; :func:`check_gates` says which gates failed.
The formatters (``diffreport``) lay the records out and decide nothing.

Attribution is exact: a bundle's tokens are the sum of its modules' emitted tokens plus the
compiler's own lines (``structure``), so the per-module deltas and the structure delta of a bundle
sum to its delta. Standard library only at import time: the pipeline (jinja2, tiktoken, networkx)
is imported only when a side is a source folder.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import Problems, Span, TokeffcError, UsageError
from .manifest import BundleEntry, DocEntry, Manifest, read_manifest, release_id

SCHEMA = "tokeffc.diff/1"
STRUCTURE = "(structure)"  # the attribution row for the compiler's own lines
RENDERED = "(rendered)"  # the row for new text at the same count that no edited source explains
MOVERS = 5  # the largest movers the summary names
GIT_TIMEOUT = 300  # seconds for one git command


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Side:
    """One side of the comparison."""

    source: str  # what the user named: a path, or "ROOT at REF"
    built: bool  # compiled from sources for this diff (not a release read from disk)
    release_id: str
    manifest: Manifest


@dataclass(frozen=True, slots=True)
class Cause:
    """One module's part in a bundle's change; the causes of a bundle sum to its delta."""

    module: str  # the module's id, or STRUCTURE
    path: str  # its source file ("" for STRUCTURE)
    change: str  # added | removed | grew | shrank | edited, rendered (same tokens) | tier | load | structure
    old: int  # tokens it emitted into the old bundle (0 when absent)
    new: int
    detail: str = ""  # e.g. "now offered on request (on_demand)"

    @property
    def delta(self) -> int:
        return self.new - self.old


@dataclass(frozen=True, slots=True)
class BundleChange:
    command: str
    tier: str
    change: str  # added | removed | changed | unchanged
    old: int | None  # tokens (None: no bundle on that side)
    new: int | None
    budget: tuple[int | None, int | None]  # old, new
    status: tuple[str | None, str | None]  # ok | warn | over, old and new
    causes: tuple[Cause, ...] = ()  # for a changed bundle

    @property
    def delta(self) -> int:
        return (self.new or 0) - (self.old or 0)

    @property
    def percent(self) -> float | None:
        return percent(self.old, self.new) if self.old is not None and self.new is not None else None

    @property
    def name(self) -> str:
        return f"{self.command} [{self.tier}]"

    @property
    def newly_over(self) -> bool:
        return self.status[1] == "over" and self.status[0] != "over"


@dataclass(frozen=True, slots=True)
class ModuleChange:
    """A source file (core, module or command) as written, and the bundles that carry it."""

    id: str
    path: str
    role: str
    change: str  # added | removed | grew | shrank | edited | moved | unchanged
    old: int | None  # tokens as written (None: not in that release)
    new: int | None
    bundles: tuple[int, int]  # bundles carrying its text, old and new
    chunks: tuple[int, int]  # bundles offering it on request, old and new

    @property
    def delta(self) -> int:
        return (self.new or 0) - (self.old or 0)


@dataclass(frozen=True, slots=True)
class Total:
    old: int
    new: int

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def percent(self) -> float | None:
        return percent(self.old, self.new)


@dataclass(frozen=True, slots=True)
class Summary:
    total: Total  # every bundle's tokens, each side
    tiers: tuple[tuple[str, Total], ...]  # the same per tier, smallest tier first
    median_delta: float | None  # over the bundles present on both sides (None: there are none)
    median_percent: float | None
    counts: tuple[tuple[str, int], ...]  # changed, added, removed, unchanged
    movers: tuple[BundleChange, ...]  # the largest changes, largest first
    newly_over: tuple[BundleChange, ...]  # over budget now, and not before


@dataclass(frozen=True, slots=True)
class Diff:
    old: Side
    new: Side
    bundles: tuple[BundleChange, ...]  # by command, then tier (smallest first)
    modules: tuple[ModuleChange, ...]  # by id
    summary: Summary
    notes: tuple[str, ...] = ()  # what makes the two sides less comparable (another encoding, framework)


@dataclass(frozen=True, slots=True)
class Gates:
    """Thresholds that fail the diff (exit 1). None of them set: diff only reports."""

    above_percent: float | None = None  # a bundle or the total grew more than this percent
    above_tokens: int | None = None  # a bundle grew more than this many tokens
    on_over: bool = False  # a bundle of the new release is over its budget

    def __post_init__(self) -> None:
        if self.above_percent is not None and not (math.isfinite(self.above_percent) and self.above_percent >= 0):
            raise UsageError(f"--fail-above {self.above_percent} is not a percentage", hint="pass a number >= 0")

    def named(self) -> tuple[tuple[str, float | int | bool], ...]:
        """The gates that are set, by option name."""
        gates = (("fail-above", self.above_percent), ("fail-above-tokens", self.above_tokens),
                 ("fail-on-over", self.on_over or None))
        return tuple((name, value) for name, value in gates if value is not None)


@dataclass(frozen=True, slots=True)
class GateFailure:
    gate: str  # fail-above | fail-above-tokens | fail-on-over
    subject: str  # "command [tier]" or "total"
    message: str


def percent(old: int, new: int) -> float | None:
    """The change in percent of ``old``, to two decimals; None when ``old`` is zero."""
    return round(100 * (new - old) / old, 2) if old else None


# --- loading a side ------------------------------------------------------------------------------


def load_side(path: Path) -> Side:
    """A release (verified) or, for a folder without ``manifest.json``, a framework built on the fly."""
    if path.is_dir() and not (path / "manifest.json").exists():
        return build_side(path, str(path))
    return open_side(path)


def open_side(path: Path) -> Side:
    return Side(str(path), False, *read_release(path))


def read_release(path: Path) -> tuple[str, Manifest]:
    """A release's id and typed manifest, every file's sha256 verified (tampered: :class:`ReleaseError`)."""
    from .runtime import Release

    with Release.open(path) as release:
        release.verify()
        return release.release_id, release.manifest


def build_side(root: Path, source: str) -> Side:
    """Compile the framework at ``root`` in memory, as ``tokeffc check`` does (leaving out a dist/ folder)."""
    from .pipeline import BuildOptions, compile_framework

    dist = (Path("dist").resolve(), (root / "dist").resolve())
    result = compile_framework(root, BuildOptions(exclude_dirs=dist))
    data = result.release.manifest_bytes
    return Side(source, True, release_id(data), read_manifest(data, source))


def sides(old: str | None, new: str | None, base: str | None) -> tuple[Side, Side]:
    """The two sides the command line names: OLD and NEW, or ``--base REF [ROOT]``."""
    if base is not None:
        if new is not None:
            raise UsageError("with --base, give only the framework folder (default: .)",
                             hint="tokeffc diff --base REF [ROOT]")
        return base_sides(Path(old or "."), base)
    if old is None or new is None:
        raise UsageError("diff needs OLD and NEW", hint="tokeffc diff OLD NEW, or tokeffc diff --base REF [ROOT]")
    return load_side(Path(old)), load_side(Path(new))


def base_sides(root: Path, ref: str) -> tuple[Side, Side]:
    """The framework at ``root`` as it was at git ``ref``, and as it is in the working tree."""
    with checkout_at(root, ref) as (old_root, located):
        try:
            old = build_side(old_root, f"{root} at {ref}")
        except TokeffcError as exc:
            raise relocated(exc, old_root, located) from None
    return old, build_side(root, str(root))


@contextmanager
def checkout_at(root: Path, ref: str) -> Iterator[tuple[Path, str]]:
    """``root`` exported from ``ref`` into a temporary folder (removed afterwards), and its ``REF:path``."""
    if ref.startswith("-"):
        raise UsageError(f"'{ref}' is not a git ref", hint="name a branch, tag or commit")
    if not root.is_dir():
        raise TokeffcError(f"framework root '{root}' is not a folder", hint="pass the folder that holds tokeffc.yaml")
    top = Path(_git(root, "rev-parse", "--show-toplevel"))
    commit = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                  fail=f"'{ref}' is not a commit in this repository",
                  hint="name a branch, tag or commit; in a shallow CI clone, fetch it first (fetch-depth: 0)")
    rel = Path(os.path.relpath(root.resolve(), top.resolve())).as_posix()
    if rel.startswith("../"):
        raise UsageError(f"'{root}' is not inside its git repository", hint="run diff --base inside the checkout")
    with tempfile.TemporaryDirectory(prefix="tokeffc-base-") as tmp:
        _export(top, commit, rel, ref, Path(tmp))
        yield Path(tmp) / rel, f"{ref}:{rel}"


def _git(cwd: Path, *args: str, fail: str = "", hint: str = "") -> str:
    """Run git in ``cwd``; its output, or a :class:`UsageError` saying ``fail``."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT)
    except FileNotFoundError:
        raise UsageError("--base needs git, which is not installed", hint="install git, or pass OLD and NEW") from None
    except (NotADirectoryError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"git {args[0]} failed in '{cwd}': {exc}", hint="check the folder and the ref") from None
    if done.returncode != 0:
        raise UsageError(fail or f"'{cwd}' is not in a git checkout ({_first_line(done.stderr)})",
                         hint=hint or "--base compares with a git ref; pass OLD and NEW otherwise")
    return done.stdout.strip()


def _export(top: Path, commit: str, rel: str, ref: str, dest: Path) -> None:
    """``git archive`` the commit's ``rel`` folder and unpack it under ``dest`` (no links out of it)."""
    if rel != ".":
        _git(top, "cat-file", "-e", f"{commit}:{rel}", fail=f"'{rel}' does not exist at {ref}",
             hint="pick a ref where the framework exists, or pass OLD and NEW")
    archive = dest / ".tokeffc-base.tar"
    _git(top, "archive", "--format=tar", f"--output={archive}", commit, *([rel] if rel != "." else []),
         fail=f"git archive of {ref} failed")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise TokeffcError(f"could not unpack {ref}: {exc}", hint="check the repository") from None
    finally:
        archive.unlink(missing_ok=True)


def relocated(exc: TokeffcError, tmp_root: Path, located: str) -> TokeffcError:
    """An error in the exported tree, pointing at ``REF:path`` rather than the temporary folder."""
    for problem in (exc.problems if isinstance(exc, Problems) else (exc,)):
        if problem.span and os.path.isabs(problem.span.path):
            inside = os.path.relpath(problem.span.path, tmp_root)
            if not inside.startswith(".."):
                problem.span = Span(inside, problem.span.line)
    return exc.located(located)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["no message"])[0][:200]


# --- comparing ------------------------------------------------------------------------------------


def compare(old: Side, new: Side) -> Diff:
    bundles = bundle_changes(old.manifest, new.manifest)
    return Diff(old, new, bundles, module_changes(old.manifest, new.manifest),
                summarise(bundles, _tier_order(old.manifest, new.manifest)), notes(old.manifest, new.manifest))


def notes(old: Manifest, new: Manifest) -> tuple[str, ...]:
    found = []
    if old.framework != new.framework:
        found.append(f"the sides are two frameworks, '{old.framework}' and '{new.framework}'")
    if old.encoding != new.encoding:
        found.append(f"the sides count tokens with different encodings ({old.encoding}, {new.encoding}): "
                     "deltas include the change of encoding")
    return tuple(found)


def bundle_changes(old: Manifest, new: Manifest) -> tuple[BundleChange, ...]:
    before = {(b.command, b.tier): b for b in old.bundles}
    after = {(b.command, b.tier): b for b in new.bundles}
    rank = {tier: i for i, tier in enumerate(_tier_order(old, new))}
    keys = sorted(set(before) | set(after), key=lambda key: (key[0], rank[key[1]], key[1]))
    edited = _edited(old, new)
    return tuple(bundle_change(key, before.get(key), after.get(key), edited) for key in keys)


def _edited(old: Manifest, new: Manifest) -> frozenset[str]:
    """Source paths whose text changed between the sides."""
    before = {doc.path: doc.sha256 for doc in (*old.modules.values(), *old.commands.values())}
    return frozenset(doc.path for doc in (*new.modules.values(), *new.commands.values())
                     if before.get(doc.path, doc.sha256) != doc.sha256)


def bundle_change(key: tuple[str, str], a: BundleEntry | None, b: BundleEntry | None,
                  edited: frozenset[str] = frozenset()) -> BundleChange:
    causes = attribute(a, b, edited) if a and b else ()
    if a is None or b is None:
        change = "added" if a is None else "removed"
    else:
        same = a.sha256 == b.sha256 and (a.budget, a.status) == (b.budget, b.status)
        change = "unchanged" if same and not causes else "changed"
    return BundleChange(key[0], key[1], change, _get(a, "tokens"), _get(b, "tokens"),
                        (_get(a, "budget"), _get(b, "budget")), (_get(a, "status"), _get(b, "status")), causes)


def _get(record, name: str):
    """A field of a record that may be absent on one side."""
    return None if record is None else getattr(record, name)


def attribute(a: BundleEntry, b: BundleEntry, edited: frozenset[str] = frozenset()) -> tuple[Cause, ...]:
    """The modules that changed bundle ``a`` into ``b``, largest first, then those whose text changed at the
    same count (when the bundle's text changed), then the compiler's own lines."""
    old, new = _shares(a), _shares(b)
    causes = [_cause(mid, old.get(mid), new.get(mid), a, b) for mid in sorted(set(old) | set(new))]
    causes = sorted((c for c in causes if c.delta), key=lambda c: (-abs(c.delta), c.module))
    if a.sha256 != b.sha256:
        causes += [_rewritten(mid, *new[mid]) for mid in sorted(new)
                   if old.get(mid, (None, None))[1] == new[mid][1] and new[mid][0] in edited]
    lines = (_structure(a), _structure(b))
    if lines[0] != lines[1]:
        causes.append(Cause(STRUCTURE, "", "structure", *lines, _index_change(a, b)))
    if not causes and a.sha256 != b.sha256:
        causes.append(Cause(RENDERED, "", "rendered", b.tokens, b.tokens,
                            "new text at the same count from unchanged sources: a template value "
                            "(the release version, a variable) or tokeffc's own lines"))
    return tuple(causes)


def _rewritten(mid: str, path: str, tokens: int) -> Cause:
    """A module whose source changed while its count in the bundle did not."""
    return Cause(mid, path, "edited", tokens, tokens, "new text, same tokens")


def _shares(bundle: BundleEntry) -> dict[str, tuple[str, int]]:
    """Module id -> (path, tokens emitted into the bundle)."""
    shares: dict[str, tuple[str, int]] = {}
    for share in bundle.modules:
        path, tokens = shares.get(share.id, (share.path, 0))
        shares[share.id] = (path, tokens + share.tokens)
    return shares


def _structure(bundle: BundleEntry) -> int:
    """The compiler's own lines: the bundle's tokens beyond its modules'."""
    return bundle.tokens - sum(share.tokens for share in bundle.modules)


def _cause(mid: str, old: tuple[str, int] | None, new: tuple[str, int] | None,
           a: BundleEntry, b: BundleEntry) -> Cause:
    if old is None:
        assert new is not None  # a module on neither side causes nothing
        change, detail = _why_in(mid, a)
        return Cause(mid, new[0], change, 0, new[1], detail)
    if new is None:
        change, detail = _why_out(mid, b)
        return Cause(mid, old[0], change, old[1], 0, detail)
    return Cause(mid, new[0], "grew" if new[1] > old[1] else "shrank", old[1], new[1])


def _why_in(mid: str, old: BundleEntry) -> tuple[str, str]:
    """Why a module the old bundle lacked is now in it."""
    chunk = next((c for c in old.chunks if c.id == mid), None)
    if chunk:
        return "load", f"was offered on request ({chunk.load}), now inline"
    if any(d.id == mid for d in old.dropped):
        return "tier", "was above the tier, now within it"
    return "added", ""


def _why_out(mid: str, new: BundleEntry) -> tuple[str, str]:
    """Why a module the old bundle carried is not in the new one."""
    chunk = next((c for c in new.chunks if c.id == mid), None)
    if chunk:
        return "load", f"now offered on request ({chunk.load})"
    dropped = next((d for d in new.dropped if d.id == mid), None)
    if dropped:
        return "tier", f"now above the tier (needs {dropped.tier})" if dropped.tier else "now above the tier"
    return "removed", ""


def _index_change(a: BundleEntry, b: BundleEntry) -> str:
    """What changed in the bundle's chunk index, which is part of the compiler's own lines."""
    old = {c.id: c.cache_key for c in a.chunks}
    new = {c.id: c.cache_key for c in b.chunks}
    parts = [f"+{i}" for i in sorted(set(new) - set(old))] + [f"-{i}" for i in sorted(set(old) - set(new))]
    parts += [f"~{i}" for i in sorted(set(old) & set(new)) if old[i] != new[i]]
    return f"chunk index: {', '.join(parts)}" if parts else ""


def module_changes(old: Manifest, new: Manifest) -> tuple[ModuleChange, ...]:
    before, after = _documents(old), _documents(new)
    keys = sorted(set(before) | set(after), key=lambda key: (key[1], key[0]))
    return tuple(_module_change(before.get(key), after.get(key), old, new) for key in keys)


def _documents(manifest: Manifest) -> dict[tuple[str, str], tuple[str, DocEntry]]:
    """(group, id) -> (id, entry) for every module and command (a command may share a module's id)."""
    docs = {("module", mid): (mid, doc) for mid, doc in manifest.modules.items()}
    docs.update({("command", cid): (cid, doc) for cid, doc in manifest.commands.items()})
    return docs


def _module_change(a: tuple[str, DocEntry] | None, b: tuple[str, DocEntry] | None,
                   old: Manifest, new: Manifest) -> ModuleChange:
    found = b or a
    assert found is not None  # a module on neither side is never compared
    mid, doc = found
    carried = (_carriers(a, old), _carriers(b, new))
    offered = (_offers(a, old), _offers(b, new))
    old_doc, new_doc = (a[1] if a else None), (b[1] if b else None)
    change = _doc_change(old_doc, new_doc, carried[0] != carried[1] or offered[0] != offered[1])
    return ModuleChange(mid, doc.path, doc.role, change, _get(old_doc, "tokens"), _get(new_doc, "tokens"),
                        carried, offered)


def _doc_change(a: DocEntry | None, b: DocEntry | None, moved: bool) -> str:
    if a is None or b is None:
        return "added" if a is None else "removed"
    if a.tokens != b.tokens:
        return "grew" if b.tokens > a.tokens else "shrank"
    if a.sha256 != b.sha256:
        return "edited"
    return "moved" if moved or (a.tier, a.load) != (b.tier, b.load) else "unchanged"


def _carriers(doc: tuple[str, DocEntry] | None, manifest: Manifest) -> int:
    if doc is None:
        return 0
    return sum(any(share.path == doc[1].path for share in bundle.modules) for bundle in manifest.bundles)


def _offers(doc: tuple[str, DocEntry] | None, manifest: Manifest) -> int:
    if doc is None:
        return 0
    return sum(any(chunk.id == doc[0] for chunk in bundle.chunks) for bundle in manifest.bundles)


def _tier_order(old: Manifest, new: Manifest) -> tuple[str, ...]:
    """The tiers of both sides, smallest first (the new release's order, then tiers it no longer has)."""
    return (*new.tier_names, *(t for t in old.tier_names if t not in new.tiers))


# --- summary --------------------------------------------------------------------------------------


def summarise(bundles: tuple[BundleChange, ...], tiers: tuple[str, ...]) -> Summary:
    both = [b for b in bundles if b.old is not None and b.new is not None]
    percents = [b.percent for b in both if b.percent is not None]
    return Summary(
        total=_total(bundles),
        tiers=tuple((tier, _total([b for b in bundles if b.tier == tier])) for tier in tiers),
        median_delta=float(statistics.median([b.delta for b in both])) if both else None,
        median_percent=round(statistics.median(percents), 2) if percents else None,
        counts=tuple((kind, sum(b.change == kind for b in bundles))
                     for kind in ("changed", "added", "removed", "unchanged")),
        movers=_movers(bundles),
        newly_over=tuple(b for b in bundles if b.newly_over),
    )


def _total(bundles) -> Total:
    return Total(sum(b.old or 0 for b in bundles), sum(b.new or 0 for b in bundles))


def _movers(bundles: tuple[BundleChange, ...]) -> tuple[BundleChange, ...]:
    moved = [b for b in bundles if b.delta]
    # Largest change first, then the largest share of the bundle; ties keep bundle order (sorted is stable).
    return tuple(sorted(moved, key=lambda b: (-abs(b.delta), -abs(b.percent or 0)))[:MOVERS])


# --- gates ----------------------------------------------------------------------------------------


def check_gates(diff: Diff, gates: Gates) -> tuple[GateFailure, ...]:
    """Every gate that failed, in bundle order, the total last."""
    failures: list[GateFailure] = []
    for bundle in diff.bundles:
        failures += _bundle_gates(bundle, gates)
    total = diff.summary.total
    if gates.above_percent is not None and _grew_above(total.old, total.new, gates.above_percent):
        failures.append(GateFailure("fail-above", "total", f"the total grew {_pct(total.old, total.new)} "
                                    f"({total.old:,} -> {total.new:,} tokens), above --fail-above "
                                    f"{gates.above_percent:g}%"))
    return tuple(failures)


def _bundle_gates(bundle: BundleChange, gates: Gates) -> list[GateFailure]:
    failures = _growth_gates(bundle, bundle.old, bundle.new, gates) if bundle.old is not None and \
        bundle.new is not None else []
    if gates.on_over and bundle.status[1] == "over":
        failures.append(GateFailure("fail-on-over", bundle.name, f"{bundle.name} is over its budget "
                                    f"({bundle.new:,} of {bundle.budget[1]:,} tokens) (--fail-on-over)"))
    return failures


def _growth_gates(bundle: BundleChange, old: int, new: int, gates: Gates) -> list[GateFailure]:
    """The gates on how much a bundle present on both sides grew."""
    failures, moved = [], f"({old:,} -> {new:,} tokens)"
    if gates.above_percent is not None and _grew_above(old, new, gates.above_percent):
        failures.append(GateFailure("fail-above", bundle.name, f"{bundle.name} grew {_pct(old, new)} {moved}, "
                                    f"above --fail-above {gates.above_percent:g}%"))
    if gates.above_tokens is not None and bundle.delta > gates.above_tokens:
        failures.append(GateFailure("fail-above-tokens", bundle.name, f"{bundle.name} grew {bundle.delta:,} "
                                    f"tokens {moved}, above --fail-above-tokens {gates.above_tokens:,}"))
    return failures


def _grew_above(old: int, new: int, threshold: float) -> bool:
    """Grew by more than ``threshold`` percent of ``old``, exactly (any growth from zero counts)."""
    return new > old and (old == 0 or 100 * (new - old) > threshold * old)


def _pct(old: int, new: int) -> str:
    value = percent(old, new)
    return "from nothing" if value is None else f"{value:+.2f}%"

