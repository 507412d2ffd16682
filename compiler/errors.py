"""One error vocabulary for the whole compiler: exit codes, and errors that carry a location and a hint.

Stages raise these; only the CLI turns them into ``error: file:line: what is wrong; what to do``
lines and an exit code. Standard library only: the runtime shares it.
"""

from __future__ import annotations

import os
from enum import IntEnum
from typing import NamedTuple


class ExitCode(IntEnum):
    OK = 0
    GATE = 1  # a gate failed: over budget, diff above its threshold
    USAGE = 2  # an unknown option, command, tier or pass
    BAD_INPUT = 3  # sources, config, templates, archives, manifests
    INTERNAL = 4  # a bug in tokeffc
    OUTPUT = 5  # the output could not be written: permissions, a full disk, a path through a file


# Kept for callers that name the codes one by one.
EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_BAD_INPUT = ExitCode.OK, ExitCode.GATE, ExitCode.USAGE, ExitCode.BAD_INPUT


def printable(text: str) -> str:
    """``text`` on one line: control characters (a newline in a file name) shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Span(NamedTuple):
    """Where a piece of text came from: a path relative to the framework root, and a 1-based line.

    A named tuple rather than a dataclass: ``dataclasses`` (and the ``inspect`` it imports) would
    add about 8 ms to ``import tokeffc.runtime``, which shares this module.
    """

    path: str
    line: int = 0

    def __str__(self) -> str:
        path = printable(self.path)
        return f"{path}:{self.line}" if self.line else path


class Notice(NamedTuple):
    """A warning: the build goes on, and the user is told where and what."""

    span: Span
    message: str

    def one_line(self, root: str = "") -> str:
        where = self.span
        if root and not os.path.isabs(where.path):
            where = Span(os.path.normpath(os.path.join(root, where.path)), where.line)
        return f"{where}: {' '.join(printable(self.message).split())}"


class TokeffcError(Exception):
    """A problem the user can fix. ``str()`` gives the one-line message."""

    exit_code: int = ExitCode.BAD_INPUT

    def __init__(self, message: str, span: Span | None = None, hint: str = ""):
        self.message = message
        self.span = span
        self.hint = hint
        self.root = ""  # set by the pipeline, so that root-relative spans print as paths a user can open
        super().__init__(message)

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        text = " ".join(printable(text).split())  # one line, whatever the parts held
        if not self.span:
            return text
        where = self.span
        if self.root and not os.path.isabs(where.path):
            where = Span(os.path.normpath(os.path.join(self.root, where.path)), where.line)
        return f"{where}: {text}"

    def lines(self) -> list[str]:
        """Every line this error prints (one, unless it gathers several problems)."""
        return [self.one_line()]

    def located(self, root: str) -> TokeffcError:
        """This error with root-relative spans printed from ``root``."""
        self.root = root
        return self

    def __str__(self) -> str:
        return self.one_line()


class UsageError(TokeffcError):
    """The command line asks for something that does not exist (a command, a tier, a pass)."""

    exit_code = ExitCode.USAGE


class OutputError(TokeffcError):
    """The user's environment refused a write: a read-only folder, a full disk, a path through a file."""

    exit_code = ExitCode.OUTPUT


class ReleaseError(TokeffcError):
    """A release (folder, manifest or ``.tokb``) that is missing, malformed, truncated or tampered with."""


ArchiveError = ReleaseError  # the name earlier versions used


class Problems(TokeffcError):
    """Every problem one run found (config keys, documents), reported together, one line each."""

    def __init__(self, problems: list[TokeffcError]):
        if not problems:
            raise ValueError("Problems needs at least one problem")
        self.problems = tuple(sorted(problems, key=_order))
        first = self.problems[0]
        super().__init__(first.message, first.span, first.hint)

    def lines(self) -> list[str]:
        return [p.one_line() for p in self.problems]

    def located(self, root: str) -> TokeffcError:
        for problem in self.problems:
            problem.located(root)
        return super().located(root)


ConfigError = Problems  # config problems are the first kind of problems gathered


def _order(problem: TokeffcError) -> tuple[str, int, str]:
    span = problem.span or Span("")
    return span.path, span.line, problem.message


def raise_all(problems: list[TokeffcError]) -> None:
    """Raise the problems found so far, if any: one alone as itself, several together."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise Problems(problems)
