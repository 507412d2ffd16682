"""``tokeffc init``: copy the starter framework shipped in the package."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from .config import CONFIG_NAME
from .errors import Span, TokeffcError

STARTER = "starter"


def create_starter(directory: Path, name: str | None = None) -> list[Path]:
    """Write the starter into ``directory``; never overwrite an existing file."""
    directory = Path(directory)
    name = name or _name_from(directory)
    if (directory / CONFIG_NAME).exists():
        raise TokeffcError(f"{CONFIG_NAME} already exists", Span(str(directory / CONFIG_NAME)),
                           "init only creates new frameworks; edit the existing config")
    files = list(_starter_files(resources.files("tokeffc.templates") / STARTER, ""))
    clashes = [rel for rel, _ in files if (directory / rel).exists()]
    if clashes:
        raise TokeffcError(f"'{clashes[0]}' already exists", Span(str(directory / clashes[0])),
                           "run init in an empty folder")
    created = []
    for rel, text in files:
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("__NAME__", name), encoding="utf-8")
        created.append(target)
    return created


def _starter_files(folder, prefix: str):
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _starter_files(entry, f"{prefix}{entry.name}/")
        elif not entry.name.startswith(("_", ".")):
            yield f"{prefix}{entry.name}", entry.read_text(encoding="utf-8")


def _name_from(directory: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")
    return name if name and name[0].isalnum() else "my-framework"
