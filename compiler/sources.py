"""Find and read a framework's files: sorted, strict UTF-8, size-limited, never outside the root."""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .config import Config
from .errors import Span, TokeffcError

GLOB_CHARS = "*?["


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # POSIX path relative to the framework root
    kind: str  # core | command | module
    default_id: str  # id before front matter may override it
    text: str  # decoded, BOM stripped, line endings as written
    sha256: str  # of the bytes on disk


def discover_sources(config: Config, exclude_dirs: tuple[Path, ...] = ()) -> tuple[SourceFile, ...]:
    """Every core file, command and module the config names, in a stable order."""
    found: dict[str, SourceFile] = {}
    for entry in config.core:
        span = config.span("core")
        for rel in _expand(config, entry, exclude_dirs, span, must_match=True):
            found.setdefault(rel, read_source(config, rel, "core", rel, span))
    for kind, patterns in (("command", config.commands), ("module", config.modules)):
        for pattern in patterns:
            span = config.span(kind + "s")
            for rel in _expand(config, pattern, exclude_dirs, span, must_match=False):
                if rel not in found:
                    found[rel] = read_source(config, rel, kind, id_from_pattern(rel, pattern), span)
    core = [f for f in found.values() if f.kind == "core"]  # in the order the config lists them
    return (*core, *(found[rel] for rel in sorted(found) if found[rel].kind != "core"))


def id_from_pattern(rel: str, pattern: str) -> str:
    """``modules/quality/gates.md`` under ``modules/**/*.md`` has the id ``quality/gates``."""
    fixed = []
    for part in PurePosixPath(pattern).parts[:-1]:
        if any(c in part for c in GLOB_CHARS):
            break
        fixed.append(part)
    path = PurePosixPath(rel)
    inner = path.relative_to(*fixed) if fixed and path.parts[: len(fixed)] == tuple(fixed) else path
    return str(inner.with_suffix(""))


def _expand(config: Config, pattern: str, exclude_dirs: tuple[Path, ...], span: Span, must_match: bool) -> list[str]:
    if PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
        raise TokeffcError(f"pattern '{pattern}' leaves the framework root", span, "use a path relative to the root")
    matches = sorted(glob.glob(pattern, root_dir=config.root, recursive=True))
    rels = [m.replace(os.sep, "/") for m in matches if (config.root / m).is_file()]
    rels = [r for r in rels if not _is_excluded(config, r, exclude_dirs)]
    if must_match and not rels:
        raise TokeffcError(f"'{pattern}' matches no file", span, "fix the path under 'core:' (relative to the root)")
    return rels


def _is_excluded(config: Config, rel: str, exclude_dirs: tuple[Path, ...]) -> bool:
    if any(part.startswith(".") for part in PurePosixPath(rel).parts):
        return True
    if any(fnmatch.fnmatchcase(rel, pattern) for pattern in config.exclude):
        return True
    absolute = (config.root / rel).resolve()
    return any(absolute.is_relative_to(d) for d in exclude_dirs)


def read_source(config: Config, rel: str, kind: str, default_id: str, span: Span | None) -> SourceFile:
    """Read one file under the root, refusing escapes, huge files, binaries and non-UTF-8."""
    path = config.root / rel
    resolved = path.resolve()
    if not resolved.is_relative_to(config.root):
        raise TokeffcError(f"'{rel}' resolves outside the framework root", span or Span(rel),
                           "a symlink or path must stay inside the root")
    try:
        size = resolved.stat().st_size
        if size > config.max_file_bytes:
            raise TokeffcError(
                f"file is {_size(size)}, over the {_size(config.max_file_bytes)} limit",
                Span(rel, 1), "split it, or raise max_file_bytes in tokeffc.yaml")
        data = resolved.read_bytes()
    except OSError as exc:
        raise TokeffcError(f"cannot read '{rel}': {exc.strerror}", span or Span(rel), "check the file") from None
    return SourceFile(rel, kind, default_id, decode_source(data, rel), hashlib.sha256(data).hexdigest())


def decode_source(data: bytes, rel: str) -> str:
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise TokeffcError("binary file (NUL byte)", Span(rel, line), "keep only text files under the globs")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TokeffcError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", Span(rel, line),
                           "re-save the file as UTF-8") from None


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n:,} bytes"
