"""Targets: a compiled framework laid out where a host reads it, as the host uses it.

``claude_code`` writes a project's ``.claude/`` tree and ``CLAUDE.md``; ``ledger`` installs any such
tree into a project without touching a file tokeffc did not write.
"""

TARGETS = ("claude-code",)
