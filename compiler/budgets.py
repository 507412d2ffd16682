"""Token budgets per tier and per entry: ok / warn / over, and what to cut when over."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .assemble import Bundle
from .graph import Framework
from .manifest import CutHint

MAX_CUT_HINTS = 5


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    command: str  # the entry's id
    tier: str
    tokens: int
    budget: int
    status: str  # ok | warn | over
    cut: tuple[CutHint, ...]  # filled when over


def check_budgets(framework: Framework, bundles: tuple[Bundle, ...]) -> tuple[BudgetCheck, ...]:
    config = framework.config
    users = Counter((b.tier, d.path) for b in bundles for d in b.content.docs)
    checks = []
    for bundle in bundles:
        entry = bundle.selection.entry
        own = framework.documents[entry.path].budget_for(bundle.tier) if entry.path else None
        budget = config.budget_for(entry.id, bundle.tier, own)
        tokens = bundle.content.tokens
        status = "over" if tokens > budget else "warn" if tokens >= config.warn_at * budget else "ok"
        cut = _what_to_cut(framework, bundle, users) if status == "over" else ()
        checks.append(BudgetCheck(entry.id, bundle.tier, tokens, budget, status, cut))
    return tuple(checks)


def _what_to_cut(framework: Framework, bundle: Bundle, users: Counter) -> tuple[CutHint, ...]:
    entry = bundle.selection.entry.path
    modules = [d for d in bundle.content.docs if d.path != entry and framework.documents[d.path].role != "core"]
    largest = sorted(modules, key=lambda d: (-d.emitted, d.id))[:MAX_CUT_HINTS]
    alone = sorted((d for d in modules if users[(bundle.tier, d.path)] == 1), key=lambda d: (-d.emitted, d.id))
    hints = [CutHint(d.id, d.path, d.emitted, "largest") for d in largest]
    hints += [CutHint(d.id, d.path, d.emitted, "only-this-command") for d in alone[:MAX_CUT_HINTS]]
    return tuple(hints)
