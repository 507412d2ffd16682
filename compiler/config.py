"""Load and validate ``tokeffc.yaml`` once, up front, reporting every problem at once."""

from __future__ import annotations

import difflib
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, Span, TokeffcError
from .yamlio import decode_utf8, describe_yaml_error, read_yaml  # noqa: F401 (parse.py imports describe_yaml_error)

CONFIG_NAME = "tokeffc.yaml"
# libyaml's safe loader when PyYAML was built with it (several times faster), else the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LOAD_KINDS = ("immediate", "on_demand", "lazy")  # most eager first
PASS_NAMES = ("normalise", "dedupe", "checkpoints")
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 1024 * 1024

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
DEFAULT_TIERS = {"minimal": {"budget": 20000}, "standard": {"budget": 50000}, "full": {"budget": 100000}}
TOP_KEYS = (
    "name", "version", "encoding", "encoding_sha256", "core", "commands", "modules", "exclude",
    "tiers", "warn_at", "budgets", "aliases", "search_paths", "declared_load", "passes", "reasoning_headings",
    "max_file_bytes",
)
TIER_KEYS = ("budget", "compress")


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    budget: int
    compress: bool  # keep only conclusions of reasoning checkpoints


@dataclass(frozen=True, slots=True)
class Config:
    root: Path
    path: Path
    name: str
    version: str
    encoding: str
    encoding_sha256: str | None
    core: tuple[str, ...]
    commands: tuple[str, ...]
    modules: tuple[str, ...]
    exclude: tuple[str, ...]
    tiers: tuple[Tier, ...]
    warn_at: float
    budgets: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    aliases: tuple[tuple[str, str], ...]
    search_paths: tuple[str, ...]  # folders tried, in order, for a reference found nowhere else
    declared_load: str  # the load of dependencies declared in fenced YAML (BMAD-style)
    passes: tuple[str, ...]
    reasoning_headings: tuple[str, ...]
    max_file_bytes: int = MAX_FILE_BYTES
    source_text: str = field(default="", repr=False)
    key_lines: tuple[tuple[str, int], ...] = field(default=(), repr=False)  # top-level key -> line

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    def span(self, key: str | None = None) -> Span:
        """Where the config file (or one of its top-level keys) is, relative to the root like every span."""
        line = dict(self.key_lines).get(key, 0) if key else 0
        return Span(os.path.relpath(self.path, self.root).replace(os.sep, "/"), line)

    def tier(self, name: str) -> Tier:
        return self.tiers[self.tier_names.index(name)]

    def tier_rank(self, name: str) -> int:
        return self.tier_names.index(name)

    def budget_for(self, command: str, tier: str, override: int | None = None) -> int:
        """A command's budget: its front matter ``budget``, else ``budgets:``, else the tier's."""
        if override is not None:
            return override
        for name, per_tier in self.budgets:
            if name == command:
                for tier_name, budget in per_tier:
                    if tier_name == tier:
                        return budget
        return self.tier(tier).budget


def load_config(root: Path, config_path: Path | None = None, *, release_version: str | None = None) -> Config:
    """Read the framework's config; raise :class:`ConfigError` listing every problem."""
    root = Path(root)
    if not root.is_dir():
        raise TokeffcError(f"framework root '{root}' is not a folder", hint="pass the folder that holds tokeffc.yaml")
    path = Path(config_path) if config_path else root / CONFIG_NAME
    if not path.is_file():
        raise TokeffcError(
            f"no {path.name} in '{root}'", Span(str(path)),
            "create one with 'tokeffc init DIR', or pass --config FILE",
        )
    text = _read_config_text(path)
    data, lines = _parse_yaml(text, path)
    checker = _Checker(str(path), lines)
    config = checker.build(root.resolve(), path, data, text, release_version)
    if checker.problems:
        raise ConfigError(sorted(checker.problems, key=lambda p: p.span.line))
    return config


def _read_config_text(path: Path) -> str:
    """The config's text; bad UTF-8 or a file larger than any config is an error at its line."""
    with path.open("rb") as file:
        raw = file.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise TokeffcError(f"larger than {MAX_CONFIG_BYTES} bytes", Span(str(path), 1),
                           "is this the framework's config? It holds settings, not prompts")
    return decode_utf8(raw, str(path))


def _parse_yaml(text: str, path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """The config's mapping and the line of every key (duplicates, bombs, odd keys refused, located)."""
    doc = read_yaml(text, str(path))
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise TokeffcError("the config must be a mapping of keys", Span(str(path), doc.line()),
                           "see README, 'tokeffc.yaml'")
    return data, dict(doc.key_lines)


def key_lines(node: yaml.Node | None, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map every mapping key path (``("tiers", "minimal")``) of composed YAML to its 1-based line.

    Kept for parse.py until it reads through :func:`tokeffc.yamlio.read_yaml`, which gives these lines.
    """
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            lines.update(key_lines(value_node, key))
    return lines


class _Checker:
    """Collects every problem with its line; builds the Config from what is valid."""

    def __init__(self, path: str, lines: dict[tuple[str, ...], int]):
        self.path = path
        self.lines = lines
        self.problems: list[TokeffcError] = []

    def problem(self, key: tuple[str, ...], message: str, hint: str) -> None:
        line = next((self.lines[key[:end]] for end in range(len(key), 0, -1) if key[:end] in self.lines), 1)
        self.problems.append(TokeffcError(message, Span(self.path, line), hint))

    def unknown_keys(self, data: dict, allowed: tuple[str, ...], prefix: tuple[str, ...]) -> None:
        for key in sorted(map(str, data)):
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(allowed)}"
                self.problem((*prefix, key), f"unknown key '{'.'.join((*prefix, key))}'", hint)

    def build(self, root: Path, path: Path, data: dict, text: str, release_version: str | None) -> Config:
        self.unknown_keys(data, TOP_KEYS, ())
        tiers = self.tiers(data.get("tiers", DEFAULT_TIERS))
        tier_names = tuple(t.name for t in tiers)
        return Config(
            root=root,
            path=path,
            name=self.name(data.get("name")),
            version=self.version(release_version or data.get("version")),
            encoding=self.string(data, "encoding", "cl100k_base"),
            encoding_sha256=self.sha256(data.get("encoding_sha256")),
            core=self.paths(data, "core", ()),
            commands=self.paths(data, "commands", ("commands/**/*.md",)),
            modules=self.paths(data, "modules", ("modules/**/*.md",)),
            exclude=self.paths(data, "exclude", ()),
            tiers=tiers,
            warn_at=self.warn_at(data.get("warn_at", 0.8)),
            budgets=self.budgets(data.get("budgets", {}), tier_names),
            aliases=self.aliases(data.get("aliases", {})),
            search_paths=self.paths(data, "search_paths", ()),
            declared_load=self.load_kind(data.get("declared_load", "on_demand")),
            passes=self.passes(data.get("passes", {})),
            reasoning_headings=self.paths(data, "reasoning_headings", ()),
            max_file_bytes=self.positive_int(data, "max_file_bytes", MAX_FILE_BYTES),
            source_text=text,
            key_lines=tuple((key[0], line) for key, line in self.lines.items() if len(key) == 1),
        )

    def name(self, value: Any) -> str:
        if not isinstance(value, str) or not NAME_RE.match(value):
            self.problem(("name",), f"'name' must match [a-z0-9][a-z0-9-]*, got {value!r}", "e.g. name: acme")
            return "invalid"
        return value

    def version(self, value: Any) -> str:
        value = str(value) if value is not None else None
        if value is None or not SEMVER_RE.match(value):
            self.problem(("version",), f"'version' must be SemVer (1.4.0), got {value!r}",
                         "set version: 1.0.0 or pass --release-version")
            return "0.0.0"
        return value

    def string(self, data: dict, key: str, default: str) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value:
            self.problem((key,), f"'{key}' must be a non-empty string", f"default is {default!r}")
            return default
        return value

    def sha256(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
            self.problem(("encoding_sha256",), "'encoding_sha256' must be 64 lowercase hex digits",
                         "run 'sha256sum' on the .tiktoken file")
            return None
        return value

    def paths(self, data: dict, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = data.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem((key,), f"'{key}' must be a string or a list of strings", f"e.g. {key}: [a.md]")
            return default
        return tuple(value)

    def tiers(self, value: Any) -> tuple[Tier, ...]:
        if not isinstance(value, dict) or not value:
            self.problem(("tiers",), "'tiers' must map tier names to {budget: N}", "e.g. minimal: {budget: 20000}")
            value = DEFAULT_TIERS
        last = len(value) - 1
        tiers = tuple(t for i, (name, spec) in enumerate(value.items()) if (t := self.tier(name, spec, i == last)))
        budgeted = [t for t in tiers if t.budget]  # a refused budget is not also "smaller" than the one before
        for earlier, later in itertools.pairwise(budgeted):
            if later.budget < earlier.budget:
                self.problem(("tiers", later.name), f"tier '{later.name}' has a smaller budget than '{earlier.name}'",
                             "list tiers smallest first")
        return tiers

    def tier(self, name: str, spec: Any, last: bool) -> Tier | None:
        if not NAME_RE.match(name):
            self.problem(("tiers", name), f"tier name {name!r} must match [a-z0-9][a-z0-9-]*", "e.g. minimal")
            return None
        spec = spec if isinstance(spec, dict) else {"budget": spec}
        self.unknown_keys(spec, TIER_KEYS, ("tiers", name))
        budget = spec.get("budget")
        if not _positive_int(budget):
            self.problem(("tiers", name), f"tier '{name}' needs a positive integer budget", "e.g. {budget: 20000}")
            budget = 0
        compress = spec.get("compress", not last)
        if not isinstance(compress, bool):
            self.problem(("tiers", name, "compress"), f"tier '{name}': compress must be true or false", "")
            compress = False
        return Tier(name, budget, compress)

    def load_kind(self, value: Any) -> str:
        if value not in LOAD_KINDS:
            self.problem(("declared_load",), f"'declared_load' must be one of {', '.join(LOAD_KINDS)}", "")
            return "on_demand"
        return value

    def warn_at(self, value: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
            self.problem(("warn_at",), f"'warn_at' must be a share between 0 and 1, got {value!r}", "e.g. 0.8")
            return 0.8
        return float(value)

    def positive_int(self, data: dict, key: str, default: int) -> int:
        value = data.get(key, default)
        if not _positive_int(value):
            self.problem((key,), f"'{key}' must be a positive integer", f"default is {default}")
            return default
        return value

    def budgets(self, value: Any, tier_names: tuple[str, ...]) -> tuple:
        if not isinstance(value, dict):
            self.problem(("budgets",), "'budgets' must map commands to {tier: tokens}", "e.g. task: {minimal: 15000}")
            return ()
        result = []
        for command in sorted(map(str, value)):
            per_tier = value[command]
            if not isinstance(per_tier, dict):
                self.problem(("budgets", command), f"budgets.{command} must map tiers to tokens", "")
                continue
            entries = []
            for tier, budget in sorted(per_tier.items(), key=lambda kv: str(kv[0])):
                if str(tier) not in tier_names:
                    close = difflib.get_close_matches(str(tier), tier_names, n=1)
                    hint = f"did you mean '{close[0]}'?" if close else f"tiers are: {', '.join(tier_names)}"
                    self.problem(("budgets", command, str(tier)), f"unknown tier '{tier}' in budgets.{command}", hint)
                elif not _positive_int(budget):
                    self.problem(("budgets", command, str(tier)),
                                 f"budgets.{command}.{tier} must be a positive integer", "")
                else:
                    entries.append((str(tier), budget))
            result.append((command, tuple(entries)))
        return tuple(result)

    def aliases(self, value: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.problem(("aliases",), "'aliases' must map path prefixes to strings", 'e.g. "~/.claude/": ""')
            return ()
        # Longest prefix first, so the most specific alias wins.
        return tuple(sorted(((str(k), v) for k, v in value.items()), key=lambda kv: (-len(kv[0]), kv[0])))

    def passes(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, dict):
            self.problem(("passes",), "'passes' must map pass names to true/false", "e.g. passes: {dedupe: false}")
            return PASS_NAMES
        self.unknown_keys(value, PASS_NAMES, ("passes",))
        enabled = []
        for name in PASS_NAMES:
            flag = value.get(name, True)
            if not isinstance(flag, bool):
                self.problem(("passes", name), f"passes.{name} must be true or false", "")
            elif flag:
                enabled.append(name)
        return tuple(enabled)


def _positive_int(value: Any) -> bool:
    """A positive integer, and not a boolean (``true`` is an int to Python, not to a user)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
