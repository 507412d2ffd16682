"""``tokeffc init``: a starter framework (the one shipped in the package), or, for a framework that
already exists, the ``tokeffc.yaml`` a preset infers for it, commented for the user to adjust.

The inferred config names the preset, the framework and its version, and says in comments what
the preset found: how many files each glob matched, what the host loads for every command (tokens
as the build counts them), and example rules, commented out, that would trim the biggest of those
files. As written it builds the same release as ``--preset`` alone.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .config import CONFIG_NAME, NAME_RE, SEMVER_RE, Config
from .errors import OutputError, Span, TokeffcError, UsageError, printable
from .globs import glob_regex
from .graph import Framework
from .parse import Document
from .plugins import MANIFEST, find_plugins
from .rules import Rule, When
from .sources import DocPath

STARTER = "starter"
EXAMPLE_RULES = 3  # commented rules for the biggest always-loaded files
MIN_EXAMPLE_TOKENS = 200  # below this, deferring a file saves less than its index row costs to read
MAX_ALWAYS_ROWS = 15
MAX_JSON_BYTES = 1 << 20
INJECTED = "(injected by a SessionStart hook)"
ROLE_WORDS = {"core": "core files", "command": "commands", "agent": "agents", "skill": "skills",
              "rule": "rules (always loaded unless they have paths:)", "reference": "files skills link to",
              "template": "templates", "module": "modules"}
ENTRY_WORDS = {"command": "commands", "agent": "agents", "skill": "skills", "agent-command": "agent commands",
               "session": "the session start"}


def init_framework(directory: Path, preset: str | None = None, name: str | None = None) -> str:
    """What ``tokeffc init`` does; returns the line it prints."""
    if preset is None:
        created = create_starter(directory, name)
        return f"created {len(created)} files in {directory}; next: tokeffc build {directory}"
    target = write_preset_config(directory, preset, name)
    return f"wrote {target} for preset {preset}; adjust it, then: tokeffc build {directory}"


def check_name(name: str) -> str:
    """A name the config accepts, or a usage error now (not a config that fails later)."""
    if not NAME_RE.fullmatch(name):
        suggestion = _name_from_text(name)
        raise UsageError(f"--name {name!r} is not a framework name",
                         hint=f"use lowercase letters, digits and '-', e.g. '{suggestion}'")
    return name


# --- the starter -------------------------------------------------------------------------------

def create_starter(directory: Path, name: str | None = None) -> list[Path]:
    """Write the starter into ``directory``; never overwrite an existing file."""
    directory = Path(directory)
    name = check_name(name) if name is not None else _name_from(directory)
    _refuse_existing(directory)
    files = list(_starter_files(resources.files("tokeffc.templates") / STARTER, ""))
    clashes = [rel for rel, _ in files if (directory / rel).exists()]
    if clashes:
        raise TokeffcError(f"'{clashes[0]}' already exists", Span(str(directory / clashes[0])),
                           "run init in an empty folder")
    created = []
    for rel, text in files:
        target = directory / rel
        _write_new(target, text.replace("__NAME__", name))
        created.append(target)
    return created


def _starter_files(folder, prefix: str):
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _starter_files(entry, f"{prefix}{entry.name}/")
        elif not entry.name.startswith(("_", ".")):
            yield f"{prefix}{entry.name}", entry.read_text(encoding="utf-8")


def _name_from(directory: Path) -> str:
    return _name_from_text(directory.resolve().name)


def _name_from_text(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name if name and name[0].isalnum() else "my-framework"


def _refuse_existing(directory: Path) -> None:
    if (directory / CONFIG_NAME).exists():
        raise TokeffcError(f"{CONFIG_NAME} already exists", Span(str(directory / CONFIG_NAME)),
                           "init only creates new configs; edit the existing one")


def _write_new(target: Path, text: str) -> None:
    """Create ``target`` (never replacing a file); the user's environment refusing is an output error."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8", newline="\n") as file:
            file.write(text)
    except FileExistsError:
        raise TokeffcError(f"'{target.name}' already exists", Span(str(target)), "init never overwrites") from None
    except OSError as exc:
        raise OutputError(f"cannot write '{target}': {exc.strerror}", hint="check the folder's permissions") from None


# --- an existing framework, read with a preset ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class GlobCount:
    role: str  # core | command | the role a rule gives
    glob: str
    files: int


@dataclass(frozen=True, slots=True)
class AlwaysFile:
    """A file the host loads for every entry, and which entries' own files name it (file:line)."""

    path: DocPath
    id: str
    role: str
    tokens: int
    named_by: tuple[tuple[str, DocPath, str], ...]  # (entry id, the file that names it, file:line)


@dataclass(frozen=True, slots=True)
class Survey:
    """What a preset finds in a framework, as the build measures it."""

    preset: str
    name: str
    name_from: str
    version: str
    version_from: str
    adjusted: bool  # named or versioned otherwise than --preset alone would
    globs: tuple[GlobCount, ...]
    roles: tuple[tuple[str, int], ...]  # documents per role
    entries: tuple[tuple[str, int], ...]  # bundles per tier, per entry role
    tiers: tuple[str, ...]
    baseline: str  # host | all
    always: tuple[AlwaysFile, ...]  # largest first
    always_tokens: int  # the build's count, the listing included
    listing_tokens: int
    examples: tuple[tuple[str, Any], ...]  # commented example rules: (comment, rule mapping)


@dataclass(frozen=True, slots=True)
class Identity:
    """The framework's name and version as init writes them, and where each came from."""

    name: str | None  # None: the build's own default, the folder's name
    name_from: str
    version: str
    version_from: str
    adjusted: bool = False  # named or versioned otherwise than --preset alone would

    @property
    def overrides(self) -> tuple[tuple[str, str], ...]:
        return (("version", self.version),) + ((("name", self.name),) if self.name is not None else ())


def write_preset_config(directory: Path, preset: str, name: str | None = None) -> Path:
    """Infer ``tokeffc.yaml`` for the framework in ``directory`` read with ``preset``, and write it there."""
    from .pipeline import BuildOptions, compile_framework

    directory = Path(directory)
    if name is not None:
        check_name(name)
    if not directory.is_dir():
        raise TokeffcError(f"'{directory}' is not a folder", hint="pass the folder of an existing framework")
    _refuse_existing(directory)
    identity = framework_identity(directory, preset, name)
    options = BuildOptions(preset=preset, exclude_dirs=((directory / "dist").resolve(),),
                           overrides=identity.overrides)
    survey = survey_framework(compile_framework(directory, options), preset, identity)
    target = directory / CONFIG_NAME
    _write_new(target, preset_config_text(survey))
    return target


def framework_identity(directory: Path, preset: str, name: str | None = None) -> Identity:
    """Name: --name, else the plugin's manifest (claude-plugin), else the folder's. Version: the plugin's
    manifest, else package.json, else 0.0.0. What the manifest says that the config would refuse is made valid."""
    plugin = _the_plugin(directory) if preset == "claude-plugin" else None
    adjusted = name is not None
    if name is not None:
        name_from = "given with --name"
    elif plugin is not None:
        name = plugin.name if NAME_RE.fullmatch(plugin.name) else _name_from_text(plugin.name)
        adjusted = name != plugin.name
        name_from = _plugin_source(directory) + (f", made valid from {plugin.name!r}" if adjusted else "")
    else:
        name_from = "from the folder's name"
    if plugin is not None and plugin.version != "0.0.0":
        if SEMVER_RE.match(plugin.version):
            return Identity(name, name_from, plugin.version, "from the plugin's manifest", adjusted)
        return Identity(name, name_from, "0.0.0", f"the plugin's manifest says {plugin.version!r}, not SemVer: "
                                                  "set it", True)
    package = _package_version(directory)
    if package is not None:
        return Identity(name, name_from, package, "from package.json", True)
    return Identity(name, name_from, "0.0.0", "nothing here names a version (no plugin manifest, no "
                                              "package.json): set it, SemVer", adjusted)


def _the_plugin(directory: Path):
    """The plugin ``directory`` is; a marketplace's plugins are releases of their own, each with its config."""
    plugins = find_plugins(directory)
    elsewhere = [p for p in plugins if p.root.resolve() != directory.resolve()]
    if len(plugins) > 1 or elsewhere:
        folders = ", ".join(str(p.root) for p in plugins[:3])
        raise UsageError(f"'{directory}' is a marketplace of {len(plugins)} plugin(s)",
                         hint=f"run 'tokeffc init --preset claude-plugin' in each plugin's folder: {folders}")
    return plugins[0] if plugins else None


def _plugin_source(directory: Path) -> str:
    return f"from {MANIFEST}" if (directory / MANIFEST).is_file() else "from the marketplace's listing"


def survey_framework(result, preset: str, identity: Identity) -> Survey:
    """What the preset found in the framework ``result`` was built from."""
    from .baseline import listing_text

    framework = result.framework
    config = framework.config
    always = always_files(framework, result.entries, result.renderings.written)
    listing = result.counter.count(listing_text(framework)) if config.listing else 0
    return Survey(
        preset=preset, name=config.name, name_from=identity.name_from,
        version=config.version, version_from=identity.version_from, adjusted=identity.adjusted,
        globs=glob_counts(framework),
        roles=tuple(sorted(Counter(d.role for d in framework.documents.values()).items())),
        entries=tuple(Counter(e.role for e in result.entries).items()), tiers=config.tier_names,
        baseline=config.baseline, always=always, always_tokens=result.manifest.baseline.always_tokens,
        listing_tokens=listing, examples=tuple(example_rules(framework, always)),
    )


def _package_version(directory: Path) -> str | None:
    path = directory / "package.json"
    try:
        with path.open("rb") as file:
            data = json.loads(file.read(MAX_JSON_BYTES + 1)[:MAX_JSON_BYTES])
    except (OSError, ValueError, RecursionError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) and SEMVER_RE.match(version) and "\n" not in version else None


def glob_counts(framework: Framework) -> tuple[GlobCount, ...]:
    """How many files each glob of the config gave a role (a file counts for the first glob that names it)."""
    config = framework.config
    owners = Counter(_owner(config, doc) for doc in framework.documents.values())
    rows = [(role, glob) for role, globs in (("core", config.core), ("command", config.commands)) for glob in globs]
    rows += [("core", INJECTED)] if owners[("core", INJECTED)] else []
    rows += [(rule.role, glob) for rule in config.rules if rule.role for glob in rule.match]
    return tuple(GlobCount(role, glob, owners[(role, glob)]) for role, glob in dict.fromkeys(rows))


def _owner(config: Config, doc: Document) -> tuple[str, str]:
    rule = config.rule_for(doc.path)
    if doc.role == "core":
        return "core", _first(config.core, doc.path) or INJECTED
    if rule is not None and rule.role:
        return rule.role, _first(rule.match, doc.path) or ""
    if doc.role == "command":
        return "command", _first(config.commands, doc.path) or ""
    return doc.role, ""


def _first(globs: tuple[str, ...], path: str) -> str | None:
    return next((g for g in globs if glob_regex(g).fullmatch(path)), None)


def always_files(framework: Framework, entries, written) -> tuple[AlwaysFile, ...]:
    """What the host loads for every entry (core files, their imports, rules), largest first."""
    from .baseline import attached_closure
    from .selection import always_loaded

    always = attached_closure(framework, always_loaded(framework))
    named = _named_by(framework, entries, always)
    files = (AlwaysFile(p, framework.documents[p].id, framework.documents[p].role, written[p], tuple(named[p]))
             for p in always)
    return tuple(sorted(files, key=lambda f: (-f.tokens, f.path)))


def _named_by(framework: Framework, entries, always: set[DocPath]) -> dict[DocPath, list]:
    """For each always-loaded file: (entry, file, file:line) for each reference from an entry's own files."""
    from .baseline import attached_closure

    found: dict[DocPath, list] = defaultdict(list)
    for entry in entries:
        own = attached_closure(framework, [p for p in (entry.path, *entry.focus) if p]) - always
        for source in sorted(own):
            for target, edges in framework.edges_from(source):
                if target in always:
                    found[target] += [(entry.id, source, str(e.span)) for e in edges]
    return found


# --- example rules ------------------------------------------------------------------------------

def example_rules(framework: Framework, always: tuple[AlwaysFile, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rules (to uncomment) that make the biggest always-loaded files on_demand for the entries that do not
    name them, and keep them inline, by a ``requires`` with ``load: immediate``, for those that do."""
    chosen = [f for f in always if f.role != "core"  # a core file is loaded whatever its load
              and f.tokens >= MIN_EXAMPLE_TOKENS][:EXAMPLE_RULES]
    config = framework.config
    for file in chosen:
        doc = framework.documents[file.path]
        yield _deferral_comment(file), {**_kept(config.rule_for(file.path)), "match": file.path,
                                        "load": "on_demand", "when": _trigger(config.rule_for(file.path), doc)}
    keep: dict[DocPath, list[DocPath]] = defaultdict(list)
    for file in chosen:
        for _, source, _ in file.named_by:
            if file.path not in keep[source]:
                keep[source].append(file.path)
    for source, targets in sorted(keep.items()):
        requires = [{"module": t, "load": "immediate"} for t in targets]
        yield (f"{source} names {', '.join(targets)}: it keeps {'it' if len(targets) == 1 else 'them'} inline",
               {**_kept(config.rule_for(source)), "match": source, "requires": requires})


def _deferral_comment(file: AlwaysFile) -> str:
    if not file.named_by:
        return f"{file.tokens:,} tokens in every bundle; no entry names it"
    entries = sorted({entry for entry, _, _ in file.named_by})
    listed = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    return f"{file.tokens:,} tokens in every bundle; on_demand for all but {listed}"


def _kept(rule: Rule | None) -> dict[str, Any]:
    """What the preset's rule for the file says besides its load: a rule of the user's shadows it (first match wins)."""
    if rule is None:
        return {}
    kept = {key: getattr(rule, key) for key in ("role", "tier", "templating", "front_matter", "budget")
            if getattr(rule, key) is not None}
    if rule.when is not None:
        kept["when"] = _when_value(rule.when)
    if rule.requires:
        kept["requires"] = list(rule.requires)
    return kept


def _trigger(rule: Rule | None, doc: Document) -> Any:
    if rule is not None and rule.when is not None:
        return _when_value(rule.when)
    if isinstance(doc.meta_value("description"), str):
        return {"front_matter": "description"}
    if re.search(r"^#{1,6}[ \t]+\S", doc.body, re.M):
        return {"line": "heading"}
    return f"the task needs {doc.name}"


def _when_value(when: When) -> Any:
    if when.field is not None:
        return {"front_matter": when.field}
    if when.line is not None:
        return {"line": when.line}
    return when.text


# --- the text ------------------------------------------------------------------------------------

def preset_config_text(survey: Survey) -> str:
    lines = [*_head(survey), "", *_found(survey), "", *_always(survey)]
    if survey.examples:
        lines += ["", *_examples(survey)]
    return "\n".join(lines) + "\n"


def _head(survey: Survey) -> list[str]:
    preset = survey.preset
    same = [f"# As written, `tokeffc build` builds the same release as `tokeffc build --preset {preset}`."]
    if survey.adjusted:
        same = [f"# As written, `tokeffc build` builds the bundles `tokeffc build --preset {preset}` would,",
                "# named and versioned as below."]
    return [
        f"# tokeffc.yaml for {printable(survey.name)}, inferred by `tokeffc init --preset {preset}`.",
        *same,
        "# A key set here overrides the preset's; rules and extractors written here come before the",
        "# preset's (the first rule that matches a file wins). See the README, 'Rules' and 'Extractors'.",
        f"preset: {preset}",
        f"name: {survey.name}  # {survey.name_from}",
        f"version: {json.dumps(survey.version)}  # {printable(survey.version_from)}",
    ]


def _found(survey: Survey) -> list[str]:
    lines = ["# What the preset's globs matched here (a file counts for the first glob that names it):"]
    by_role: dict[str, list[GlobCount]] = defaultdict(list)
    for row in survey.globs:
        by_role[row.role].append(row)
    for role, rows in by_role.items():
        lines.append(f"#   {ROLE_WORDS.get(role, role)}: {sum(r.files for r in rows)}")
        lines += [f"#     {r.files:>6,}  {printable(r.glob)}" for r in rows]
    counted = {role for role in by_role}
    others = sum(n for role, n in survey.roles if role not in counted)
    lines.append(f"#   other files, read as modules: {others}")
    entries = ", ".join(f"{n} {ENTRY_WORDS.get(role, role)}" if role != "session" else ENTRY_WORDS[role]
                        for role, n in survey.entries)
    lines.append(f"# Bundles: one per tier ({', '.join(survey.tiers)}) for each of: {entries}.")
    return lines


def _always(survey: Survey) -> list[str]:
    if survey.baseline != "host":
        return ["# Baseline: every module and the command, as written (a tokeffc-native framework)."]
    lines = [f"# Always loaded: what the host loads for every command today, {survey.always_tokens:,} tokens as",
             "# the build counts them (a bundle's saving is measured against this plus the command):"]
    shown = survey.always[:MAX_ALWAYS_ROWS]
    lines += [f"#   {f.tokens:>8,}  {printable(f.path)}" for f in shown]
    rest = survey.always[MAX_ALWAYS_ROWS:]
    if rest:
        lines.append(f"#   {sum(f.tokens for f in rest):>8,}  {len(rest)} more files")
    if survey.listing_tokens:
        lines.append(f"#   {survey.listing_tokens:>8,}  the listing of skills and agents (name and description)")
    if not survey.always and not survey.listing_tokens:
        lines.append("#   nothing")
    return lines


def _examples(survey: Survey) -> list[str]:
    lines = [
        "# Trimming it: uncommented, the rules below make the biggest of these files on_demand for the",
        "# commands that do not name it (a chunk their bundle offers by its `when:`), and keep it inline",
        "# for those that do. `tokeffc stats` measures what each saves by rebuilding; `tokeffc why . COMMAND",
        "# FILE` shows every path that brings a file into a bundle.",
        "# rules:",
    ]
    for comment, rule in survey.examples:
        lines.append(f"#   # {printable(comment)}")
        lines += [f"#   {'- ' if i == 0 else '  '}{key}: {json.dumps(value) if key == 'match' else _yaml(value)}"
                  for i, (key, value) in enumerate(_ordered(rule))]
    return lines


_PLAIN = re.compile(r"[A-Za-z_][\w./-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _yaml(value: Any) -> str:
    """A value as YAML flow text: plain words where YAML reads them as strings, JSON quoting elsewhere."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml(str(k))}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
        return value
    return json.dumps(value, ensure_ascii=True)


def _ordered(rule: dict[str, Any]) -> list[tuple[str, Any]]:
    order = ("match", "role", "tier", "load", "when", "templating", "front_matter", "requires", "budget")
    return [(key, rule[key]) for key in order if key in rule]


__all__ = ["AlwaysFile", "GlobCount", "Identity", "Survey", "always_files", "check_name", "create_starter",
           "example_rules", "framework_identity", "glob_counts", "init_framework", "preset_config_text",
           "survey_framework", "write_preset_config"]
