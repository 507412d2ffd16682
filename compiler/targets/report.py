"""An install as a table (rich on a terminal, plain text elsewhere) or stable JSON. They decide nothing."""

from __future__ import annotations

from ..report import Grid
from .claude_code import TARGET, Installed

JSON_SCHEMA = "tokeffc.install-report/1"
ENTRY_KINDS = ("command", "agent", "skill")


def install_report(installed: Installed, warnings: tuple[str, ...] = ()) -> dict:
    """The ``build --target ... --json`` output (documented in the README)."""
    layout, changes = installed.layout, installed.changes
    session = layout.session
    return {
        "schema": JSON_SCHEMA,
        "target": TARGET,
        "framework": layout.result.framework.config.name,
        "version": layout.result.framework.config.version,
        "project": str(layout.project),
        "tiers": list(layout.tiers),
        "status": "over" if layout.over else "ok",
        "files": [{"path": f.path, "kind": f.kind, "name": f.name, "tier": f.tier, "tokens": f.tokens,
                   "structure": f.structure, "baseline": f.baseline} for f in layout.files],
        "session_start": {"claude_md": session.claude_md, "listing": session.listing, "tokens": session.tokens,
                          "baseline": session.baseline},
        "changes": None if changes is None else {"written": [p for p, _ in changes.write],
                                                  "removed": list(changes.remove),
                                                  "unchanged": list(changes.unchanged)},
        "warnings": list(warnings),
    }


def install_grid(installed: Installed) -> Grid:
    """One row per installed file; an entry's row adds what loads when it runs (with CLAUDE.md)."""
    layout = installed.layout
    start = layout.session.tokens
    rows = tuple((f.path, f.kind, f.tier, f"{f.tokens:,}", f"{f.structure:,}",
                  f"{start + f.tokens:,}" if f.kind in ENTRY_KINDS else "",
                  f"{f.baseline:,}" if f.baseline is not None else "") for f in layout.files)
    caption = ("loads: the file with what every session loads; baseline: what Claude Code loads for it from the "
               "sources as written; structure: tokeffc's own lines (index, pointers, left-out lines)")
    return Grid(f"{layout.owner}: {TARGET} install ({', '.join(layout.tiers)})",
                ("file", "kind", "tier", "tokens", "structure", "loads", "baseline"), rows, caption,
                (False, False, False, True, True, True, True))


def summary_lines(installed: Installed) -> list[str]:
    layout, changes = installed.layout, installed.changes
    session = layout.session
    saving = f", {_relative(session.tokens, session.baseline)}" if session.baseline else ""
    lines = [f"session start: {session.tokens:,} tokens (CLAUDE.md {session.claude_md:,} + skill listing "
             f"{session.listing:,}); Claude Code loads {session.baseline:,} today{saving}"]
    if changes is not None and changes.previous is not None and changes.previous.owner != layout.owner:
        lines.append(f"replaced the install of {changes.previous.owner}")
    if changes is not None:
        lines.append(f"installed into {layout.project}: {len(changes.write)} written, {len(changes.unchanged)} "
                     f"unchanged, {len(changes.remove)} removed (ledger: .claude/tokeffc/ledger.json)")
    return lines


def _relative(tokens: int, baseline: int) -> str:
    """"12.5% less" or "3.0% more" than the baseline."""
    change = 100 * (baseline - tokens) / baseline
    return f"{abs(change):.1f}% {'less' if change >= 0 else 'more'}"
