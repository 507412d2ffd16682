"""Globs as tokeffc reads them in configs, rules and presets."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex: ``**`` spans folders, ``*`` and ``?`` stay in one; wildcards skip hidden names.

    A hidden folder (``.claude``) is matched only where the pattern names it, as in a shell.
    """
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append(r"(?:(?!\.)[^/]*/)*")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(r"(?:(?!\.)[^/]*(?:/(?!\.)[^/]*)*)?")
            index += 2
            continue
        if char == "*":
            out.append(r"(?!\.)[^/]*" if index == 0 or pattern[index - 1] == "/" else r"[^/]*")
        elif char == "?":
            out.append(r"[^/]")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                inner = pattern[index + 1:end]
                negated = inner.startswith("!")
                body = (inner[1:] if negated else inner).replace("\\", "\\\\")
                out.append("[" + ("^" if negated else "") + body + "]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out))
