"""``manifest.json``: the release's records, written and read in one place. Standard library only.

The emitter builds a :class:`Manifest` and calls :meth:`Manifest.to_json`; the runtime, ``inspect``,
``diff`` and the reports call :func:`read_manifest`, which checks every field's type before anyone
reads it (a malformed manifest is one :class:`ReleaseError`, never a ``KeyError``). Manifests of
schema ``tokeffc.manifest/1`` (tokeffc 0.1) are upgraded on read; any other schema is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from .errors import ReleaseError, Span
from .layout import (
    MANIFEST_NAME,
    MAX_FILE_BYTES,
    RUNTIME_INDEX,
    RUNTIME_INDEX_SCHEMA,
    RUNTIME_SHARDS,
    safe_release_path,
)

SCHEMA = "tokeffc.manifest/2"
OLD_SCHEMAS = ("tokeffc.manifest/1",)
MAX_MANIFEST_BYTES = MAX_FILE_BYTES  # far above any real framework's; a larger file is refused unread
MAX_META_DEPTH = 8  # front matter carried as metadata: nesting beyond this is refused
CACHE_KEY_DIGITS = 16

JSON = Any  # a JSON value (front matter metadata)


@dataclass(frozen=True, slots=True)
class PassRun:
    """An optimisation pass that ran for this release."""

    name: str
    lossless: bool


@dataclass(frozen=True, slots=True)
class TierInfo:
    budget: int
    compress: bool  # checkpoints keep only their conclusion
    rank: int  # 0 is the smallest tier


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a bundle's saving is measured against.

    ``host``: what the host (Claude Code) loads today for the command: ``always`` (loaded in every
    session) plus the command and its ``@`` closure. ``all``: core + every module + the command, as
    written (a tokeffc-native framework, whose host is tokeffc's own runtime).
    """

    kind: str  # host | all
    rule: str  # the rule in words, for reports
    always: tuple[str, ...] = ()  # ids of the files loaded for every command
    always_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ModuleShare:
    """One document inside a bundle: how it got there and the tokens it emitted."""

    id: str
    path: str
    role: str  # core | command | agent | skill | rule | template | reference | module
    placement: str  # core | section | inline | entry
    tokens: int
    saved: Mapping[str, int]  # per step, as in BundleEntry.saved (no "structure")


@dataclass(frozen=True, slots=True)
class ChunkEntry:
    """A module offered on request: its own content-addressed file."""

    id: str
    path: str
    sha256: str
    cache_key: str
    tokens: int
    load: str  # on_demand | lazy
    when: str
    role: str = "module"
    soft: bool = False  # offered because prose names it; the text that names it stays as written
    modules: tuple[str, ...] = ()  # ids of the documents whose text it holds (itself, what it embeds)


@dataclass(frozen=True, slots=True)
class DroppedEntry:
    """A module the tier leaves out; one line stands where it would have been."""

    id: str
    tier: str  # the lowest tier that carries it
    tokens: int  # as written


@dataclass(frozen=True, slots=True)
class CutHint:
    id: str
    path: str
    tokens: int
    reason: str  # largest | only-this-command


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of the bundle's text: ``core``, then shared ``modules``, then the ``command`` part.

    Byte lengths in order cover the bundle exactly; each run starts a line, so token counts add up.
    """

    part: str  # core | modules | command
    bytes: int
    tokens: int


@dataclass(frozen=True, slots=True)
class BundleEntry:
    command: str  # the entry's id
    tier: str
    path: str
    sha256: str
    cache_key: str
    tokens: int
    budget: int
    status: str  # ok | warn | over
    baseline_tokens: int
    saved: Mapping[str, int]  # pruned, one per pass that ran, structure (negative): sum == baseline - tokens
    modules: tuple[ModuleShare, ...]
    chunks: tuple[ChunkEntry, ...]
    dropped: tuple[DroppedEntry, ...] = ()
    cut: tuple[CutHint, ...] = ()
    segments: tuple[Segment, ...] = ()
    role: str = "command"  # command | agent | skill | session | agent-command
    parent: str | None = None  # an agent command's agent
    parent_tokens: int | None = None  # that agent's whole bundle at this tier, for comparison


@dataclass(frozen=True, slots=True)
class DocEntry:
    """A source file as written."""

    path: str
    sha256: str
    tokens: int
    role: str
    tier: str = ""
    load: str = "immediate"
    when: str = ""
    meta: Mapping[str, JSON] = field(default_factory=dict)  # front matter the host reads (commands, agents)


@dataclass(frozen=True, slots=True)
class RefEntry:
    """A reference the build kept as text: a run-time path, a missing file, or a soft mention."""

    written: str
    at: str  # file:line
    kind: str
    target: str | None = None  # the file it names, when it resolved


@dataclass(frozen=True, slots=True)
class Manifest:
    schema: str
    framework: str
    version: str
    compiler: str
    encoding: str
    source_hash: str
    passes: tuple[PassRun, ...]
    warn_at: float
    tiers: Mapping[str, TierInfo]
    baseline: Baseline
    bundles: tuple[BundleEntry, ...]
    modules: Mapping[str, DocEntry]
    commands: Mapping[str, DocEntry]
    files: Mapping[str, str]  # every file but manifest.json, by path: its sha256
    unreached: tuple[str, ...] = ()
    external: tuple[RefEntry, ...] = ()
    missing: tuple[RefEntry, ...] = ()
    soft: tuple[RefEntry, ...] = ()
    warnings: tuple[str, ...] = ()
    preset: str | None = None

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.tiers, key=lambda name: self.tiers[name].rank))

    def to_json(self) -> bytes:
        """The manifest's bytes: sorted keys, two-space indent, UTF-8, a final newline."""
        return dump_json(to_data(self))

    def bundle(self, command: str, tier: str) -> BundleEntry | None:
        for entry in self.bundles:
            if entry.command == command and entry.tier == tier:
                return entry
        return None


def dump_json(data: Any) -> bytes:
    """JSON with sorted keys, one line per item of a top-level list or mapping (so a diff of two
    manifests reads per bundle and per file), each item compact; UTF-8, a final newline.

    The items go through the json module's C encoder, which an ``indent`` would switch off.
    """
    if not isinstance(data, dict):
        return (_encode(data) + "\n").encode("utf-8")
    parts = [f"  {_encode(key)}: {_nested(value)}" for key, value in sorted(data.items())]
    return ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8")


def _nested(value: Any) -> str:
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(f"    {_encode(item)}" for item in value) + "\n  ]"
    if isinstance(value, dict) and value:
        lines = (f"    {_encode(key)}: {_encode(item)}" for key, item in sorted(value.items()))
        return "{\n" + ",\n".join(lines) + "\n  }"
    return _encode(value)


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


def _encode(value: Any) -> str:
    return _ENCODER.encode(value)


def release_id(manifest_bytes: bytes) -> str:
    """A release's id: the sha256 of its ``manifest.json``."""
    return hashlib.sha256(manifest_bytes).hexdigest()


def cache_key(sha256: str) -> str:
    return sha256[:CACHE_KEY_DIGITS]


def to_data(record: Any) -> Any:
    """A record as plain JSON data (dataclasses to dicts, tuples to lists)."""
    if type(record) in _PLAIN:
        return record
    names = _FIELDS.get(type(record))
    if names is None and dataclasses.is_dataclass(record):
        names = _FIELDS[type(record)] = tuple(f.name for f in dataclasses.fields(record))
    if names is not None:
        return {name: to_data(getattr(record, name)) for name in names}
    if isinstance(record, (tuple, list)):
        return [to_data(item) for item in record]
    if isinstance(record, dict):
        return {str(key): to_data(value) for key, value in record.items()}
    return record


_PLAIN = (str, int, float, bool, type(None))
_FIELDS: dict[type, tuple[str, ...]] = {}


def read_manifest(data: bytes, where: str = MANIFEST_NAME) -> Manifest:
    """Parse and check a manifest's bytes; upgrade an older schema. Raises :class:`ReleaseError`."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise _error(where, f"manifest.json is {len(data):,} bytes, over the {MAX_MANIFEST_BYTES:,}-byte limit",
                     "this is not a manifest tokeffc wrote")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _error(where, f"manifest.json is not valid JSON ({_short(exc)})", "rebuild the release") from None
    if not isinstance(raw, dict):
        raise _error(where, "manifest.json is not a JSON object", "rebuild the release")
    schema = raw.get("schema")
    if schema in OLD_SCHEMAS:
        raw = _upgrade_v1(raw, where)
    elif schema != SCHEMA:
        raise _error(where, f"manifest schema is {schema!r}; this tokeffc reads {SCHEMA} (and upgrades "
                     f"{', '.join(OLD_SCHEMAS)})", "rebuild the release with this tokeffc, or use the tokeffc "
                     "that wrote it")
    manifest = from_data(Manifest, raw, where)
    _check_consistent(manifest, where)
    _check_digests(manifest, where)
    return manifest


def from_data(cls: type, value: Any, where: str, path: str = "") -> Any:
    """Build record ``cls`` from JSON data, checking every field; unknown keys are refused."""
    return _decoder(cls)(value, where, (path,) if path else ())


# A decoder checks and converts one JSON value: (value, where, path) -> record. Built once per type, so
# that reading a manifest costs a few calls per value; ``path`` is a tuple of keys and indices, joined
# into "bundles[3].tokens" only for an error.
Decoder = Callable[[Any, str, tuple], Any]


def _decoder(tp: Any) -> Decoder:
    cached = _DECODERS.get(tp)
    if cached is None:
        cached = _DECODERS[tp] = _make_decoder(tp)
    return cached


_DECODERS: dict[Any, Decoder] = {}


def _make_decoder(tp: Any) -> Decoder:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return lambda value, where, path: _json_value(value, where, path, 0)
    if origin in (Union, types.UnionType):
        return _optional_decoder(_decoder(next(a for a in args if a is not type(None))), type(None) in args)
    if dataclasses.is_dataclass(tp):
        return _record_decoder(typing.cast(type, tp))
    if origin is tuple:
        return _tuple_decoder(_decoder(args[0]))
    if origin in (Mapping, dict, typing.Mapping) or getattr(origin, "__name__", "") == "Mapping":
        return _mapping_decoder(_decoder(args[1]))
    return _scalar_decoder(tp)


def _optional_decoder(inner: Decoder, optional: bool) -> Decoder:
    def decode(value: Any, where: str, path: tuple) -> Any:
        return None if value is None and optional else inner(value, where, path)
    return decode


def _record_decoder(cls: type) -> Decoder:
    hints = typing.get_type_hints(cls, vars(sys.modules[__name__]))
    fields = [(f.name, f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
              for f in dataclasses.fields(cls)]
    names = frozenset(name for name, _ in fields)

    def decode(value: Any, where: str, path: tuple) -> Any:
        if not isinstance(value, dict):
            raise _field_error(where, _render(path) or cls.__name__, "must be an object")
        if not names.issuperset(value):
            raise _field_error(where, _render((*path, min(set(value) - names))), "is not a field of this schema")
        values = {}
        for name, required in fields:
            if name in value:
                values[name] = _decoder(hints[name])(value[name], where, (*path, name))
            elif required:
                raise _field_error(where, _render((*path, name)), "is missing")
        return cls(**values)
    return decode


def _tuple_decoder(item: Decoder) -> Decoder:
    def decode(value: Any, where: str, path: tuple) -> Any:
        if not isinstance(value, list):
            raise _field_error(where, _render(path), "must be a list")
        return tuple([item(element, where, (*path, i)) for i, element in enumerate(value)])
    return decode


def _mapping_decoder(item: Decoder) -> Decoder:
    def decode(value: Any, where: str, path: tuple) -> Any:
        if not isinstance(value, dict):
            raise _field_error(where, _render(path), "must be an object")
        return {key: item(element, where, (*path, key)) for key, element in value.items()}
    return decode


def _scalar_decoder(tp: type) -> Decoder:
    def decode(value: Any, where: str, path: tuple) -> Any:
        if type(value) is tp:  # the common case, and never a bool for an int
            return value
        if tp is float and type(value) is int:
            return float(value)
        if tp is not int and tp is not float and isinstance(value, tp):
            return value
        raise _field_error(where, _render(path), f"must be {_TYPE_WORDS.get(tp, 'a ' + tp.__name__)}")
    return decode


_TYPE_WORDS = {str: "a string", bool: "a boolean", float: "a number", int: "an integer"}


def _render(path: tuple) -> str:
    """("bundles", 3, "tokens") as "bundles[3].tokens"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_value(value: Any, where: str, path: tuple, depth: int) -> Any:
    if depth > MAX_META_DEPTH:
        raise _field_error(where, _render(path), f"nests deeper than {MAX_META_DEPTH} levels")
    if isinstance(value, list):
        return [_json_value(v, where, path, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v, where, path, depth + 1) for k, v in value.items()}
    return value


def _check_consistent(manifest: Manifest, where: str) -> None:
    """What types alone cannot say: paths stay inside the release, and what is listed exists."""
    for name in manifest.files:
        if not safe_release_path(name):
            raise _error(where, f"manifest lists '{name}', which is not a plain path inside the release",
                         "rebuild the release")
    for index, bundle in enumerate(manifest.bundles):
        if bundle.tier not in manifest.tiers:
            raise _field_error(where, f"bundles[{index}].tier", f"names tier '{bundle.tier}', not in 'tiers'")
        listed = [bundle.path, *(chunk.path for chunk in bundle.chunks)]
        for name in listed:
            if name not in manifest.files:
                raise _field_error(where, f"bundles[{index}]", f"names '{name}', which 'files' does not list")


def _check_digests(manifest: Manifest, where: str) -> None:
    """A bundle's or chunk's sha256 and cache key agree with ``files``, which the runtime checks reads against."""
    for index, bundle in enumerate(manifest.bundles):
        entries = [(f"bundles[{index}]", bundle.path, bundle.sha256, bundle.cache_key)]
        entries += [(f"bundles[{index}].chunks[{i}]", c.path, c.sha256, c.cache_key)
                    for i, c in enumerate(bundle.chunks)]
        for at, path, sha256, key in entries:
            if sha256 != manifest.files[path] or key != cache_key(sha256):
                raise _field_error(where, at, f"gives '{path}' a sha256 or cache_key that 'files' does not")


SHARD_TARGET = 64 << 10  # bytes of records per shard: the runtime reads (and hashes) one shard per command


def runtime_index(manifest: Manifest) -> dict[str, bytes]:
    """The files ``tokeffc.runtime`` reads instead of the manifest: a header, and records in shards.

    ``runtime-index.json``, the header: ``{"schema", "framework", "version", "tiers": [names,
    smallest first], "shards": {path: sha256}, "commands": {id: [shard, offset, length]}, "modules":
    [shard, offset, length]}``. The shards ``runtime-index/NNNN.jsonl`` hold one record a line, about
    SHARD_TARGET bytes each: a command's ``{"command": id, "bundles": {tier: {"path", "sha256",
    "tokens", "segments": [[part, bytes, tokens]], "chunks": [[id, path, sha256, tokens, load,
    when]]}}}``, and ``{"modules": {id: {"file", "when", "texts": [[path, sha256, tokens, [tiers]]]}}}``
    for the modules offered as chunks. Every sha256 is the one ``files`` gives. So the runtime reads a
    small header at open and one shard per command, whatever the release's size. Derived from the
    manifest alone (the index's own ``files`` entries are not used), so ``Release.verify`` derives it
    again and compares bytes.
    """
    commands = sorted({bundle.command for bundle in manifest.bundles})
    records = [_compact({"command": c, "bundles": _command_bundles(manifest, c)}) for c in commands]
    records.append(_compact({"modules": _index_modules(manifest)}))
    shards, places = _shards(records)
    header = {"schema": RUNTIME_INDEX_SCHEMA, "framework": manifest.framework, "version": manifest.version,
              "tiers": list(manifest.tier_names),
              "shards": {p: hashlib.sha256(d).hexdigest() for p, d in shards.items()},
              "commands": dict(zip(commands, places)), "modules": places[-1]}
    return {RUNTIME_INDEX: _compact(header) + b"\n", **shards}


def _shards(records: list[bytes]) -> tuple[dict[str, bytes], list[list[Any]]]:
    """Records packed in order into shards of about SHARD_TARGET bytes; each record's [shard, offset, length]."""
    shards: list[list[bytes]] = [[]]
    sizes, places = [0], []
    for record in records:
        if sizes[-1] >= SHARD_TARGET:
            shards.append([])
            sizes.append(0)
        places.append([len(shards) - 1, sizes[-1], len(record)])
        shards[-1].append(record + b"\n")
        sizes[-1] += len(record) + 1
    names = [f"{RUNTIME_SHARDS}/{number:04d}.jsonl" for number in range(len(shards))]
    return {name: b"".join(lines) for name, lines in zip(names, shards)}, [[names[n], o, ln] for n, o, ln in places]


def _compact(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _command_bundles(manifest: Manifest, command: str) -> dict[str, Any]:
    return {b.tier: {"path": b.path, "sha256": manifest.files[b.path], "tokens": b.tokens,
                     "segments": [[s.part, s.bytes, s.tokens] for s in b.segments],
                     "chunks": [[c.id, c.path, manifest.files[c.path], c.tokens, c.load, c.when] for c in b.chunks]}
            for b in manifest.bundles if b.command == command}


def _index_modules(manifest: Manifest) -> dict[str, Any]:
    modules: dict[str, dict[str, Any]] = {}
    for bundle in manifest.bundles:
        for chunk in bundle.chunks:
            doc = manifest.modules.get(chunk.id)
            entry = modules.setdefault(chunk.id, {"file": doc.path.rsplit("/", 1)[-1] if doc else None,
                                                  "when": chunk.when, "texts": {}})
            text = entry["texts"].setdefault(chunk.path, [chunk.path, manifest.files[chunk.path], chunk.tokens, set()])
            text[3].add(bundle.tier)
    ranks = {name: rank for rank, name in enumerate(manifest.tier_names)}
    for entry in modules.values():
        entry["texts"] = [[*text[:3], sorted(text[3], key=ranks.__getitem__)]
                          for _, text in sorted(entry["texts"].items())]
    return modules


def _upgrade_v1(raw: dict, where: str) -> dict:
    """tokeffc 0.1's manifest in today's shape: kind became role, saved steps took pass names."""
    def saved(old: Any) -> Any:
        if not isinstance(old, dict):
            return old
        names = {"compressed": "checkpoints", "normalised": "normalise", "deduped": "dedupe"}
        return {names.get(k, k): v for k, v in old.items()}

    def doc(entry: Any) -> Any:
        if not isinstance(entry, dict):
            return entry
        out = {k: v for k, v in entry.items() if k in ("path", "sha256", "tokens", "meta")}
        out["role"] = entry.get("kind", "module")
        return out

    def bundle(entry: Any) -> Any:
        if not isinstance(entry, dict):
            return entry
        out = dict(entry)
        out["saved"] = saved(entry.get("saved"))
        out["modules"] = [{"id": m.get("id"), "path": m.get("path"), "role": m.get("kind"),
                           "placement": "section", "tokens": m.get("tokens"), "saved": saved(m.get("saved"))}
                          if isinstance(m, dict) else m for m in entry.get("modules", [])]
        out["dropped"] = [{"id": d, "tier": "", "tokens": 0} for d in entry.get("dropped", [])]
        return out

    try:
        baseline = raw.get("baseline", {})
        return {
            **{k: raw[k] for k in ("framework", "version", "compiler", "encoding", "source_hash", "warn_at",
                                   "tiers", "files", "unreached") if k in raw},
            "schema": SCHEMA,
            "passes": [{"name": {"checkpoints": "checkpoints"}.get(p, p), "lossless": p != "checkpoints"}
                       for p in raw.get("passes", [])],
            "baseline": {"kind": "all", "rule": baseline.get("rule", "") if isinstance(baseline, dict) else ""},
            "bundles": [bundle(b) for b in raw.get("bundles", [])],
            "modules": {k: doc(v) for k, v in raw.get("modules", {}).items()},
            "commands": {k: doc(v) for k, v in raw.get("commands", {}).items()},
        }
    except (AttributeError, TypeError):
        raise _error(where, "manifest.json (schema tokeffc.manifest/1) is malformed", "rebuild the release") from None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _error(where: str, message: str, hint: str) -> ReleaseError:
    return ReleaseError(message, Span(where), hint)


def _field_error(where: str, path: str, problem: str) -> ReleaseError:
    return _error(where, f"'{path}' {problem}", "rebuild the release with 'tokeffc build'")
