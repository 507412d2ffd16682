"""The ``tokeffc`` command: a thin layer over the library. Errors become one line and an exit code."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress as RichProgress

from . import __version__
from .config import PASS_NAMES
from .errors import EXIT_BAD_INPUT, EXIT_GATE, TokeffcError
from .pipeline import BuildOptions, BuildResult, build_release, compile_framework
from .report import build_report, bundle_table, over_budget_lines, release_table, stats_report, stats_tables
from .scaffold import create_starter

EXIT_INTERNAL = 4
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
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except RecursionError:
            click.echo("error: the framework nests too deeply to compile; flatten its includes", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except Exception as exc:  # a bug in tokeffc, not in the input
            if os.environ.get("TOKEFFC_DEBUG"):
                raise
            click.echo(f"error: internal error: {type(exc).__name__}: {exc}; rerun with TOKEFFC_DEBUG=1 and "
                       "report it", err=True)
            ctx.exit(EXIT_INTERNAL)


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
        click.option("--release-version", help="Override the config's version (SemVer)."),
        click.option("--command", "commands", multiple=True, help="Only this command (repeatable)."),
        click.option("--tier", "tiers", multiple=True, help="Only this tier (repeatable)."),
        click.option("--no-pass", "disabled_passes", multiple=True, type=click.Choice(PASS_NAMES),
                     help="Turn an optimisation pass off (repeatable)."),
        click.option("--json", "as_json", is_flag=True, help="Print the stable JSON report instead of tables."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@_compile_options
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"),
              show_default=True, help="Output folder for the release and its .tokb archive.")
@click.option("--allow-over", is_flag=True, help="Write the release even when a bundle is over budget (exit 0).")
def build(root, config_path, release_version, commands, tiers, disabled_passes, as_json, out_dir, allow_over):
    """Compile ROOT into dist/<name>/<version>/ and dist/<name>-<version>.tokb."""
    options = BuildOptions(config_path, release_version, commands, tiers, disabled_passes, (out_dir.resolve(),))
    with _ProgressBar(as_json) as progress:
        result, folder, archive = build_release(root, out_dir, options, allow_over=allow_over, progress=progress)
    _show(result, folder, archive, as_json)
    if result.over_budget and not allow_over:
        click.echo("error: bundles over budget; nothing written (cut the modules above, raise the budget, "
                   "or pass --allow-over)", err=True)
        sys.exit(EXIT_GATE)


@main.command()
@_compile_options
def check(root, config_path, release_version, commands, tiers, disabled_passes, as_json):
    """Validate ROOT and check budgets without writing anything (for pre-commit and CI)."""
    # Leave out dist/ when it sits in ROOT, as build does with its output folder.
    options = BuildOptions(config_path, release_version, commands, tiers, disabled_passes, (Path("dist").resolve(),))
    with _ProgressBar(as_json) as progress:
        result = compile_framework(root, options, progress)
    _show(result, None, None, as_json)
    if result.over_budget:
        sys.exit(EXIT_GATE)


@main.command()
@click.argument("root", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file to use instead of ROOT/tokeffc.yaml.")
@click.option("--no-pass", "disabled_passes", multiple=True, type=click.Choice(PASS_NAMES),
              help="Turn an optimisation pass off (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON report instead of tables.")
def stats(root, config_path, disabled_passes, as_json):
    """Where ROOT's tokens go: by kind and module, repeated blocks, and recommendations."""
    from .stats import collect_stats

    result = compile_framework(root, BuildOptions(config_path=config_path, disabled_passes=disabled_passes))
    report = collect_stats(result)
    if as_json:
        click.echo(json.dumps(stats_report(report), indent=2, sort_keys=True))
        return
    console = _console()
    for table in stats_tables(report):
        console.print(table)


@main.command()
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
def inspect(archive, as_json):
    """List a release (.tokb, folder or manifest.json) after verifying all of it (Release.verify)."""
    from .runtime import Release

    with Release.open(archive) as release:
        release.verify()
        manifest, release_id = release.manifest, release.release_id
    if as_json:
        click.echo(json.dumps({"release_id": release_id, "verified": True, "framework": manifest.framework,
                               "version": manifest.version, "files": dict(manifest.files)}, indent=2, sort_keys=True))
        return
    console = _console()
    console.print(f"{manifest.framework} {manifest.version}  release {release_id[:16]}  "
                  f"({len(manifest.files)} files, all sha256 verified)", highlight=False, markup=False)
    console.print(release_table(manifest))


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Framework name (default: the folder's name).")
def init(directory, name):
    """Create a starter framework in DIRECTORY (refuses to overwrite a tokeffc.yaml)."""
    created = create_starter(directory, name)
    click.echo(f"created {len(created)} files in {directory}; next: tokeffc build {directory}")


def _show(result: BuildResult, folder, archive, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(build_report(result, folder, archive), indent=2, sort_keys=True))
        return
    console = _console()
    console.print(bundle_table(result))
    for line in over_budget_lines(result):
        console.print(line, highlight=False, markup=False)
    unreached = result.framework.unreached
    if unreached:
        listed = ", ".join(unreached[:5]) + (f" and {len(unreached) - 5} more" if len(unreached) > 5 else "")
        console.print(f"warning: {len(unreached)} module(s) no command reaches: {listed} "
                      "(all in the manifest's 'unreached'; see 'tokeffc stats')", highlight=False, markup=False)
    if folder:
        console.print(f"release {result.release.release_id[:16]} written to {folder} and {archive}",
                      highlight=False, markup=False)


def _console() -> Console:
    # Off a terminal (CI logs, pipes) rich would wrap at 80 columns; tables read better whole.
    console = Console()
    return console if console.is_terminal else Console(width=200)


class _ProgressBar:
    """A rich progress bar on a terminal for long builds; a no-op callback otherwise."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and Console(stderr=True).is_terminal
        self.bar = None

    def __enter__(self):
        return self.update

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total < PROGRESS_THRESHOLD:
            return
        if self.bar is None:
            self.bar = RichProgress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("assembling bundles", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.stop()
        return False


if __name__ == "__main__":
    main()
