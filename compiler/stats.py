"""``tokeffc stats``: where a framework's tokens go, what is always loaded and who needs it, what
repeats, and what to change. Every effect is computed by rebuilding with the change, never estimated."""

from __future__ import annotations

import posixpath
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from types import MappingProxyType

from .assemble import Assembler
from .baseline import attached_closure
from .errors import Span
from .markdown import split_blocks
from .passes import dedupe_key
from .pipeline import BuildResult
from .selection import always_loaded, select_bundles
from .sources import DocPath

MAX_ROWS = 10
MAX_UNREACHED_ROWS = 5
MIN_SUGGESTED_TOKENS = 200  # below this, deferring a module saves less than its index row costs to read


@dataclass(frozen=True, slots=True)
class KindShare:
    kind: str  # a role, or structure
    written: int  # tokens in the sources, as written
    emitted: int  # tokens across every bundle of the release


@dataclass(frozen=True, slots=True)
class ModuleWeight:
    id: str
    path: str
    tokens: int  # as written
    immediate_in: int  # bundles that carry its text
    chunk_in: int  # bundles that offer it as a chunk


@dataclass(frozen=True, slots=True)
class AlwaysLoaded:
    """A file the host loads for every entry: which entries name it, and what deferring it would save."""

    id: str
    path: str
    tokens: int
    referred_by: tuple[str, ...]  # entry ids
    evidence: tuple[str, ...]  # file:line of each reference
    saving_per_command: int  # median over the other entries' smallest-tier bundles, by rebuilding


@dataclass(frozen=True, slots=True)
class RepeatedBlock:
    tokens: int  # of one copy
    places: tuple[Span, ...]

    @property
    def repeated_tokens(self) -> int:
        return self.tokens * (len(self.places) - 1)


@dataclass(frozen=True, slots=True)
class Recommendation:
    action: str
    target: str  # module id or file
    effect: int  # tokens over the release (negative saves); for "factor-out", over the sources
    reason: str


@dataclass(frozen=True, slots=True)
class Stats:
    baseline: str
    kinds: tuple[KindShare, ...]
    heaviest: tuple[ModuleWeight, ...]
    always: tuple[AlwaysLoaded, ...]
    repeated: tuple[RepeatedBlock, ...]
    recommendations: tuple[Recommendation, ...]
    release_tokens: int  # all bundles of the release, as emitted


def collect_stats(result: BuildResult) -> Stats:
    repeated = repeated_blocks(result)
    return Stats(
        baseline=result.manifest.baseline.kind,
        kinds=_kinds(result),
        heaviest=_heaviest(result),
        always=_always_loaded(result),
        repeated=repeated,
        recommendations=(*_defer_single_use(result), *_unreached(result), *_factor_out(repeated)),
        release_tokens=_release_tokens(result),
    )


def _release_tokens(result: BuildResult) -> int:
    return sum(b.content.tokens for b in result.bundles)


def _kinds(result: BuildResult) -> tuple[KindShare, ...]:
    documents, written = result.framework.documents, result.renderings.written
    emitted: Counter = Counter()
    for bundle in result.bundles:
        for share in bundle.content.docs:
            emitted[documents[share.path].role] += share.emitted
        emitted["structure"] += bundle.content.structure
    source: Counter = Counter()
    for path, tokens in written.items():
        source[documents[path].role] += tokens
    roles = sorted(set(source) | set(emitted) - {"structure"}) + ["structure"]
    return tuple(KindShare(kind, source[kind], emitted[kind]) for kind in roles)


def _heaviest(result: BuildResult) -> tuple[ModuleWeight, ...]:
    written = result.renderings.written
    immediate = Counter(share.path for b in result.bundles for share in b.content.docs)
    chunked = Counter(chunk.path for b in result.bundles for _, chunk in b.chunks)
    entry_roles = result.framework.config.entries
    modules = sorted((d for d in result.framework.documents.values() if d.role not in entry_roles),
                     key=lambda d: (-written[d.path], d.path))[:MAX_ROWS]
    return tuple(ModuleWeight(d.id, d.path, written[d.path], immediate[d.path], chunked[d.path]) for d in modules)


def _always_loaded(result: BuildResult) -> tuple[AlwaysLoaded, ...]:
    framework = result.framework
    always = sorted(attached_closure(framework, always_loaded(framework)))
    rows = []
    for path in always:
        referrers = _referrers(result, path)
        saving = _deferral_saving(result, path, {e for e, _ in referrers})
        rows.append(AlwaysLoaded(framework.documents[path].id, path, result.renderings.written[path],
                                 tuple(sorted({e for e, _ in referrers})), tuple(sorted({w for _, w in referrers})),
                                 saving))
    return tuple(sorted(rows, key=lambda r: (-r.saving_per_command, r.path)))


def _referrers(result: BuildResult, path: DocPath) -> list[tuple[str, str]]:
    """(entry id, file:line) for each entry whose own files refer to ``path`` (not through the core)."""
    framework = result.framework
    core = set(attached_closure(framework, always_loaded(framework)))
    found: list[tuple[str, str]] = []
    for entry in result.entries:
        own = attached_closure(framework, [p for p in (entry.path, *entry.focus) if p]) - core
        for source in own:
            for target, edges in framework.edges_from(source):
                if target == path:
                    found += [(entry.id, str(e.span)) for e in edges]
    return found


def _deferral_saving(result: BuildResult, path: DocPath, keep_for: set[str]) -> int:
    """Median tokens saved per other entry at the smallest tier if ``path`` loaded on demand (a rebuild)."""
    tier = result.framework.config.tier_names[0]
    before = {b.entry: b.content.tokens for b in result.bundles if b.tier == tier}
    after = _tokens_with_loads(result, {path: "on_demand"}, tier)
    savings = [before[e] - after[e, tier] for e in before if (e, tier) in after and e not in keep_for]
    return int(statistics.median(savings)) if savings else 0


def _tokens_with_loads(result: BuildResult, loads: dict[DocPath, str],
                       tier: str | None = None) -> dict[tuple[str, str], int]:
    """Each (entry, tier) bundle's tokens if these documents had these loads: a real selection and assembly."""
    framework = result.framework
    documents = {p: replace(d, load=loads.get(p, d.load)) for p, d in framework.documents.items()}
    changed = replace(framework, documents=MappingProxyType(documents))
    if any(framework.documents[p].role == "core" for p in loads):
        changed = replace(changed, core_order=tuple(p for p in framework.core_order if p not in loads))
    assembler = Assembler(changed, result.renderings, result.counter, result.passes)
    built = {(b.entry, b.tier) for b in result.bundles if tier is None or b.tier == tier}
    return {(s.entry.id, s.tier): assembler.bundle(s).content.tokens
            for s in select_bundles(changed, result.renderings, result.entries)
            if (s.entry.id, s.tier) in built}


def repeated_blocks(result: BuildResult) -> tuple[RepeatedBlock, ...]:
    """Blocks that stand, to the letter, in more than one place of the sources."""
    places: dict[str, list[Span]] = defaultdict(list)
    for doc in result.framework.documents.values():
        if doc.format != "markdown":
            continue
        line = doc.head.count("\n") + 1
        for block in split_blocks(doc.body):
            key = dedupe_key((block,))
            if key is not None:
                places[key].append(Span(doc.path, line + len(block) - len(block.lstrip("\n"))))
            line += block.count("\n")
    found = [RepeatedBlock(result.counter.count(key + "\n"), tuple(spans)) for key, spans in places.items()
             if len(spans) > 1]
    return tuple(sorted(found, key=lambda r: (-r.repeated_tokens, str(r.places[0])))[:MAX_ROWS])


def _factor_out(repeated: tuple[RepeatedBlock, ...]):
    for block in repeated[:3]:
        where = ", ".join(map(str, block.places[:3])) + (f" and {len(block.places) - 3} more"
                                                           if len(block.places) > 3 else "")
        yield Recommendation(
            "factor-out", str(block.places[0]), -block.repeated_tokens,
            f"the same {block.tokens}-token block stands in {len(block.places)} places ({where}): "
            "move it into one module and require it (saving is of the sources)")


def _defer_single_use(result: BuildResult):
    """Immediate modules that only one entry carries: what deferring each would save."""
    documents, written = result.framework.documents, result.renderings.written
    carriers: dict[DocPath, set[str]] = defaultdict(set)
    for bundle in result.bundles:
        for share in bundle.content.docs:
            if documents[share.path].role not in ("core", *result.framework.config.entries):
                carriers[share.path].add(bundle.entry)
    candidates = sorted((p for p, entries in carriers.items() if len(entries) == 1
                         and written[p] >= MIN_SUGGESTED_TOKENS), key=lambda p: (-written[p], p))[:3]
    before = _release_tokens(result)
    for path in candidates:
        after = sum(_tokens_with_loads(result, {path: "on_demand"}).values())
        count = sum(1 for b in result.bundles if any(s.path == path for s in b.content.docs))
        if after < before:
            bundles = f"{count} bundle{'s' * (count > 1)}"
            yield Recommendation(
                "defer", documents[path].id, after - before,
                f"{written[path]:,} tokens, immediate in {bundles} of '{next(iter(carriers[path]))}' only: "
                "make it load: on_demand (the effect is a rebuild with that change)")


def _unreached(result: BuildResult):
    """Files no reference tokeffc follows reaches. The host may reach them another way (a skill by its
    description, a rule read in prose, a subagent): only a file nothing names is a candidate to delete."""
    framework, written = result.framework, result.renderings.written
    unreached = sorted(framework.unreached, key=lambda p: (-written[p], p))
    named = _named_somewhere(result, unreached[:MAX_UNREACHED_ROWS])
    for path in unreached[:MAX_UNREACHED_ROWS]:
        doc = framework.documents[path]
        if path in named:
            yield Recommendation("check", doc.id, 0, f"no reference detected, but {named[path]} names it: if the "
                                 "host reaches it another way, leave it; else add a rule or a reference")
        else:
            yield Recommendation("remove?", doc.id, -written[path], "nothing in the framework names it: delete it "
                                 "if nothing outside the framework uses it (saving is of the sources)")
    rest = unreached[MAX_UNREACHED_ROWS:]
    if rest:
        yield Recommendation("check", f"{len(rest)} more files", 0,
                             "no reference detected to them either (the manifest's 'unreached' lists all)")


def _named_somewhere(result: BuildResult, paths: list[DocPath]) -> dict[DocPath, str]:
    """For each path, the first file:line of another file whose text names it (by file name or stem)."""
    found: dict[DocPath, str] = {}
    patterns = {p: re.compile(rf"(?<![\w-]){re.escape(posixpath.splitext(posixpath.basename(p))[0])}(?![\w-])")
                for p in paths}
    for doc in result.framework.documents.values():
        for path, pattern in patterns.items():
            if path in found or doc.path == path:
                continue
            match = pattern.search(doc.text)
            if match:
                found[path] = f"{doc.path}:{doc.text.count(chr(10), 0, match.start()) + 1}"
    return found
