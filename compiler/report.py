"""Formatters: a build or a release as rich tables or stable JSON. They decide nothing."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from .pipeline import BuildResult

JSON_SCHEMA = "tokeffc.build-report/1"
PASS_COLUMNS = ("pruned", "compressed", "normalised", "deduped")


def build_report(result: BuildResult, folder: Path | None, archive: Path | None) -> dict:
    """The ``--json`` output of build and check (documented in the README)."""
    manifest = json.loads(result.release.manifest_bytes)
    return {
        "schema": JSON_SCHEMA,
        "framework": manifest["framework"],
        "version": manifest["version"],
        "release_id": result.release.release_id,
        "written": {"folder": str(folder), "archive": str(archive)} if folder else None,
        "passes": list(result.passes),
        "status": "over" if result.over_budget else "ok",
        "bundles": manifest["bundles"],
        "unreached": manifest["unreached"],
    }


def bundle_table(result: BuildResult) -> Table:
    manifest = json.loads(result.release.manifest_bytes)
    table = Table(title=f"{manifest['framework']} {manifest['version']}: bundles (saving against the baseline: "
                        "core + every module + the command, as written)")
    for name in ("command", "tier", "tokens", "budget", "status", "baseline", "saving", *PASS_COLUMNS, "chunks"):
        table.add_column(name, justify="left" if name in ("command", "tier", "status") else "right", no_wrap=True)
    for entry in manifest["bundles"]:
        baseline, tokens = entry["baseline_tokens"], entry["tokens"]
        saving = f"{100 * (baseline - tokens) / baseline:.1f}%" if baseline else "-"
        table.add_row(entry["command"], entry["tier"], f"{tokens:,}", f"{entry['budget']:,}",
                      _status(entry["status"]), f"{baseline:,}", saving,
                      *(f"{entry['saved'][name]:,}" for name in PASS_COLUMNS), str(len(entry["chunks"])))
    return table


def over_budget_lines(result: BuildResult) -> list[str]:
    lines = []
    for check in result.over_budget:
        lines.append(f"{check.command} [{check.tier}]: {check.tokens:,} tokens, {check.tokens - check.budget:,} "
                     f"over its budget of {check.budget:,}. What to cut:")
        for hint in check.cut:
            why = "largest module" if hint.reason == "largest" else "used by this command alone"
            lines.append(f"  - {hint.id} ({hint.path}): {hint.tokens:,} tokens, {why}")
    return lines


def _status(status: str) -> str:
    return {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "over": "[bold red]over[/]"}[status]
