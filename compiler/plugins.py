"""Claude Code plugins: a plugin folder (``.claude-plugin/plugin.json``) or a marketplace
(``.claude-plugin/marketplace.json``) listing plugins. Each plugin is installed on its own, so each
is built as a release of its own, named and versioned as its manifest says."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Span, TokeffcError

MANIFEST = ".claude-plugin/plugin.json"
MARKETPLACE = ".claude-plugin/marketplace.json"
MAX_JSON_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Plugin:
    root: Path
    name: str
    version: str

    @property
    def overrides(self) -> tuple[tuple[str, Any], ...]:
        return (("name", self.name), ("version", self.version))


def find_plugins(root: Path) -> list[Plugin]:
    """The plugins under ``root``: those its marketplace lists, or the plugin ``root`` is."""
    root = Path(root)
    if (root / MARKETPLACE).is_file():
        market = _json(root, MARKETPLACE)
        entries = market.get("plugins") if isinstance(market, dict) else None
        if not isinstance(entries, list):
            raise TokeffcError("marketplace.json has no 'plugins' list", Span(MARKETPLACE), "list the plugins")
        return [_plugin(root, entry, index) for index, entry in enumerate(entries)]
    if (root / MANIFEST).is_file():
        return [_from_manifest(root, {})]
    return []


def _plugin(root: Path, entry: Any, index: int) -> Plugin:
    if not isinstance(entry, dict) or not isinstance(entry.get("source", "./"), str):
        raise TokeffcError(f"marketplace.json plugins[{index}] needs a local 'source' folder", Span(MARKETPLACE),
                           "tokeffc builds plugins whose source is in this repository")
    source = posixpath.normpath(entry.get("source", "./"))
    if source.startswith("..") or posixpath.isabs(source):
        raise TokeffcError(f"plugin source '{source}' leaves the marketplace", Span(MARKETPLACE),
                           "use a folder inside the repository")
    return _from_manifest(root / source, entry)


def _from_manifest(folder: Path, listed: dict) -> Plugin:
    manifest = _json(folder, MANIFEST) if (folder / MANIFEST).is_file() else {}
    manifest = manifest if isinstance(manifest, dict) else {}
    name = manifest.get("name") or listed.get("name") or folder.resolve().name
    version = manifest.get("version") or listed.get("version") or "0.0.0"
    return Plugin(folder, str(name), str(version))


def _json(root: Path, rel: str) -> Any:
    try:
        data = (root / rel).read_bytes()
        if len(data) > MAX_JSON_BYTES:
            raise TokeffcError(f"{rel} is over {MAX_JSON_BYTES:,} bytes", Span(rel), "this is not a plugin manifest")
        return json.loads(data)
    except (OSError, ValueError, RecursionError) as exc:
        raise TokeffcError(f"cannot read {rel} ({type(exc).__name__})", Span(rel), "fix the JSON") from None
