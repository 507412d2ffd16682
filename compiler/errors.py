"""One error type for the whole compiler, carrying a location and a hint.

Stages raise :class:`TokeffcError`; only the CLI turns it into a single
``file:line: what is wrong; what to do`` line and an exit code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

EXIT_OK = 0
EXIT_GATE = 1  # a gate failed: over budget, diff above threshold
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3  # sources, config or archive


@dataclass(frozen=True, slots=True)
class Span:
    """Where a piece of text came from: a path relative to the framework root, and a 1-based line."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


class TokeffcError(Exception):
    """A problem the user can fix. ``str()`` gives the one-line message."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, span: Span | None = None, hint: str = ""):
        self.message = message
        self.span = span
        self.hint = hint
        self.root = ""  # set by the pipeline, so that root-relative spans print as paths a user can open
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        text = " ".join(text.split())  # one line, whatever the parts held
        if not self.span:
            return text
        where = self.span
        if self.root:
            where = Span(os.path.normpath(os.path.join(self.root, self.span.path)), self.span.line)
        return f"{where}: {text}"

    def __str__(self) -> str:
        return self.one_line()


class ConfigError(TokeffcError):
    """Several config problems found at once; each is already one line."""

    def __init__(self, problems: list[TokeffcError]):
        self.problems = tuple(problems)
        first = problems[0]
        super().__init__(first.message, first.span, first.hint)

    def all_lines(self) -> list[str]:
        return [p.one_line() for p in self.problems]


class ArchiveError(TokeffcError):
    """A release folder or .tokb that is missing, truncated or tampered with."""
