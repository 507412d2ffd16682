"""The build, in the order of the design: config, sources, parse, graph, select, assemble, budgets, emit."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from .assemble import Assembler, Bundle
from .budgets import BudgetCheck, check_budgets
from .config import PASS_NAMES, Config, load_config
from .emit import ReleaseFiles, emit_release
from .errors import Span, TokeffcError, UsageError
from .graph import Framework, build_graph
from .publish import write_release
from .parse import Document, parse_document, source_units
from .rendering import Renderer
from .selection import Selection, select_bundles
from .sources import SourceFile, discover_sources, read_source
from .tokens import TokenCounter, resolve_encoding

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True, slots=True)
class BuildOptions:
    config_path: Path | None = None
    release_version: str | None = None
    commands: tuple[str, ...] = ()  # only these commands (ids); all when empty
    tiers: tuple[str, ...] = ()  # only these tiers; all when empty
    disabled_passes: tuple[str, ...] = ()
    exclude_dirs: tuple[Path, ...] = ()  # e.g. the output folder, when it sits inside the root


@dataclass(frozen=True, slots=True)
class BuildResult:
    framework: Framework
    bundles: tuple[Bundle, ...]
    checks: tuple[BudgetCheck, ...]
    release: ReleaseFiles
    passes: tuple[str, ...]
    counter: TokenCounter = field(compare=False, repr=False)  # its cache makes what-if rebuilds cheap

    @property
    def over_budget(self) -> tuple[BudgetCheck, ...]:
        return tuple(c for c in self.checks if c.status == "over")


def compile_framework(root: Path, options: BuildOptions = BuildOptions(),
                      progress: Progress | None = None) -> BuildResult:
    """Everything but writing: the release as bytes, with its budget checks."""
    config = load_config(Path(root), options.config_path, release_version=options.release_version)
    try:
        return _compile(config, Path(root), options, progress)
    except TokeffcError as exc:
        if exc.span and not os.path.isabs(exc.span.path):
            exc.root = str(root)
        raise


def _compile(config: Config, root: Path, options: BuildOptions, progress: Progress | None) -> BuildResult:
    encoding = resolve_encoding(config.encoding, config.encoding_sha256, config.root, config.span("encoding"))
    counter = TokenCounter(encoding)
    sources = discover_sources(config, options.exclude_dirs)
    counter.prime([source_units(source.path, source.text) for source in sources])  # each source tokenized once, whole
    framework = load_framework(config, sources)
    passes = tuple(p for p in config.passes if p not in options.disabled_passes)
    renderer = Renderer(framework, counter, passes)
    selections = _chosen(framework, select_bundles(framework, renderer), options)
    assembler = Assembler(framework, renderer, counter, passes)
    bundles = []
    for done, selection in enumerate(selections, start=1):
        bundles.append(assembler.bundle(selection))
        if progress:
            progress(done, len(selections))
    checks = check_budgets(framework, tuple(bundles))
    release = emit_release(framework, renderer, tuple(bundles), checks, passes)
    return BuildResult(framework, tuple(bundles), checks, release, passes, counter)


def build_release(root: Path, out_dir: Path, options: BuildOptions = BuildOptions(), *, allow_over: bool = False,
                  progress: Progress | None = None) -> tuple[BuildResult, Path | None, Path | None]:
    """Compile and, unless a bundle is over budget (and that is not allowed), write the release."""
    result = compile_framework(root, options, progress)
    if result.over_budget and not allow_over:
        return result, None, None
    config = result.framework.config
    folder, archive = write_release(out_dir, config.name, config.version, result.release.files)
    return result, folder, archive


def load_framework(config: Config, sources: tuple[SourceFile, ...] | None = None) -> Framework:
    sources = discover_sources(config) if sources is None else sources
    documents = [parse_document(source, config) for source in sources]

    def read_implicit(path: str, span: Span) -> Document:
        default_id = str(PurePosixPath(path).with_suffix(""))
        return parse_document(read_source(config, path, "module", default_id, span), config)

    return build_graph(config, documents, read_implicit)


def _chosen(framework: Framework, selections: tuple[Selection, ...], options: BuildOptions) -> tuple[Selection, ...]:
    ids = {d.path: d.id for d in framework.commands}
    _refuse_unknown("command", options.commands, sorted(ids.values()))
    _refuse_unknown("tier", options.tiers, framework.config.tier_names)
    _refuse_unknown("pass", options.disabled_passes, PASS_NAMES)
    return tuple(s for s in selections
                 if (not options.commands or ids[s.command] in options.commands)
                 and (not options.tiers or s.tier in options.tiers))


def _refuse_unknown(what: str, asked: tuple[str, ...], known) -> None:
    for name in asked:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known) or 'none'}"
            raise UsageError(f"unknown {what} '{name}'", hint=hint)
