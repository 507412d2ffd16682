"""Files a plugin's ``SessionStart`` hook injects into every session: for the host, they are always loaded.

Claude Code runs the commands ``hooks/hooks.json`` lists under ``SessionStart`` and puts what they
print into the session. tokeffc does not run them; it reads the scripts those commands name (files
under the hooks folder whose names appear in the command) and takes every framework file whose path
a script names (``skills/x/SKILL.md``) as injected.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from typing import Any

from .config import Config
from .errors import Notice, Span
from .references import TEXT_EXTENSIONS
from .sources import DocPath, Tree

HOOKS_FILE = "hooks/hooks.json"
MAX_SCRIPT_BYTES = 1 << 20


def session_hook_files(config: Config, tree: Tree) -> tuple[tuple[DocPath, ...], tuple[Notice, ...]]:
    if not config.session_hooks:
        return (), ()
    injected: dict[DocPath, Notice] = {}
    for hooks_file in (f for f in tree.files if f == HOOKS_FILE or f.endswith("/" + HOOKS_FILE)):
        folder = posixpath.dirname(hooks_file)
        for command in _session_start_commands(config, hooks_file):
            for script in _scripts(tree, folder, command):
                for path, line in _named_files(config, tree, script, posixpath.dirname(folder)):
                    injected.setdefault(path, Notice(Span(script, line), f"injects {path} into every session "
                                                                         "(SessionStart hook): always loaded"))
    return tuple(sorted(injected)), tuple(injected[p] for p in sorted(injected))


def _session_start_commands(config: Config, hooks_file: str) -> Iterator[str]:
    try:
        data = json.loads((config.root / hooks_file).read_bytes()[:MAX_SCRIPT_BYTES])
    except (OSError, ValueError, RecursionError):
        return
    groups = data.get("hooks", {}).get("SessionStart", []) if isinstance(data, dict) else []
    for group in groups if isinstance(groups, list) else []:
        for hook in _list(group.get("hooks") if isinstance(group, dict) else None):
            if isinstance(hook, dict) and isinstance(hook.get("command"), str):
                yield hook["command"]


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _scripts(tree: Tree, folder: str, command: str) -> list[str]:
    """Files of the hooks folder that the command names (the script, or the argument a wrapper runs)."""
    prefix = folder + "/"
    return [f for f in tree.files if f.startswith(prefix) and posixpath.basename(f) in command
            and not f.endswith(".json")]


def _named_files(config: Config, tree: Tree, script: str, plugin_root: str) -> list[tuple[DocPath, int]]:
    """Each framework file the script names, with the line that first names it."""
    try:
        text = (config.root / script).read_bytes()[:MAX_SCRIPT_BYTES].decode("utf-8", "replace")
    except OSError:
        return []
    found = []
    for path in tree.files:
        relative = path[len(plugin_root) + 1:] if plugin_root else path
        at = text.find(relative) if relative.lower().endswith(TEXT_EXTENSIONS) else -1
        if at >= 0:
            found.append((path, text.count("\n", 0, at) + 1))
    return found
