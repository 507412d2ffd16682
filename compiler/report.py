"""Formatters: a build, a release or stats as tables (rich on a terminal, plain text elsewhere) or stable
JSON. They decide nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import printable

if TYPE_CHECKING:  # a cached build prints its table without the manifest module
    from .manifest import Manifest

JSON_SCHEMA = "tokeffc.build-report/2"
NARROW = 100  # below this many columns the per-step columns are left out, never cut


@dataclass(frozen=True, slots=True)
class Grid:
    """A table as plain data: rich draws it on a terminal, ``plain_text`` everywhere else."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    right: tuple[bool, ...] = ()  # per column: right-aligned (numbers)


def build_report(manifest: Manifest, release_id: str, over: bool, warnings: tuple[str, ...] = ()) -> dict:
    """The ``--json`` output of build and check (documented in the README), without ``written``.

    Plain data: the table is drawn from it too, so a cached build can print without the manifest.
    """
    from .manifest import to_data

    return {
        "schema": JSON_SCHEMA,
        "framework": manifest.framework,
        "version": manifest.version,
        "preset": manifest.preset,
        "release_id": release_id,
        "written": None,
        "passes": [p.name for p in manifest.passes],
        "lossy_passes": [p.name for p in manifest.passes if not p.lossless],
        "baseline": to_data(manifest.baseline),
        "status": "over" if over else "ok",
        "bundles": to_data(manifest.bundles),
        "unreached": list(manifest.unreached),
        "external": to_data(manifest.external),
        "missing": to_data(manifest.missing),
        "warnings": list(warnings),
    }


TABLE_FIELDS = ("command", "tier", "tokens", "budget", "status", "baseline_tokens", "saved", "cut")


def table_of(report: dict) -> dict:
    """The build report cut to what the table and the over-budget lines read: every bundle keeps these
    fields and its chunks' ids. A build the cache serves prints from it without reading the whole report."""
    bundles = [{**{name: entry[name] for name in TABLE_FIELDS}, "chunks": [{"id": c["id"]} for c in entry["chunks"]]}
               for entry in report["bundles"]]
    return {**report, "bundles": bundles}


def bundle_grid(report: dict, width: int) -> Grid:
    """The build table from a build report; on a narrow terminal the per-step columns go, never cut."""
    bundles = report["bundles"]
    steps = ["pruned", *report["passes"], "structure"]
    wide = width >= NARROW
    headers = ("command", "tier", "tokens", "budget", "status", "baseline", "saving", *(steps if wide else ()),
               "chunks")
    rows = []
    for entry in bundles:
        baseline, tokens = entry["baseline_tokens"], entry["tokens"]
        saving = f"{100 * (baseline - tokens) / baseline:.1f}%" if baseline else "-"
        rows.append((entry["command"], entry["tier"], f"{tokens:,}", f"{entry['budget']:,}", entry["status"],
                     f"{baseline:,}", saving, *((f"{entry['saved'][s]:,}" for s in steps) if wide else ()),
                     str(len(entry["chunks"]))))
    lossy = report["lossy_passes"]
    caption = (f"baseline ({report['baseline']['kind']}): {report['baseline']['rule']}. passes: "
               f"{', '.join(report['passes']) or 'none'}" + (f" (lossy: {', '.join(lossy)})" if lossy else "")
               + (". tokens = baseline - the sum of the step columns (structure, tokeffc's own lines, is negative)"
                  if wide else ". Per-step savings: widen the terminal, or use --json"))
    return Grid(f"{report['framework']} {report['version']}: bundles", headers, tuple(rows), caption,
                tuple(h not in ("command", "tier", "status") for h in headers))


def release_grid(manifest: Manifest) -> Grid:
    tokens = {b.path: b.tokens for b in manifest.bundles}
    tokens.update({c.path: c.tokens for b in manifest.bundles for c in b.chunks})
    rows = tuple((path, f"{tokens[path]:,}" if path in tokens else "", digest[:16])
                 for path, digest in sorted(manifest.files.items()))
    return Grid("", ("file", "tokens", "sha256"), rows, right=(False, True, False))


def over_budget_lines(report: dict) -> list[str]:
    lines = []
    for entry in report["bundles"]:
        if entry["status"] != "over":
            continue
        lines.append(f"{entry['command']} [{entry['tier']}]: {entry['tokens']:,} tokens, "
                     f"{entry['tokens'] - entry['budget']:,} over its budget of {entry['budget']:,}. What to cut:")
        for hint in entry["cut"]:
            why = "largest module" if hint["reason"] == "largest" else "used by this command alone"
            lines.append(f"  - {hint['id']} ({hint['path']}): {hint['tokens']:,} tokens, {why}")
    return lines


def plain_text(part: Grid | str) -> str:
    """A line, or a grid as aligned text columns (CI logs, pipes): nothing wrapped or cut."""
    if isinstance(part, str):
        return printable(part) + "\n"
    table = [part.headers, *(tuple(printable(cell) for cell in row) for row in part.rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(part.headers))]
    right = part.right or (False,) * len(widths)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    out = [part.title] if part.title else []
    out += [line(part.headers), line(tuple("-" * w for w in widths)), *(line(r) for r in table[1:])]
    return "\n".join(out + ([part.caption] if part.caption else [])) + "\n"


def rich_renderable(part: Grid | str) -> Any:
    """A line, or a grid as a rich table; cells are text, never markup (ids may hold brackets)."""
    from rich.text import Text

    if isinstance(part, str):
        return Text(part)
    from rich.table import Table

    table = Table(title=part.title or None, caption=part.caption or None)
    right = part.right or (False,) * len(part.headers)
    for header, is_right in zip(part.headers, right):
        table.add_column(header, justify="right" if is_right else "left", no_wrap=is_right)
    for row in part.rows:
        table.add_row(*(Text(cell, style=_STATUS.get(cell, "") if h == "status" else "")
                        for h, cell in zip(part.headers, row)))
    return table


_STATUS = {"ok": "green", "warn": "yellow", "over": "bold red"}


def stats_report(stats) -> dict:
    """The ``stats --json`` output (documented in the README)."""
    total_written = sum(k.written for k in stats.kinds) or 1
    return {
        "schema": "tokeffc.stats/2",
        "baseline": stats.baseline,
        "release_tokens": stats.release_tokens,
        "kinds": [{"kind": k.kind, "written": k.written, "written_share": round(k.written / total_written, 4),
                   "emitted": k.emitted, "emitted_share": round(k.emitted / (stats.release_tokens or 1), 4)}
                  for k in stats.kinds],
        "heaviest_modules": [{"id": m.id, "path": m.path, "tokens": m.tokens, "immediate_in": m.immediate_in,
                              "chunk_in": m.chunk_in} for m in stats.heaviest],
        "always_loaded": [{"id": a.id, "path": a.path, "tokens": a.tokens, "referred_by": list(a.referred_by),
                           "evidence": list(a.evidence), "saving_per_command": a.saving_per_command}
                          for a in stats.always],
        "repeated_blocks": [{"tokens": r.tokens, "repeated_tokens": r.repeated_tokens,
                             "places": [str(p) for p in r.places]} for r in stats.repeated],
        "recommendations": [{"action": r.action, "target": r.target, "effect": r.effect, "reason": r.reason}
                            for r in stats.recommendations],
    }


def stats_grids(stats) -> list[Grid]:
    data = stats_report(stats)
    kinds = Grid("Where the tokens go (sources as written; release = every bundle as emitted)",
                 ("kind", "tokens written", "% of sources", "tokens emitted", "% of release"),
                 tuple((r["kind"], f"{r['written']:,}", f"{100 * r['written_share']:.1f}%", f"{r['emitted']:,}",
                        f"{100 * r['emitted_share']:.1f}%") for r in data["kinds"]),
                 right=(False, True, True, True, True))
    heavy = Grid("Heaviest modules (tokens as written; bundles)", ("module", "tokens", "immediate in", "chunk in"),
                 tuple((r["id"], f"{r['tokens']:,}", str(r["immediate_in"]), str(r["chunk_in"]))
                       for r in data["heaviest_modules"]), right=(False, True, True, True))
    always = Grid("Always loaded: who refers to it, and what deferring it for the others saves per command "
                  "(a rebuild)", ("file", "tokens", "referred to by", "saving/command"),
                  tuple((r["id"], f"{r['tokens']:,}", ", ".join(r["referred_by"]) or "-",
                         f"{r['saving_per_command']:,}") for r in data["always_loaded"]),
                  right=(False, True, False, True))
    repeated = Grid("Blocks repeated across the framework", ("tokens", "repeated", "places"),
                    tuple((f"{r['tokens']:,}", f"{r['repeated_tokens']:,}", ", ".join(r["places"]))
                          for r in data["repeated_blocks"]), right=(True, True, False))
    advice = Grid("Recommendations (effects computed, tokens)", ("action", "target", "effect", "why"),
                  tuple((r["action"], r["target"], f"{r['effect']:+,}", r["reason"]) for r in data["recommendations"]),
                  right=(False, False, True, False))
    return [g for g in (kinds, heavy, always, repeated, advice) if g.rows]
