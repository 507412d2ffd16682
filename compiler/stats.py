"""``tokeffc stats``: where a framework's tokens go, what repeats, and what to change.

Every recommendation's effect is computed by rebuilding with the change applied, never estimated.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from types import MappingProxyType

from .assemble import Assembler
from .errors import Span
from .markdown import split_blocks
from .passes import dedupe_key
from .pipeline import BuildResult
from .rendering import Renderer
from .selection import select_bundles

MAX_ROWS = 10
MAX_UNREACHED_ROWS = 5
MIN_SUGGESTED_TOKENS = 200  # below this, deferring a module saves less than its index row costs to read


@dataclass(frozen=True, slots=True)
class KindShare:
    kind: str  # core | command | module | structure
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
    kinds: tuple[KindShare, ...]
    heaviest: tuple[ModuleWeight, ...]
    repeated: tuple[RepeatedBlock, ...]
    recommendations: tuple[Recommendation, ...]
    release_tokens: int  # all bundles of the release, as emitted


def collect_stats(result: BuildResult) -> Stats:
    written = Renderer(result.framework, result.counter, result.passes).written_counts()
    repeated = repeated_blocks(result)
    return Stats(
        kinds=_kinds(result, written),
        heaviest=_heaviest(result, written),
        repeated=repeated,
        recommendations=(*_defer_single_use(result, written), *_drop_unreached(result, written),
                         *_factor_out(repeated)),
        release_tokens=_release_tokens(result.bundles),
    )


def _release_tokens(bundles) -> int:
    return sum(b.content.tokens for b in bundles)


def _kinds(result: BuildResult, written: dict[str, int]) -> tuple[KindShare, ...]:
    documents = result.framework.documents
    emitted: Counter = Counter()
    for bundle in result.bundles:
        for share in bundle.content.docs:
            emitted[documents[share.path].kind] += share.emitted
        emitted["structure"] += bundle.content.structure
    source = Counter()
    for path, tokens in written.items():
        source[documents[path].kind] += tokens
    return tuple(KindShare(kind, source[kind], emitted[kind]) for kind in ("core", "command", "module", "structure"))


def _heaviest(result: BuildResult, written: dict[str, int]) -> tuple[ModuleWeight, ...]:
    immediate = Counter(share.path for b in result.bundles for share in b.content.docs)
    chunked = Counter(chunk.path for b in result.bundles for _, chunk in b.chunks)
    modules = sorted(result.framework.modules, key=lambda d: (-written[d.path], d.path))[:MAX_ROWS]
    return tuple(ModuleWeight(d.id, d.path, written[d.path], immediate[d.path], chunked[d.path]) for d in modules)


def repeated_blocks(result: BuildResult) -> tuple[RepeatedBlock, ...]:
    """Blocks that stand, to the letter, in more than one place of the sources."""
    places: dict[str, list[Span]] = defaultdict(list)
    for doc in result.framework.documents.values():
        line = doc.head.count("\n") + 1
        for block in split_blocks(doc.body):
            key = dedupe_key(block)
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


def _defer_single_use(result: BuildResult, written: dict[str, int]):
    """Immediate modules that only one command carries: what deferring each would save."""
    documents = result.framework.documents
    carriers: dict[str, set[str]] = defaultdict(set)
    for bundle in result.bundles:
        for share in bundle.content.docs:
            if documents[share.path].kind == "module":
                carriers[share.path].add(bundle.command)
    candidates = sorted((p for p, commands in carriers.items() if len(commands) == 1
                         and written[p] >= MIN_SUGGESTED_TOKENS), key=lambda p: (-written[p], p))[:3]
    before = _release_tokens(result.bundles)
    for path in candidates:
        after = release_tokens_with_loads(result, {path: "on_demand"})
        count = sum(1 for b in result.bundles if any(s.path == path for s in b.content.docs))
        if after < before:
            bundles = f"{count} bundle{'s' * (count > 1)}"
            yield Recommendation(
                "defer", documents[path].id, after - before,
                f"{written[path]:,} tokens, immediate in {bundles} of '{next(iter(carriers[path]))}' only: "
                "make it load: on_demand (the effect is a rebuild with that change)")


def _drop_unreached(result: BuildResult, written: dict[str, int]):
    unreached = sorted(result.framework.unreached, key=lambda p: (-written[p], p))
    for path in unreached[:MAX_UNREACHED_ROWS]:
        yield Recommendation("remove", result.framework.documents[path].id, -written[path],
                             "no command or core file reaches it: delete it or require it (saving is of the baseline)")
    rest = unreached[MAX_UNREACHED_ROWS:]
    if rest:
        yield Recommendation("remove", f"{len(rest)} more modules", -sum(written[p] for p in rest),
                             "no command or core file reaches them either (the manifest's 'unreached' lists all)")


def release_tokens_with_loads(result: BuildResult, loads: dict[str, str]) -> int:
    """The release's bundle tokens if these modules (by path) had these loads: a real rebuild."""
    framework = result.framework
    documents = {p: replace(d, load=loads.get(p, d.load)) for p, d in framework.documents.items()}
    changed = replace(framework, documents=MappingProxyType(documents))
    renderer = Renderer(changed, result.counter, result.passes)
    assembler = Assembler(changed, renderer, result.counter, result.passes)
    built = {(b.selection.command, b.tier) for b in result.bundles}
    return sum(assembler.bundle(s).content.tokens for s in select_bundles(changed, renderer)
               if (s.command, s.tier) in built)
