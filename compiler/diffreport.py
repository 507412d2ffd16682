"""``tokeffc diff`` laid out: stable JSON, Markdown for a pull-request comment, tables.

They decide nothing: every figure comes from :mod:`tokeffc.diff`'s records. Tables are plain data
(:class:`Grid`), drawn by rich on a terminal and as aligned text elsewhere; rich is imported only to
draw them.
"""

from __future__ import annotations

import json
from typing import Any

from .diff import SCHEMA, BundleChange, Cause, Diff, GateFailure, Gates, ModuleChange, Side, Total
from .errors import printable
from .report import Grid, plain_text, rich_renderable  # noqa: F401 (the CLI prints diff parts with them)

ARROW = "→"
MAX_MD_ROWS = 100  # per table (or group of causes) in Markdown: a pull-request comment holds 65,536 characters


# --- JSON -----------------------------------------------------------------------------------------


def diff_json(diff: Diff, gates: Gates, failures: tuple[GateFailure, ...]) -> str:
    """The ``--format json`` document (schema ``tokeffc.diff/1``, documented in the README)."""
    return json.dumps(diff_data(diff, gates, failures), indent=2, sort_keys=True, ensure_ascii=False)


def diff_data(diff: Diff, gates: Gates, failures: tuple[GateFailure, ...]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "old": _side(diff.old),
        "new": _side(diff.new),
        "summary": _summary(diff),
        "bundles": [_bundle(b) for b in diff.bundles],
        "modules": [_module(m) for m in diff.modules],
        "notes": list(diff.notes),
        "gates": {"set": dict(gates.named()), "passed": not failures,
                  "failed": [{"gate": f.gate, "subject": f.subject, "message": f.message} for f in failures]},
    }


def _side(side: Side) -> dict[str, Any]:
    m = side.manifest
    return {"source": side.source, "built": side.built, "framework": m.framework, "version": m.version,
            "compiler": m.compiler, "release_id": side.release_id}


def _summary(diff: Diff) -> dict[str, Any]:
    s = diff.summary
    return {
        "total": _total(s.total),
        "tiers": [{"tier": tier, **_total(total)} for tier, total in s.tiers],
        "median": {"delta": s.median_delta, "percent": s.median_percent},
        "bundles": dict(s.counts),
        "largest_movers": [{"command": b.command, "tier": b.tier, "delta": b.delta, "percent": b.percent}
                           for b in s.movers],
        "newly_over": [{"command": b.command, "tier": b.tier, "tokens": b.new, "budget": b.budget[1]}
                       for b in s.newly_over],
    }


def _total(total: Total) -> dict[str, Any]:
    return {"old": total.old, "new": total.new, "delta": total.delta, "percent": total.percent}


def _bundle(b: BundleChange) -> dict[str, Any]:
    return {"command": b.command, "tier": b.tier, "change": b.change, "old": b.old, "new": b.new,
            "delta": b.delta, "percent": b.percent, "budget": _pair(b.budget), "status": _pair(b.status),
            "causes": [_cause(c) for c in b.causes]}


def _cause(c: Cause) -> dict[str, Any]:
    return {"module": c.module, "path": c.path, "change": c.change, "old": c.old, "new": c.new,
            "delta": c.delta, "detail": c.detail}


def _module(m: ModuleChange) -> dict[str, Any]:
    return {"id": m.id, "path": m.path, "role": m.role, "change": m.change, "old": m.old, "new": m.new,
            "delta": m.delta, "bundles": _pair(m.bundles), "chunks": _pair(m.chunks)}


def _pair(pair: tuple) -> dict[str, Any]:
    return {"old": pair[0], "new": pair[1]}


# --- words and numbers shared by Markdown and tables ------------------------------------------------


def headline(diff: Diff) -> str:
    return f"{_label(diff.old)} {ARROW} {_label(diff.new)}"


def _label(side: Side) -> str:
    return f"{side.manifest.framework} {side.manifest.version} ({side.source})"


def tokens(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def signed(value: float | None) -> str:
    """+12, -3, 0; a float that is whole prints as an integer."""
    if value is None:
        return "-"
    if value == int(value):
        value = int(value)
    return f"{value:+,}" if value else "0"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def status(b: BundleChange) -> str:
    """Budget status before -> after, with the budget when it changed."""
    states = [s for s in b.status if s is not None]
    text = states[0] if len(set(states)) == 1 else f"{states[0]} {ARROW} {states[1]}"
    budgets = [x for x in b.budget if x is not None]
    if len(set(budgets)) > 1:
        text += f" (budget {budgets[0]:,} {ARROW} {budgets[1]:,})"
    return text


def bundle_delta(b: BundleChange) -> str:
    return {"added": "new", "removed": "gone"}.get(b.change) or signed(b.delta)


def counts_line(diff: Diff) -> str:
    counts = ", ".join(f"{n} {kind}" for kind, n in diff.summary.counts)
    over = ", ".join(b.name for b in diff.summary.newly_over) or "none"
    return f"Bundles: {counts}. Newly over budget: {over}."


def movers_line(diff: Diff) -> str:
    movers = [f"{b.name} {signed(b.delta)} ({pct(b.percent)})" if b.percent is not None
              else f"{b.name} {bundle_delta(b)} ({tokens(b.new if b.new is not None else b.old)})"
              for b in diff.summary.movers]
    return f"Largest movers: {', '.join(movers) or 'none'}."


def gates_line(gates: Gates, failures: tuple[GateFailure, ...]) -> str:
    if not gates.named():
        return "Gates: none set (report only)."
    named = ", ".join(f"--{name}" + ("" if value is True else f" {value:g}") for name, value in gates.named())
    if not failures:
        return f"Gates: passed ({named})."
    return f"Gates: FAILED ({named}): {len(failures)} failure{'s' if len(failures) > 1 else ''}."


def shown(diff: Diff, show_all: bool) -> tuple[tuple[BundleChange, ...], tuple[ModuleChange, ...]]:
    """The rows to print: changed ones only, unless ``--all``."""
    if show_all:
        return diff.bundles, diff.modules
    return (tuple(b for b in diff.bundles if b.change != "unchanged"),
            tuple(m for m in diff.modules if m.change != "unchanged"))


def cause_groups(bundles) -> list[tuple[list[BundleChange], tuple[Cause, ...]]]:
    """Bundles whose causes are identical, together (one module edited moves many bundles alike)."""
    groups: dict[tuple[Cause, ...], list[BundleChange]] = {}
    for b in bundles:
        if b.causes:
            groups.setdefault(b.causes, []).append(b)
    return [(members, causes) for causes, members in groups.items()]


def cause_words(c: Cause) -> str:
    return f"{c.change}: {c.detail}" if c.detail else c.change


# --- Markdown -------------------------------------------------------------------------------------


def diff_markdown(diff: Diff, gates: Gates, failures: tuple[GateFailure, ...], show_all: bool = False) -> str:
    """A pull-request comment: the summary in view, bundles, causes and modules collapsed."""
    bundles, modules = shown(diff, show_all)
    parts = [f"### tokeffc diff: {md(headline(diff))}", _md_summary(diff),
             md(counts_line(diff)) + "  \n" + md(movers_line(diff)) + "  \n" + md(gates_line(gates, failures))]
    if failures:
        parts.append("\n".join(f"- {md(f.message)}" for f in failures[:MAX_MD_ROWS]) + _more(len(failures)))
    parts += [f"> **Note**: {md(note)}" for note in diff.notes]
    if bundles:
        parts.append(_details(f"Bundles ({len(bundles)} shown)", _md_bundles(bundles)))
    changed = [b for b in bundles if b.causes]
    if changed:
        parts.append(_details(f"Why they changed ({len(changed)} bundles)", _md_causes(cause_groups(changed))))
    if modules:
        parts.append(_details(f"Modules ({len(modules)} shown)", _md_modules(modules)))
    return "\n\n".join(parts) + "\n"


def md(text: str) -> str:
    """Text from a framework (ids, paths) made inert in Markdown: no HTML, links, emphasis or cell breaks."""
    text = printable(text).replace("\\", "\\\\")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "`*_[]|#!~":
        text = text.replace(char, "\\" + char)
    return text


def _md_table(header: list[str], rows: list[list[str]], right: int) -> str:
    """A GitHub table; columns from ``right`` on are numbers, aligned right."""
    align = ["---" if i < right else "---:" for i in range(len(header))]
    lines = [header, align, *rows[:MAX_MD_ROWS]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + _more(len(rows))


def _more(count: int) -> str:
    """A note for rows left out to keep a comment under GitHub's size limit."""
    if count <= MAX_MD_ROWS:
        return ""
    return f"\n\n... and {count - MAX_MD_ROWS} more: run tokeffc diff --format json for every row."


def _md_summary(diff: Diff) -> str:
    s = diff.summary
    rows = [["**total**", *_total_cells(s.total)]]
    rows += [[md(tier), *_total_cells(total)] for tier, total in s.tiers]
    rows.append(["median change per bundle", "", "", signed(s.median_delta), pct(s.median_percent)])
    return _md_table(["tokens", "old", "new", "delta", "%"], rows, right=1)


def _total_cells(total: Total) -> list[str]:
    return [tokens(total.old), tokens(total.new), signed(total.delta), pct(total.percent)]


def _md_bundles(bundles: tuple[BundleChange, ...]) -> str:
    rows = [[md(b.command), md(b.tier), md(status(b)), tokens(b.old), tokens(b.new), bundle_delta(b), pct(b.percent)]
            for b in bundles]
    return _md_table(["command", "tier", "status", "old", "new", "delta", "%"], rows, right=3)


def _md_causes(groups) -> str:
    blocks = []
    for members, causes in groups[:MAX_MD_ROWS]:
        rows = [[md(c.module), md(cause_words(c)), tokens(c.old), tokens(c.new), signed(c.delta)] for c in causes]
        names = ", ".join(f"**{md(b.name)}**" for b in members)
        each = " each" if len(members) > 1 else ""
        title = f"{names}: {signed(members[0].delta)}{each}"
        blocks.append(title + "\n\n" + _md_table(["module", "change", "old", "new", "delta"], rows, right=2))
    return "\n\n".join(blocks) + _more(len(groups))


def _md_modules(modules: tuple[ModuleChange, ...]) -> str:
    rows = [[md(m.id), md(m.role), md(m.change), tokens(m.old), tokens(m.new), signed(m.delta),
             _carried(m.bundles), _carried(m.chunks)] for m in modules]
    return _md_table(["module", "role", "change", "old", "new", "delta", "bundles", "chunk in"], rows, right=3)


def _carried(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]} {ARROW} {pair[1]}"


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


# --- tables -----------------------------------------------------------------------------------------


def diff_tables(diff: Diff, gates: Gates, failures: tuple[GateFailure, ...],
                show_all: bool = False) -> list[Grid | str]:
    """What the table format prints, in order: lines and grids (changed rows unless ``--all``)."""
    bundles, modules = shown(diff, show_all)
    out: list[Grid | str] = [f"tokeffc diff: {headline(diff)}", *(f"note: {note}" for note in diff.notes)]
    out += [_summary_grid(diff), counts_line(diff), movers_line(diff)]
    if bundles:
        out.append(_bundles_grid(bundles))
    if any(b.causes for b in bundles):
        out.append(_causes_grid(bundles))
    if modules:
        out.append(_modules_grid(modules))
    return [*out, gates_line(gates, failures)]


def _summary_grid(diff: Diff) -> Grid:
    s = diff.summary
    rows = [("total", *_total_cells(s.total)), *((tier, *_total_cells(total)) for tier, total in s.tiers),
            ("median change per bundle", "", "", signed(s.median_delta), pct(s.median_percent))]
    return Grid("Summary (every bundle's tokens)", ("tokens", "old", "new", "delta", "%"), tuple(rows),
                right=(False, True, True, True, True))


def _bundles_grid(bundles: tuple[BundleChange, ...]) -> Grid:
    rows = tuple((b.command, b.tier, status(b), tokens(b.old), tokens(b.new), bundle_delta(b), pct(b.percent))
                 for b in bundles)
    return Grid("Bundles", ("command", "tier", "status", "old", "new", "delta", "%"), rows,
                right=(False, False, False, True, True, True, True))


def _causes_grid(bundles: tuple[BundleChange, ...]) -> Grid:
    rows = []
    for members, causes in cause_groups(bundles):
        names = ", ".join(b.name for b in members)
        rows += [(names if i == 0 else "", c.module, cause_words(c), tokens(c.old), tokens(c.new), signed(c.delta))
                 for i, c in enumerate(causes)]
    return Grid("Why they changed", ("bundles", "module", "change", "old", "new", "delta"), tuple(rows),
                caption="each bundle's rows sum to its delta; (structure) is the compiler's own lines",
                right=(False, False, False, True, True, True))


def _modules_grid(modules: tuple[ModuleChange, ...]) -> Grid:
    rows = tuple((m.id, m.role, m.change, tokens(m.old), tokens(m.new), signed(m.delta), _carried(m.bundles),
                  _carried(m.chunks)) for m in modules)
    return Grid("Modules (tokens as written; bundles carrying them)",
                ("module", "role", "change", "old", "new", "delta", "bundles", "chunk in"), rows,
                right=(False, False, False, True, True, True, True, True))
