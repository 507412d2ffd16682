"""Load and validate ``tokeffc.yaml`` (and the preset it names) once, up front, reporting every problem at once."""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import Problems, Span, TokeffcError, UsageError
from .passes import PASS_BY_NAME, PASS_NAMES, PASSES
from .presets import NAMES as PRESETS
from .rules import ROLES, Extractor, Rule, RuleReader, first_rule
from .yamlio import decode_utf8, read_yaml

CONFIG_NAME = "tokeffc.yaml"
LOAD_KINDS = ("immediate", "on_demand", "lazy")  # most eager first
MAX_FILE_BYTES = 4 * 1024 * 1024
BASELINES = ("host", "all")
ON_MISSING = ("error", "warn")
MAX_CONFIG_BYTES = 1024 * 1024

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
DEFAULT_TIERS = {"minimal": {"budget": 20000}, "standard": {"budget": 50000}, "full": {"budget": 100000}}
TOP_KEYS = (
    "preset", "name", "version", "encoding", "encoding_sha256", "core", "commands", "modules", "exclude",
    "tiers", "warn_at", "budgets", "aliases", "search_paths", "declared_load", "passes", "reasoning_headings",
    "max_file_bytes", "rules", "extractors", "external", "on_missing", "baseline", "entries", "listing",
    "offered", "session", "agent_commands", "resolve_by_name", "templating", "front_matter", "session_hooks",
)
TIER_KEYS = ("budget", "compress")
LIST_KEYS = ("rules", "extractors")  # a preset's entries come after the user's (first match wins)
MAP_KEYS = ("aliases",)  # merged key by key, the user's winning


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
    passes: tuple[str, ...]  # the passes that run, in PASSES order
    reasoning_headings: tuple[str, ...]
    max_file_bytes: int = MAX_FILE_BYTES
    preset: str | None = None
    rules: tuple[Rule, ...] = ()
    extractors: tuple[Extractor, ...] = ()
    external: tuple[str, ...] = ()  # paths that exist only at run time: references to them stay literal
    on_missing: str = "error"
    baseline: str = "all"  # host: what the host loads today; all: core + every module + the entry
    entries: tuple[str, ...] = ("command",)  # roles that get bundles of their own
    listing: tuple[str, ...] = ()  # roles the host lists (name + description) in every session
    offered: tuple[str, ...] = ()  # roles offered as chunks in every bundle
    session: bool = False  # also build what loads at session start, as the bundle "_session"
    agent_commands: bool = False  # a bundle per command an agent declares (BMAD)
    resolve_by_name: bool = False  # a reference found nowhere else may name a unique file by its name
    templating: bool = True  # tokeffc's own tags in bodies (rules can turn it off per glob)
    front_matter: str = "host"  # host: read it as metadata; content: keep it as the file's text
    session_hooks: bool = False  # files a SessionStart hook injects are loaded in every session
    source_text: str = field(default="", repr=False)
    key_lines: tuple[tuple[str, int], ...] = field(default=(), repr=False)  # top-level key -> line

    @property
    def tier_names(self) -> tuple[str, ...]:
        return self._ranks[0]

    def span(self, key: str | None = None) -> Span:
        """Where the config file (or one of its top-level keys) is, relative to the root like every span."""
        line = dict(self.key_lines).get(key, 0) if key else 0
        return Span(os.path.relpath(self.path, self.root).replace(os.sep, "/"), line)

    def tier(self, name: str) -> Tier:
        return self.tiers[self.tier_names.index(name)]

    def tier_rank(self, name: str) -> int:
        return self._ranks[1][name]

    @property
    def _ranks(self) -> tuple[tuple[str, ...], dict[str, int]]:
        """Tier names in order and each one's rank, computed once (selection asks thousands of times)."""
        cached = _RANKS.get(self.tiers)
        if cached is None:
            names = tuple(t.name for t in self.tiers)
            cached = _RANKS[self.tiers] = (names, {n: i for i, n in enumerate(names)})
        return cached

    def rule_for(self, path: str) -> Rule | None:
        return first_rule(self.rules, path)

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


_RANKS: dict[tuple[Tier, ...], tuple[tuple[str, ...], dict[str, int]]] = {}


def load_config(root: Path, config_path: Path | None = None, *, release_version: str | None = None,
                preset: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read the framework's config (or only a preset); raise :class:`Problems` listing every problem."""
    root = Path(root)
    if not root.is_dir():
        raise TokeffcError(f"framework root '{root}' is not a folder", hint="pass the folder that holds tokeffc.yaml")
    path = Path(config_path) if config_path else root / CONFIG_NAME
    where = Path(os.path.relpath(path, root))  # spans are relative to the root, like every span
    if path.is_file():
        text = _read_config_text(path, where)
        data, lines = _parse_yaml(text, where)
    elif preset or config_path is None and overrides:
        text, data, lines = "", {}, {}
    else:
        raise TokeffcError(
            f"no {path.name} in '{root}'", Span(str(where)),
            f"create one with 'tokeffc init DIR', or pass --preset ({', '.join(PRESETS)}) or --config FILE",
        )
    data = {**(overrides or {}), **data}
    preset_name = preset or data.get("preset")
    checker = _Checker(str(where), lines)
    if preset_name is not None:
        data = {**merge_preset(data, checker.preset(preset_name)), "preset": preset_name}
    config = checker.build(root.resolve(), path, data, text, release_version)
    if checker.problems:
        raise Problems(checker.problems)
    return config


def load_preset(name: str) -> dict[str, Any]:
    """A preset's settings, as shipped in the package (``compiler/presets/<name>.yaml``)."""
    text = (resources.files("tokeffc.presets") / f"{name}.yaml").read_text(encoding="utf-8")
    data = read_yaml(text, f"presets/{name}.yaml").data
    return data if isinstance(data, dict) else {}


def merge_preset(user: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    """The preset overridden key by key by the user's config (lists of rules: the user's first)."""
    merged = {**preset, **user}
    for key in LIST_KEYS:
        if key in user and key in preset and isinstance(user[key], list) and isinstance(preset[key], list):
            merged[key] = [*user[key], *preset[key]]
    for key in MAP_KEYS:
        if isinstance(user.get(key), dict) and isinstance(preset.get(key), dict):
            merged[key] = {**preset[key], **user[key]}
    return merged


def _read_config_text(path: Path, where: Path) -> str:
    """The config's text; bad UTF-8 or a file larger than any config is an error at its line."""
    with path.open("rb") as file:
        raw = file.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise TokeffcError(f"larger than {MAX_CONFIG_BYTES} bytes", Span(str(where), 1),
                           "is this the framework's config? It holds settings, not prompts")
    return decode_utf8(raw, str(where))


def _parse_yaml(text: str, path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """The config's mapping and the line of every key (duplicates, bombs, odd keys refused, located)."""
    doc = read_yaml(text, str(path))
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise TokeffcError("the config must be a mapping of keys", Span(str(path), doc.line()),
                           "see README, 'tokeffc.yaml'")
    return data, dict(doc.key_lines)


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

    def preset(self, name: Any) -> dict[str, Any]:
        if name not in PRESETS:
            close = difflib.get_close_matches(str(name), PRESETS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"presets: {', '.join(PRESETS)}"
            if not self.lines:  # --preset on the command line
                raise UsageError(f"unknown preset '{name}'", hint=hint)
            self.problem(("preset",), f"unknown preset '{name}'", hint)
            return {}
        return load_preset(name)

    def build(self, root: Path, path: Path, data: dict, text: str, release_version: str | None) -> Config:
        self.unknown_keys(data, TOP_KEYS, ())
        tiers = self.tiers(data.get("tiers", DEFAULT_TIERS))
        tier_names = tuple(t.name for t in tiers)
        preset = data.get("preset") if data.get("preset") in PRESETS else None
        name = self.name(data.get("name", _default_name(root) if preset else None))
        reader = RuleReader(self.problem, self.lines, tier_names, LOAD_KINDS, name)
        return Config(
            root=root,
            path=path,
            name=name,
            version=self.version(data.get("version", "0.0.0" if preset else None)) if release_version is None
            else _release_version(release_version),
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
            declared_load=self.choice(data, "declared_load", LOAD_KINDS, "on_demand"),
            passes=self.passes(data.get("passes", {})),
            reasoning_headings=self.paths(data, "reasoning_headings", ()),
            max_file_bytes=self.positive_int(data, "max_file_bytes", MAX_FILE_BYTES),
            preset=preset,
            rules=reader.rules(data.get("rules", [])),
            extractors=reader.extractors(data.get("extractors", [])),
            external=self.paths(data, "external", ()),
            on_missing=self.choice(data, "on_missing", ON_MISSING, "error"),
            baseline=self.choice(data, "baseline", BASELINES, "all"),
            entries=self.roles(data, "entries", ("command",)),
            listing=self.roles(data, "listing", ()),
            offered=self.roles(data, "offered", ()),
            session=self.flag(data, "session", False),
            agent_commands=self.flag(data, "agent_commands", False),
            resolve_by_name=self.flag(data, "resolve_by_name", False),
            templating=self.flag(data, "templating", True),
            front_matter=self.choice(data, "front_matter", ("host", "content"), "host"),
            session_hooks=self.flag(data, "session_hooks", False),
            source_text=text + (json.dumps(data, sort_keys=True, default=str) if preset else ""),
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

    def choice(self, data: dict, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = data.get(key, default)
        if value not in allowed:
            self.problem((key,), f"'{key}' must be one of {', '.join(allowed)}", f"got {value!r}")
            return default
        return value

    def flag(self, data: dict, key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem((key,), f"'{key}' must be true or false", f"got {value!r}")
            return default
        return value

    def roles(self, data: dict, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        values = self.paths(data, key, default)
        unknown = [v for v in values if v not in ROLES]
        if unknown:
            self.problem((key,), f"'{key}' names unknown role '{unknown[0]}'", f"roles: {', '.join(ROLES)}")
            return default
        return values

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
        return tiers or tuple(Tier(n, s["budget"], n != "full") for n, s in DEFAULT_TIERS.items())

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
            per_tier = value.get(command, value.get(_original_key(value, command)))
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
            return tuple(p.name for p in PASSES if p.default)
        self.unknown_keys(value, PASS_NAMES, ("passes",))
        enabled = []
        for name in PASS_NAMES:
            flag = value.get(name, PASS_BY_NAME[name].default)
            if not isinstance(flag, bool):
                self.problem(("passes", name), f"passes.{name} must be true or false", "")
            elif flag:
                enabled.append(name)
        return tuple(enabled)


def _positive_int(value: Any) -> bool:
    """A positive integer, and not a boolean (``true`` is an int to Python, not to a user)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _original_key(mapping: dict, text: str) -> Any:
    return next((k for k in mapping if str(k) == text), text)


def _default_name(root: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", root.name.lower()).strip("-")
    return name if name and name[0].isalnum() else "framework"


def _release_version(value: str) -> str:
    """The version given on the command line, which no line of the config holds."""
    if not SEMVER_RE.match(value):
        raise UsageError(f"--release-version '{value}' is not SemVer", hint="give three numbers: 1.4.0")
    return value
