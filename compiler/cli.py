"""The ``tokeffc`` command: a thin layer over the library. Errors become one line and an exit code.

Commands import what they need when they run, so ``tokeffc --help`` and the release readers stay light.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import ExitCode, TokeffcError
from .passes import PASS_NAMES as PASS_CHOICES
from .presets import NAMES as PRESET_CHOICES
from .targets import TARGETS as TARGET_CHOICES

PROGRESS_THRESHOLD = 24  # bundles; fewer build too fast for a bar to help


class _ErrorBoundary(click.Group):
    """The one place where exceptions turn into ``error: file:line: …`` lines and exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TokeffcError as exc:
            for line in exc.lines():
                click.echo(f"error: {line}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # one line, like every other error; the same exit code as click's
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
            ctx.exit(ExitCode.USAGE)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except RecursionError:
            click.echo("error: the framework nests too deeply to compile; flatten its includes", err=True)
            ctx.exit(ExitCode.BAD_INPUT)
        except Exception as exc:  # a bug in tokeffc, not in the input
            if os.environ.get("TOKEFFC_DEBUG"):
                raise
            click.echo(f"error: internal error: {type(exc).__name__}: {exc}; rerun with TOKEFFC_DEBUG=1 and "
                       "report it", err=True)
            ctx.exit(ExitCode.INTERNAL)


@click.group(cls=_ErrorBoundary)
@click.version_option(__version__, prog_name="tokeffc")
def main() -> None:
    """Compile prompt frameworks into per-command, per-tier bundles with exact token budgets."""


def _compile_options(command):
    """Options that build and check share."""
    options = [
        click.argument("root", type=click.Path(file_okay=False, path_type=Path), default="."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Config file to use instead of ROOT/tokeffc.yaml."),
        click.option("--preset", type=click.Choice(PRESET_CHOICES),
                     help="A layout to read ROOT as (works with no tokeffc.yaml; a config's keys override it)."),
        click.option("--release-version", help="Override the config's version (SemVer)."),
        click.option("--command", "commands", multiple=True, help="Only this command (repeatable)."),
        click.option("--tier", "tiers", multiple=True, help="Only this tier (repeatable)."),
        click.option("--no-pass", "disabled_passes", multiple=True, type=click.Choice(PASS_CHOICES),
                     help="Turn an optimisation pass off (repeatable)."),
        click.option("--json", "as_json", is_flag=True, help="Print the stable JSON report instead of tables."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the build cache."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _options(config_path, preset, release_version, commands, tiers, disabled_passes, exclude=(), no_cache=True):
    from .build import BuildOptions
    from .cache import cache_folder

    return BuildOptions(config_path, release_version, commands, tiers, disabled_passes,
                        tuple(p.resolve() for p in exclude), preset, cache=None if no_cache else cache_folder())


@main.command()
@_compile_options
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for the release and its .tokb archive (default: ROOT/dist).")
@click.option("--allow-over", is_flag=True, help="Write the release even when a bundle is over budget (exit 0).")
@click.option("--target", type=click.Choice(TARGET_CHOICES),
              help="Install for a host instead of writing a release (claude-code: CLAUDE.md and .claude/). "
                   "The first --tier is installed as <id>.md, any other as <id>-<tier>.md.")
@click.option("--into", type=click.Path(file_okay=False, path_type=Path),
              help="With --target: the project to install into (default: ROOT/dist/claude-code).")
@click.option("--all-tiers", is_flag=True, help="With --target: install every other tier too.")
def build(root, config_path, preset, release_version, commands, tiers, disabled_passes, as_json, no_cache, out_dir,
          allow_over, target, into, all_tiers):
    """Compile ROOT into dist/<name>/<version>/ and dist/<name>-<version>.tokb, or install it for a host."""
    from .build import build_cached

    if target or into or all_tiers:
        _check_target_options(target, out_dir)
        return _install(root, _options(config_path, preset, release_version, commands, tiers, disabled_passes),
                        into, all_tiers, allow_over, as_json)
    out_dir = out_dir if out_dir is not None else root / "dist"
    options = _options(config_path, preset, release_version, commands, tiers, disabled_passes, (out_dir,), no_cache)
    with _ProgressBar(as_json) as progress:
        built = build_cached(root, out_dir, options, allow_over=allow_over, progress=progress, table_only=not as_json)
    _show(built.report, as_json)
    if built.over and not allow_over:
        click.echo("error: bundles over budget; nothing written (cut the modules above, raise the budget, "
                   "or pass --allow-over)", err=True)
        sys.exit(ExitCode.GATE)


def _check_target_options(target, out_dir) -> None:
    from .errors import UsageError

    if not target:
        raise UsageError("--into and --all-tiers install for a host", hint="add --target claude-code")
    if out_dir is not None:
        raise UsageError("-o/--out writes a release; --target installs", hint="name the project with --into DIR")


def _install(root, options, into, all_tiers, allow_over, as_json) -> None:
    """Install ROOT for Claude Code and report each file; exit 1 (nothing written) when a bundle is over budget."""
    from .targets.claude_code import InstallOptions, install_claude_code
    from .targets.report import install_grid, install_report, summary_lines

    installed = install_claude_code(root, InstallOptions(options, options.tiers, all_tiers, into, allow_over))
    config_root = str(installed.layout.result.framework.config.root)
    warnings = tuple(n.one_line(config_root) for n in (*installed.layout.result.notices, *installed.layout.notices))
    if as_json:
        click.echo(json.dumps(install_report(installed, warnings), indent=2, sort_keys=True))
    else:
        _print_grid(install_grid(installed))
        for line in summary_lines(installed):
            click.echo(line)
        for line in warnings[:20]:
            click.echo(f"warning: {line}", err=True)
    if not installed.written:
        click.echo("error: bundles over budget; nothing installed (cut the modules 'tokeffc build' names, raise "
                   "the budget, or pass --allow-over)", err=True)
        sys.exit(ExitCode.GATE)


@main.command()
@_compile_options
def check(root, config_path, preset, release_version, commands, tiers, disabled_passes, as_json, no_cache):
    """Validate ROOT and check budgets without writing anything (for pre-commit and CI)."""
    from .build import build_cached

    options = _options(config_path, preset, release_version, commands, tiers, disabled_passes, (root / "dist",),
                       no_cache)
    with _ProgressBar(as_json) as progress:
        built = build_cached(root, None, options, progress=progress, table_only=not as_json)
    _show(built.report, as_json)
    if built.over:
        sys.exit(ExitCode.GATE)


@main.group()
def cache() -> None:
    """The build cache (TOKEFFC_CACHE_DIR, else ~/.cache/tokeffc)."""


@cache.command("clear")
def cache_clear() -> None:
    """Remove every entry of the build cache."""
    from .cache import BuildCache, cache_folder

    freed = BuildCache(cache_folder()).clear()
    click.echo(f"cleared {cache_folder()} ({freed:,} bytes)")


@main.command()
@click.argument("root", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file to use instead of ROOT/tokeffc.yaml.")
@click.option("--preset", type=click.Choice(PRESET_CHOICES), help="A layout to read ROOT as.")
@click.option("--no-pass", "disabled_passes", multiple=True, type=click.Choice(PASS_CHOICES),
              help="Turn an optimisation pass off (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON report instead of tables.")
def stats(root, config_path, preset, disabled_passes, as_json):
    """Where ROOT's tokens go: by kind and module, what is always loaded, repeated blocks, recommendations."""
    from .pipeline import compile_framework
    from .report import stats_grids, stats_report
    from .stats import collect_stats

    result = compile_framework(root, _options(config_path, preset, None, (), (), disabled_passes, (root / "dist",),
                                              no_cache=False))
    report = collect_stats(result)
    if as_json:
        click.echo(json.dumps(stats_report(report), indent=2, sort_keys=True))
        return
    for grid in stats_grids(report):
        _print_grid(grid)


@main.command()
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
def inspect(archive, as_json):
    """List a release (.tokb, folder or manifest.json) after verifying all of it (Release.verify)."""
    from .report import release_grid
    from .runtime import Release

    with Release.open(archive) as release:
        release.verify()
        manifest, release_id = release.manifest, release.release_id
    if as_json:
        click.echo(json.dumps({"release_id": release_id, "verified": True, "framework": manifest.framework,
                               "version": manifest.version, "files": dict(manifest.files)}, indent=2, sort_keys=True))
        return
    click.echo(f"{manifest.framework} {manifest.version}  release {release_id[:16]}  "
               f"({len(manifest.files)} files, all sha256 verified)")
    _print_grid(release_grid(manifest))


@main.command()
@click.argument("release", type=click.Path(path_type=Path))
@click.option("--name", "server_name", help="The server's name (default: the framework's name).")
@click.option("--release-id", metavar="SHA256",
              help="Serve only the release with this id: the whole sha256 (tokeffc inspect --json: release_id).")
def serve(release, server_name, release_id):
    """Serve RELEASE (.tokb, folder or manifest.json) over MCP on stdio: prompts, chunks, load_module.

    The release is verified first: a damaged or tampered one is refused (exit 3) before the server
    speaks MCP. Needs the MCP SDK, tokeffc's serve extra (from a clone: pip install '.[serve]').
    """
    from .serve import serve as run_server

    run_server(str(release), server_name, release_id, say=lambda line: click.echo(line, err=True))


@main.command()
@click.argument("old", required=False)
@click.argument("new", required=False)
@click.option("--base", metavar="GITREF", help="Compare the framework folder OLD (default .) as it was at GITREF "
              "with its working tree.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table",
              show_default=True, help="markdown: a pull-request comment; json: schema tokeffc.diff/1.")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged bundles and modules too (table, markdown).")
@click.option("--fail-above", type=float, metavar="PCT", help="Exit 1 if a bundle or the total grew more than PCT%.")
@click.option("--fail-above-tokens", type=click.IntRange(min=0), metavar="N",
              help="Exit 1 if a bundle grew more than N tokens.")
@click.option("--fail-on-over", is_flag=True, help="Exit 1 if a bundle of NEW is over its budget.")
def diff(old, new, base, fmt, show_all, fail_above, fail_above_tokens, fail_on_over):
    """Token deltas from OLD to NEW, per bundle and module, and why each bundle changed.

    OLD and NEW are each a .tokb, a release folder, its manifest.json, or a framework folder (built
    on the fly). Exit 1 when a gate fails, 3 when an input is unreadable or fails its hash check.
    """
    from .diff import Gates, check_gates, compare, sides

    gates = Gates(fail_above, fail_above_tokens, fail_on_over)
    result = compare(*sides(old, new, base))
    failures = check_gates(result, gates)
    _show_diff(result, gates, failures, fmt, show_all)
    for failure in failures:
        click.echo(f"error: gate failed: {failure.message}", err=True)
    if failures:
        sys.exit(ExitCode.GATE)


def _show_diff(result, gates, failures, fmt: str, show_all: bool) -> None:
    from . import diffreport

    if fmt == "json":
        click.echo(diffreport.diff_json(result, gates, failures))
    elif fmt == "markdown":
        click.echo(diffreport.diff_markdown(result, gates, failures, show_all), nl=False)
    elif sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        for part in diffreport.diff_tables(result, gates, failures, show_all):
            console.print(diffreport.rich_renderable(part), highlight=False)
    else:  # logs and pipes: aligned text, nothing wrapped
        click.echo("".join(map(diffreport.plain_text, diffreport.diff_tables(result, gates, failures, show_all))),
                   nl=False)


@main.command()
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.argument("command")
@click.argument("module")
@click.option("--tier", "tiers", multiple=True, help="Only this tier (repeatable; default: every tier).")
@click.option("--preset", type=click.Choice(PRESET_CHOICES), help="A layout to read ROOT as.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file to use instead of ROOT/tokeffc.yaml.")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON answer (schema tokeffc.why/1).")
def why(root, command, module, tiers, preset, config_path, as_json):
    """Why MODULE is (or is not) in COMMAND's bundle: every dependency path, per tier, and the placement.

    MODULE is an id, a unique trailing part of one (cycle for tdd/cycle), or a path.
    """
    from .why import explain_module, render_why

    answer = explain_module(root, command, module, tiers=tiers, preset=preset, config_path=config_path)
    click.echo(render_why(answer, as_json), nl=False)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--preset", type=click.Choice(PRESET_CHOICES),
              help="DIRECTORY is an existing framework in this layout: write its inferred tokeffc.yaml, commented.")
@click.option("--name", help="Framework name (default: the folder's name, or the plugin manifest's).")
def init(directory, preset, name):
    """Create a starter framework in DIRECTORY, or with --preset, a tokeffc.yaml for the framework there.

    Refuses to overwrite a tokeffc.yaml.
    """
    from .scaffold import init_framework

    click.echo(init_framework(directory, preset, name))


def _show(report: dict, as_json: bool) -> None:
    """A build report: JSON, or the table, what to cut, warnings, notes and where it was written."""
    from .report import bundle_grid, over_budget_lines

    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    _print_grid(bundle_grid(report, _width()))
    for line in over_budget_lines(report):
        click.echo(line)
    warnings = report["warnings"]
    for line in warnings[:20]:
        click.echo(f"warning: {line}", err=True)
    if len(warnings) > 20:
        click.echo(f"warning: and {len(warnings) - 20} more (all in the manifest's 'warnings')", err=True)
    unreached = report["unreached"]
    if unreached:
        listed = ", ".join(unreached[:5]) + (f" and {len(unreached) - 5} more" if len(unreached) > 5 else "")
        click.echo(f"note: {len(unreached)} file(s) no reference reaches: {listed} (the manifest's 'unreached'; "
                   "see 'tokeffc stats')")
    if report["written"]:
        written = report["written"]
        click.echo(f"release {report['release_id'][:16]} written to {written['folder']} and {written['archive']}")


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def _width() -> int:
    return os.get_terminal_size().columns if _is_terminal() else 200


def _print_grid(grid) -> None:
    """rich on a terminal; aligned plain text in logs and pipes (nothing wrapped or cut)."""
    from .report import plain_text, rich_renderable

    if _is_terminal():
        from rich.console import Console

        Console().print(rich_renderable(grid))
    else:
        click.echo(plain_text(grid), nl=False)


class _ProgressBar:
    """A rich progress bar on a terminal for long builds; a no-op callback otherwise."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: Any = None

    def __enter__(self):
        return self.update

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total < PROGRESS_THRESHOLD:
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("assembling bundles", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.stop()
        return False


if __name__ == "__main__":
    main()
