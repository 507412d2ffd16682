"""Turn assembled bundles into release files and their typed ``manifest.json``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from . import __version__
from .assemble import Bundle, Chunk, Text
from .baseline import Baselines
from .budgets import BudgetCheck
from .errors import Notice
from .graph import Framework
from .manifest import MANIFEST_NAME as MANIFEST_NAME
from .manifest import (
    SCHEMA,
    Baseline,
    BundleEntry,
    ChunkEntry,
    DocEntry,
    DroppedEntry,
    Manifest,
    ModuleShare,
    PassRun,
    RefEntry,
    Segment,
    TierInfo,
    cache_key,
    runtime_index,
)
from .passes import PASS_BY_NAME
from .rendering import Renderings


@dataclass(frozen=True, slots=True)
class ReleaseFiles:
    """Everything a release folder holds, as bytes by relative path."""

    files: tuple[tuple[str, bytes], ...]  # sorted by path; manifest.json included
    manifest: Manifest

    @property
    def manifest_bytes(self) -> bytes:
        return dict(self.files)[MANIFEST_NAME]

    @property
    def release_id(self) -> str:
        return hashlib.sha256(self.manifest_bytes).hexdigest()


@dataclass(frozen=True, slots=True)
class BuildFacts:
    """What the manifest records besides the bundles: passes, baselines, counts as written, notices."""

    passes: tuple[str, ...]
    baselines: Baselines
    renderings: Renderings
    notices: tuple[Notice, ...]


def emit_release(framework: Framework, bundles: tuple[Bundle, ...], checks: tuple[BudgetCheck, ...],
                 facts: BuildFacts) -> ReleaseFiles:
    contents = {b.file: b.content for b in bundles}
    for chunk in _all_chunks(bundles):
        contents[chunk.file] = chunk.content
    files = {path: content.data for path, content in contents.items()}
    manifest = build_manifest(framework, bundles, checks, facts,
                              {path: content.sha256 for path, content in contents.items()})
    index = runtime_index(manifest)  # the compact index the runtime reads; listed, like every file
    files.update(index)
    listed = {path: hashlib.sha256(data).hexdigest() for path, data in index.items()}
    manifest = replace(manifest, files={**manifest.files, **listed})
    files[MANIFEST_NAME] = manifest.to_json()
    return ReleaseFiles(tuple(sorted(files.items())), manifest)


def source_hash(framework: Framework) -> str:
    digest = hashlib.sha256(framework.config.source_text.encode("utf-8"))
    for path, doc in framework.documents.items():
        digest.update(f"\0{path}\0{doc.sha256}".encode())
    return digest.hexdigest()


def build_manifest(framework: Framework, bundles: tuple[Bundle, ...], checks: tuple[BudgetCheck, ...],
                   facts: BuildFacts, file_sha256: dict[str, str]) -> Manifest:
    config, written = framework.config, facts.renderings.written
    entry_roles = config.entries
    tokens_of = {(b.entry, b.tier): b.content.tokens for b in bundles}
    baselines = facts.baselines
    return Manifest(
        schema=SCHEMA,
        framework=config.name,
        version=config.version,
        compiler=f"tokeffc {__version__}",
        encoding=config.encoding,
        source_hash=source_hash(framework),
        preset=config.preset,
        passes=tuple(PassRun(name, PASS_BY_NAME[name].lossless) for name in facts.passes),
        warn_at=config.warn_at,
        tiers={t.name: TierInfo(t.budget, t.compress, i) for i, t in enumerate(config.tiers)},
        baseline=Baseline(baselines.kind, baselines.rule,
                          tuple(framework.documents[p].id for p in baselines.always), baselines.always_tokens),
        bundles=tuple(_bundle_entry(framework, b, c, facts, tokens_of) for b, c in zip(bundles, checks)),
        modules={d.id: _doc_entry(d, written) for d in framework.documents.values() if d.role not in entry_roles},
        commands={d.id: _doc_entry(d, written) for d in framework.documents.values() if d.role in entry_roles},
        files=dict(sorted(file_sha256.items())),
        unreached=tuple(framework.documents[p].id for p in framework.unreached),
        external=tuple(RefEntry(u.written, str(u.span), u.kind) for u in framework.external),
        missing=tuple(RefEntry(u.written, str(u.span), u.kind) for u in framework.missing),
        soft=_soft_references(framework),
        warnings=tuple(n.one_line() for n in facts.notices),
    )


def _bundle_entry(framework: Framework, bundle: Bundle, check: BudgetCheck, facts: BuildFacts,
                  tokens_of: dict) -> BundleEntry:
    content, selection = bundle.content, bundle.selection
    entry = selection.entry
    baseline = facts.baselines.per_entry[entry.id]
    return BundleEntry(
        command=entry.id, tier=bundle.tier, path=bundle.file, sha256=content.sha256, cache_key=content.cache_key,
        tokens=content.tokens, budget=check.budget, status=check.status, baseline_tokens=baseline,
        saved=savings(content, baseline, facts.passes),
        modules=tuple(ModuleShare(d.id, d.path, framework.documents[d.path].role, _placement(selection, d.path),
                                  d.emitted, _pass_savings(d.saved, facts.passes)) for d in content.docs),
        chunks=tuple(_chunk_entry(framework, placement, chunk) for placement, chunk in bundle.chunks),
        dropped=tuple(DroppedEntry(framework.documents[d.path].id, framework.documents[d.path].tier,
                                   facts.renderings.written[d.path]) for d in selection.dropped),
        cut=check.cut,
        segments=tuple(Segment(part, size, tokens) for part, size, tokens in content.segments),
        role=entry.role, parent=entry.parent,
        parent_tokens=tokens_of.get((entry.parent, bundle.tier)) if entry.parent else None,
    )


def savings(content: Text, baseline: int, passes: tuple[str, ...]) -> dict[str, int]:
    """The tokens each step removed; ``structure`` (the compiler's own lines) is negative.

    ``baseline - sum(saved.values()) == tokens``, exactly.
    """
    saved = {"pruned": baseline - sum(d.rendered for d in content.docs)}
    for name in passes:
        saved[name] = sum(d.saved.get(name, 0) for d in content.docs)
    saved["structure"] = -content.structure
    return saved


def _pass_savings(saved: dict[str, int], passes: tuple[str, ...]) -> dict[str, int]:
    return {name: saved.get(name, 0) for name in passes}


def _placement(selection, path) -> str:
    if path in selection.main:
        return "core"
    if path == selection.entry.path:
        return "entry"
    return "section" if path in selection.sections else "inline"


def _chunk_entry(framework: Framework, placement, chunk: Chunk) -> ChunkEntry:
    doc = framework.documents[chunk.path]
    return ChunkEntry(chunk.id, chunk.file, chunk.content.sha256, cache_key(chunk.content.sha256),
                      chunk.content.tokens, placement.load, doc.when, doc.role, placement.soft,
                      tuple(share.id for share in chunk.content.docs))


def _doc_entry(doc, written) -> DocEntry:
    return DocEntry(doc.path, doc.sha256, written[doc.path], doc.role, doc.tier, doc.load, doc.when, dict(doc.meta))


def _soft_references(framework: Framework) -> tuple[RefEntry, ...]:
    found = []
    for source in framework.documents:
        for target, edges in framework.edges_from(source):
            found += [RefEntry(e.written, str(e.span), e.kind, target) for e in edges if e.soft]
    return tuple(sorted(found, key=lambda r: (r.at, r.written)))


def _all_chunks(bundles: tuple[Bundle, ...]) -> list[Chunk]:
    return [chunk for bundle in bundles for _, chunk in bundle.chunks]
