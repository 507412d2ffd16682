"""Token budgets per tier and per command: ok / warn / over, and what to cut when over."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .assemble import Bundle
from .graph import Framework

MAX_CUT_HINTS = 5


@dataclass(frozen=True, slots=True)
class CutHint:
    id: str
    path: str
    tokens: int
    reason: str  # largest | only-this-command


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    command: str
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
        command = framework.documents[bundle.selection.command]
        budget = config.budget_for(command.id, bundle.tier, command.budget_for(bundle.tier))
        tokens = bundle.content.tokens
        status = "over" if tokens > budget else "warn" if tokens >= config.warn_at * budget else "ok"
        cut = _what_to_cut(framework, bundle, users) if status == "over" else ()
        checks.append(BudgetCheck(command.id, bundle.tier, tokens, budget, status, cut))
    return tuple(checks)


def _what_to_cut(framework: Framework, bundle: Bundle, users: Counter) -> tuple[CutHint, ...]:
    modules = [d for d in bundle.content.docs if framework.documents[d.path].kind == "module"]
    largest = sorted(modules, key=lambda d: (-d.emitted, d.id))[:MAX_CUT_HINTS]
    alone = sorted((d for d in modules if users[(bundle.tier, d.path)] == 1), key=lambda d: (-d.emitted, d.id))
    hints = [CutHint(d.id, d.path, d.emitted, "largest") for d in largest]
    hints += [CutHint(d.id, d.path, d.emitted, "only-this-command") for d in alone[:MAX_CUT_HINTS]]
    return tuple(hints)
