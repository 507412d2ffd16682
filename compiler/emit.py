"""Turn assembled bundles into release files and ``manifest.json`` (sorted keys, no timestamps)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from . import __version__
from .assemble import Bundle, Chunk
from .budgets import BudgetCheck
from .graph import Framework
from .manifest import read_manifest, runtime_index
from .rendering import Renderer

MANIFEST_SCHEMA = "tokeffc.manifest/1"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, slots=True)
class ReleaseFiles:
    """Everything a release folder holds, as bytes by relative path."""

    files: tuple[tuple[str, bytes], ...]  # sorted by path; manifest.json included

    @property
    def manifest_bytes(self) -> bytes:
        return dict(self.files)[MANIFEST_NAME]

    @property
    def release_id(self) -> str:
        return hashlib.sha256(self.manifest_bytes).hexdigest()


def emit_release(framework: Framework, renderer: Renderer, bundles: tuple[Bundle, ...],
                 checks: tuple[BudgetCheck, ...], passes: tuple[str, ...]) -> ReleaseFiles:
    files = {b.file: b.content.data for b in bundles}
    for chunk in _all_chunks(bundles):
        files[chunk.file] = chunk.content.data
    manifest = build_manifest(framework, renderer, bundles, checks, passes, files)
    index = runtime_index(read_manifest(dump_json(manifest)))  # through the typed /1 until emit builds a Manifest
    files.update(index)
    manifest["files"].update((path, hashlib.sha256(data).hexdigest()) for path, data in index.items())
    files[MANIFEST_NAME] = dump_json(manifest)
    return ReleaseFiles(tuple(sorted(files.items())))


def dump_json(data: dict) -> bytes:
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def source_hash(framework: Framework) -> str:
    digest = hashlib.sha256(framework.config.source_text.encode("utf-8"))
    for path, doc in framework.documents.items():
        digest.update(f"\0{path}\0{doc.sha256}".encode("utf-8"))
    return digest.hexdigest()


def build_manifest(framework: Framework, renderer: Renderer, bundles: tuple[Bundle, ...],
                   checks: tuple[BudgetCheck, ...], passes: tuple[str, ...], files: dict[str, bytes]) -> dict:
    config = framework.config
    written = renderer.written_counts()
    return {
        "schema": MANIFEST_SCHEMA,
        "framework": config.name,
        "version": config.version,
        "compiler": f"tokeffc {__version__}",
        "encoding": config.encoding,
        "source_hash": source_hash(framework),
        "passes": list(passes),
        "warn_at": config.warn_at,
        "tiers": {t.name: {"budget": t.budget, "compress": t.compress, "rank": i} for i, t in enumerate(config.tiers)},
        "baseline": _baseline(framework, written),
        "bundles": [_bundle_entry(framework, b, c, written) for b, c in zip(bundles, checks)],
        "modules": {d.id: _doc_entry(d, written) for d in framework.documents.values() if d.kind != "command"},
        "commands": {d.id: {**_doc_entry(d, written), "meta": dict(d.meta)} for d in framework.commands},
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
        "unreached": [framework.documents[p].id for p in framework.unreached],
    }


def bundle_baseline(framework: Framework, command_path: str, written: dict[str, int]) -> int:
    """What loads with no compiler: core, every module and the command, each file as written."""
    shared = sum(n for p, n in written.items() if framework.documents[p].kind != "command")
    return shared + written[command_path]


def _baseline(framework: Framework, written: dict[str, int]) -> dict:
    kinds = {kind: sum(n for p, n in written.items() if framework.documents[p].kind == kind)
             for kind in ("core", "module", "command")}
    return {"core": kinds["core"], "modules": kinds["module"], "commands": kinds["command"],
            "rule": "core + every module + the command, each file as written"}


def _bundle_entry(framework: Framework, bundle: Bundle, check: BudgetCheck, written: dict[str, int]) -> dict:
    content = bundle.content
    baseline = bundle_baseline(framework, bundle.selection.command, written)
    return {
        "command": bundle.command,
        "tier": bundle.tier,
        "path": bundle.file,
        "sha256": content.sha256,
        "cache_key": content.cache_key,
        "tokens": content.tokens,
        "budget": check.budget,
        "status": check.status,
        "baseline_tokens": baseline,
        "saved": savings(content, baseline),
        "modules": [{"id": d.id, "path": d.path, "kind": framework.documents[d.path].kind, "tokens": d.emitted,
                     "saved": d.saved} for d in content.docs],
        "chunks": [_chunk_entry(placement.load, chunk, framework) for placement, chunk in bundle.chunks],
        "dropped": [framework.documents[p].id for p in bundle.selection.dropped],
        "cut": [{"id": h.id, "path": h.path, "tokens": h.tokens, "reason": h.reason} for h in check.cut],
        "segments": [{"part": part, "bytes": size, "tokens": tokens} for part, size, tokens in content.segments],
    }


def savings(content, baseline: int) -> dict[str, int]:
    """The tokens each step removed; ``structure`` (the compiler's own lines) is negative.

    ``baseline - sum(saved.values()) == tokens``, exactly.
    """
    stages = [d.stages for d in content.docs]
    return {
        "pruned": baseline - sum(s.rendered for s in stages),
        "compressed": sum(s.rendered - s.compressed for s in stages),
        "normalised": sum(s.compressed - s.normalised for s in stages),
        "deduped": sum(s.normalised for s in stages) - sum(d.emitted for d in content.docs),
        "structure": -content.structure,
    }


def _chunk_entry(load: str, chunk: Chunk, framework: Framework) -> dict:
    return {"id": chunk.id, "path": chunk.file, "sha256": chunk.content.sha256, "cache_key": chunk.content.cache_key,
            "tokens": chunk.content.tokens, "load": load, "when": framework.documents[chunk.path].when}


def _doc_entry(doc, written: dict[str, int]) -> dict:
    return {"path": doc.path, "sha256": doc.sha256, "tokens": written[doc.path], "kind": doc.kind}


def _all_chunks(bundles: tuple[Bundle, ...]) -> list[Chunk]:
    return [chunk for bundle in bundles for _, chunk in bundle.chunks]
