"""What a release holds, by name and limit: shared by the writer, the manifest and the runtime.

Standard library only, and nothing heavy: ``tokeffc.runtime`` imports it.
"""

from __future__ import annotations

MANIFEST_NAME = "manifest.json"
RUNTIME_INDEX = "runtime-index.json"  # derived from the manifest by tokeffc.manifest.runtime_index ...
RUNTIME_SHARDS = "runtime-index"  # ... with its records in shards: runtime-index/0000.jsonl, ...
RUNTIME_INDEX_SCHEMA = "tokeffc.runtime-index/1"
ARCHIVE_SUFFIX = ".tokb"
MAX_FILE_BYTES = 64 << 20  # any one file of a release, manifest.json included; larger is refused unread
MAX_MEMBERS = 100_000  # files and folders in one release
MAX_NAME = 4096


def safe_release_path(name: str) -> bool:
    """A relative POSIX path with no empty, '.', '..' or absolute parts, and no control characters."""
    parts = name.split("/")
    return bool(name) and len(name) <= MAX_NAME and name.isprintable() and "\\" not in name and ":" not in name \
        and all(part not in ("", ".", "..") for part in parts)
