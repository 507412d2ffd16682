"""Formatters: a build or a release as rich tables or stable JSON. They decide nothing."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from .pipeline import BuildResult

JSON_SCHEMA = "tokeffc.build-report/1"
PASS_COLUMNS = ("pruned", "compressed", "normalised", "deduped", "structure")


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
                        "core + every module + the command, as written)",
                  caption=f"passes run: {', '.join(result.passes) or 'none'}; "
                          "tokens = baseline - the sum of the last five columns (structure, the compiler's own lines, "
                          "is negative)")
    for name in ("command", "tier", "tokens", "budget", "status", "baseline", "saving", *PASS_COLUMNS, "chunks"):
        table.add_column(name, justify="left" if name in ("command", "tier", "status") else "right", no_wrap=True)
    for entry in manifest["bundles"]:
        baseline, tokens = entry["baseline_tokens"], entry["tokens"]
        saving = f"{100 * (baseline - tokens) / baseline:.1f}%" if baseline else "-"
        table.add_row(entry["command"], entry["tier"], f"{tokens:,}", f"{entry['budget']:,}",
                      _status(entry["status"]), f"{baseline:,}", saving,
                      *(f"{entry['saved'][name]:,}" for name in PASS_COLUMNS), str(len(entry["chunks"])))
    return table


def release_table(manifest) -> Table:
    """The files of a typed :class:`tokeffc.manifest.Manifest`, with tokens where a bundle or chunk has them."""
    table = Table("file", "tokens", "sha256")
    tokens = {b.path: b.tokens for b in manifest.bundles}
    tokens.update({c.path: c.tokens for b in manifest.bundles for c in b.chunks})
    for path, digest in sorted(manifest.files.items()):
        table.add_row(path, f"{tokens[path]:,}" if path in tokens else "", digest[:16])
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


def stats_report(stats) -> dict:
    """The ``stats --json`` output (documented in the README)."""
    total_written = sum(k.written for k in stats.kinds) or 1
    return {
        "schema": "tokeffc.stats/1",
        "release_tokens": stats.release_tokens,
        "kinds": [{"kind": k.kind, "written": k.written, "written_share": round(k.written / total_written, 4),
                   "emitted": k.emitted, "emitted_share": round(k.emitted / (stats.release_tokens or 1), 4)}
                  for k in stats.kinds],
        "heaviest_modules": [{"id": m.id, "path": m.path, "tokens": m.tokens, "immediate_in": m.immediate_in,
                              "chunk_in": m.chunk_in} for m in stats.heaviest],
        "repeated_blocks": [{"tokens": r.tokens, "repeated_tokens": r.repeated_tokens,
                             "places": [str(p) for p in r.places]} for r in stats.repeated],
        "recommendations": [{"action": r.action, "target": r.target, "effect": r.effect, "reason": r.reason}
                            for r in stats.recommendations],
    }


def stats_tables(stats) -> list[Table]:
    data = stats_report(stats)
    kinds = Table("kind", "tokens written", "% of sources", "tokens emitted", "% of release",
                  title="Where the tokens go (sources as written; release = every bundle as emitted)")
    for row in data["kinds"]:
        kinds.add_row(row["kind"], f"{row['written']:,}", f"{100 * row['written_share']:.1f}%",
                      f"{row['emitted']:,}", f"{100 * row['emitted_share']:.1f}%")
    heavy = Table("module", "tokens", "immediate in", "chunk in", title="Heaviest modules (tokens as written; bundles)")
    for row in data["heaviest_modules"]:
        heavy.add_row(row["id"], f"{row['tokens']:,}", str(row["immediate_in"]), str(row["chunk_in"]))
    repeated = Table("tokens", "repeated", "places", title="Blocks repeated across the framework")
    for row in data["repeated_blocks"]:
        repeated.add_row(f"{row['tokens']:,}", f"{row['repeated_tokens']:,}", ", ".join(row["places"]))
    advice = Table("action", "target", "effect", "why", title="Recommendations (effects computed, tokens)")
    for row in data["recommendations"]:
        advice.add_row(row["action"], row["target"], f"{row['effect']:+,}", row["reason"])
    return [kinds, heavy, repeated, advice]
