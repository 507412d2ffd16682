"""The build, step by step: config, sources, parse, graph, entries, render (with the passes), select,
assemble (with dedupe), budgets, emit."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .assemble import Assembler, Bundle
from .baseline import measure_baselines
from .budgets import BudgetCheck, check_budgets
from .build import BuildOptions
from .cache import BuildCache
from .config import Config, load_config
from .emit import BuildFacts, ReleaseFiles, emit_release
from .entries import Entry, find_entries
from .errors import Notice, Span, TokeffcError, UsageError
from .forked import Forked
from .graph import Framework, build_graph
from .hooks import session_hook_files
from .markdown import split_blocks
from .parse import Document, parse_document, parse_documents, source_units
from .passes import PASS_NAMES
from .plugins import find_plugins
from .publish import write_release
from .rendering import Renderings, render_all
from .selection import Selection, select_bundles
from .sources import DocPath, SourceFile, Tree, discover_sources, named_id, read_source, walk_tree
from .tokens import SPARE_ENCODING, TokenCounter, encoding_identity, resolve_encoding

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True, slots=True)
class BuildResult:
    framework: Framework
    entries: tuple[Entry, ...]
    bundles: tuple[Bundle, ...]
    checks: tuple[BudgetCheck, ...]
    release: ReleaseFiles
    passes: tuple[str, ...]
    renderings: Renderings
    notices: tuple[Notice, ...]
    counter: TokenCounter = field(compare=False, repr=False)  # its cache makes what-if rebuilds cheap

    @property
    def over_budget(self) -> tuple[BudgetCheck, ...]:
        return tuple(c for c in self.checks if c.status == "over")

    @property
    def manifest(self):
        return self.release.manifest


def compile_framework(root: Path, options: BuildOptions | None = None, progress: Progress | None = None,
                      spare: Forked | None = None) -> BuildResult:
    """Everything but writing: the release as bytes, with its budget checks. ``spare`` is a helper process
    forked earlier (:func:`tokens.spare_helper`): taken if its encoding is the build's, else ended."""
    options = options or BuildOptions()
    if options.preset == "claude-plugin" and not options.overrides:
        plugins = find_plugins(Path(root))
        if len(plugins) > 1:
            raise UsageError(f"'{root}' is a marketplace of {len(plugins)} plugins",
                             hint="each plugin is a release of its own: use 'tokeffc build', which builds them all")
        if plugins:
            root, options = plugins[0].root, replace(options, overrides=plugins[0].overrides)
    try:
        config = load_config(Path(root), options.config_path, release_version=options.release_version,
                             preset=options.preset, overrides=dict(options.overrides))
        return _compile(config, options, progress, spare)
    except TokeffcError as exc:
        raise exc.located(str(root)) from None


def _compile(config: Config, options: BuildOptions, progress: Progress | None, spare: Forked | None) -> BuildResult:
    passes = _passes(config, options)
    span = config.span("encoding")
    identity = encoding_identity(config.encoding, config.encoding_sha256, span)
    cache = BuildCache(options.cache) if options.cache else None
    if spare is not None and identity != SPARE_ENCODING:
        spare.end()
        spare = None
    counter = TokenCounter(lambda: resolve_encoding(config.encoding, config.encoding_sha256, config.root, span),
                           cache.counts(identity) if cache else {}, forks=True, spare=spare)
    with counter.abandoned_on_error():  # a failed build leaves no tokenizer running behind it
        framework, tree_notices = load_framework(config, options.exclude_dirs, counter)
        entries, entry_notices = find_entries(framework)
        renderings = render_all(framework, entries, counter, passes)
        split_blocks.cache_clear()  # the memo served parsing and rendering: a text split later is split again
        selections = _chosen(framework, select_bundles(framework, renderings, entries), options)
        bundles = assemble_bundles(framework, renderings, counter, passes, selections, progress)
        checks = check_budgets(framework, bundles)
        notices = (*tree_notices, *framework.warnings, *entry_notices)
        facts = BuildFacts(passes, measure_baselines(framework, entries, renderings, counter), renderings, notices)
        release = emit_release(framework, bundles, checks, facts)
    counter.finish()  # its helper process ends with the build
    counts = counter.counts()
    if cache and counts:
        cache.put_counts(identity, counts)
    return BuildResult(framework, entries, bundles, checks, release, passes, renderings, notices, counter)


def load_framework(config: Config, exclude_dirs: tuple[Path, ...] = (),
                   counter: TokenCounter | None = None) -> tuple[Framework, tuple[Notice, ...]]:
    """Sources read, parsed and resolved into a graph; each source tokenized once, whole, if a counter is given."""
    tree = walk_tree(config, exclude_dirs)
    injected, notices = session_hook_files(config, tree)
    sources = discover_sources(config, tree, injected)
    if counter is not None:
        counter.prime([source_units(source.path, source.text) for source in sources])
    documents = parse_documents(sources, config)
    return build_graph(config, documents, tree, _implicit_reader(config)), notices


def _implicit_reader(config: Config) -> Callable[[DocPath, Span], Document]:
    def read_implicit(path: DocPath, span: Span) -> Document:
        default_id = named_id(PurePosixPath(path))
        return parse_document(read_source(config, path, "module", default_id, span), config)

    return read_implicit


def assemble_bundles(framework: Framework, renderings: Renderings, counter: TokenCounter, passes: tuple[str, ...],
                     selections: tuple[Selection, ...], progress: Progress | None = None) -> tuple[Bundle, ...]:
    assembler = Assembler(framework, renderings, counter, passes)
    bundles = []
    for done, selection in enumerate(selections, start=1):
        bundles.append(assembler.bundle(selection))
        if progress:
            progress(done, len(selections))
    return tuple(bundles)


def plugin_builds(root: Path, options: BuildOptions) -> list[tuple[Path, BuildOptions]]:
    """What one command line builds: each plugin of a marketplace on its own (preset claude-plugin), else ROOT."""
    if options.preset != "claude-plugin" or options.overrides:
        return [(Path(root), options)]
    plugins = find_plugins(Path(root))
    return [(p.root, replace(options, overrides=p.overrides)) for p in plugins] or [(Path(root), options)]


def build_release(root: Path, out_dir: Path, options: BuildOptions | None = None, *, allow_over: bool = False,
                  progress: Progress | None = None) -> tuple[BuildResult, Path | None, Path | None]:
    """Compile and, unless a bundle is over budget (and that is not allowed), write the release."""
    result = compile_framework(root, options, progress)
    if result.over_budget and not allow_over:
        return result, None, None
    config = result.framework.config
    folder, archive = write_release(out_dir, config.name, config.version, result.release.files)
    return result, folder, archive


def _passes(config: Config, options: BuildOptions) -> tuple[str, ...]:
    _refuse_unknown("pass", options.disabled_passes, PASS_NAMES)
    return tuple(p for p in config.passes if p not in options.disabled_passes)


def _chosen(framework: Framework, selections: tuple[Selection, ...], options: BuildOptions) -> tuple[Selection, ...]:
    ids = sorted({s.entry.id for s in selections})
    _refuse_unknown("command", options.commands, ids)
    _refuse_unknown("tier", options.tiers, framework.config.tier_names)
    return tuple(s for s in selections
                 if (not options.commands or s.entry.id in options.commands)
                 and (not options.tiers or s.tier in options.tiers))


def _refuse_unknown(what: str, asked: tuple[str, ...], known) -> None:
    for name in asked:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known) or 'none'}"
            raise UsageError(f"unknown {what} '{name}'", hint=hint)


__all__ = ["BuildOptions", "BuildResult", "compile_framework", "build_release", "load_framework",
           "SourceFile", "Tree"]
