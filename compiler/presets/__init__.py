"""Presets: layouts and conventions of hosts and frameworks, shipped as data (one YAML file each)."""

NAMES = ("claude-code", "claude-plugin", "bmad")
