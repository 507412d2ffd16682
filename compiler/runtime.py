"""Load a compiled release at run time. Standard library and zstandard only.

    from tokeffc.runtime import Release
    rel = Release.open("dist/acme-1.4.0.tokb")      # or the release folder, or its manifest.json
    ctx = rel.context("task", tier="minimal")        # or complexity=3
    ctx.text, ctx.tokens, ctx.cache_key, ctx.chunks
    ctx.system_blocks("claude-sonnet-4-5")            # Anthropic system blocks, cached on the shared prefix
    rel.chunk("quality/gates").text
    rel.tool(), rel.call_tool({"module": "quality/gates"})
    rel.verify()                                      # everything, as `tokeffc inspect` does

Cache keys are content hashes: a cache keyed by them never needs invalidation.

Trust model. ``Release.open`` reads the runtime index's header (``runtime-index.json``, derived
from ``manifest.json`` by :func:`tokeffc.manifest.runtime_index` and listed with its sha256 in the
manifest) and, for a ``.tokb``, the archive's seek table; nothing else. The header gives the sha256
of each shard of index records. Each shard, bundle or chunk is read when it is first needed: through
a bounded, whitelisting reader (no symlinks, no names outside the release, size caps), checked
against the sha256 the index gives, and (bundles and chunks) decoded as UTF-8, before anything is
returned from it. The runtime does not read the manifest on this path, so it does not check that
the index matches the manifest, and it does not look for files the manifest does not list (it never
reads them). :meth:`Release.verify` checks all of that: the archive's whole structure, the
manifest's schema, every listed file's sha256 (and UTF-8 for bundles and chunks), no unlisted or
symlinked file, and the index equal to the one derived from the manifest again. ``tokeffc
inspect`` runs it. Run it where a release is installed, or pin the release:
``Release.open(path, release_id=...)`` checks that manifest.json has that sha256 and that the
index header is the one it lists, which anchors every later read to the id your build printed.
Hashes find damage and tampering with part of a release; whoever can rewrite all of it can rewrite
its hashes too, and only a pinned id catches that.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Self, TypedDict

from .errors import ReleaseError, Span
from .layout import MANIFEST_NAME, RUNTIME_INDEX, RUNTIME_INDEX_SCHEMA, safe_release_path
from .stores import Store, open_store

__all__ = ["CACHE_MIN_TOKENS", "ChunkRef", "ChunkText", "Context", "Release", "ReleaseError", "Segment",
           "ToolResult", "cache_minimum"]

COMPLEXITY_LEVELS = 5
TOOL_NAME = "load_module"

# The shortest prompt prefix each model caches (Anthropic prompt caching), in tokens. Kept as data:
# from the documentation as quoted in notes/host-semantics.md, 2026 (Sonnet 4.6 as observed).
CACHE_MINIMUMS_AS_OF = "2026"
CACHE_MIN_TOKENS: dict[str, int] = {
    "claude-opus-4-6": 4096, "claude-opus-4-5": 4096, "claude-haiku-4-5": 4096,
    "claude-sonnet-4-6": 2048, "claude-3-5-haiku": 2048, "claude-3-haiku": 2048,
    "claude-sonnet-4-5": 1024, "claude-sonnet-4-0": 1024, "claude-sonnet-4": 1024,
    "claude-opus-4-1": 1024, "claude-opus-4-0": 1024, "claude-opus-4": 1024,
}
CACHE_MIN_DEFAULT = 4096  # an unknown model, or none named: the largest documented minimum
MAX_BREAKPOINTS = 4  # cache_control blocks per request


class ChunkRef(NamedTuple):
    id: str
    load: str  # on_demand | lazy
    when: str
    tokens: int
    cache_key: str
    path: str


class Segment(NamedTuple):
    """A run of a bundle's text: ``core``, then shared ``modules``, then the ``command`` part."""

    part: str
    bytes: int
    tokens: int  # cl100k, as every count tokeffc reports


class Context(NamedTuple):
    command: str
    tier: str
    text: str
    tokens: int
    cache_key: str
    chunks: tuple[ChunkRef, ...]
    segments: tuple[Segment, ...] = ()

    def system_blocks(self, model: str | None = None) -> list[dict[str, Any]]:
        """The bundle as Anthropic Messages API ``system`` blocks, cached on the shared prefix.

        One text block per non-empty segment (core, modules, command); joined, their texts are
        exactly ``self.text``. The core and modules blocks carry ``cache_control`` (ephemeral)
        where the prefix up to their end reaches the model's minimum cacheable length
        (:data:`CACHE_MIN_TOKENS`, dated :data:`CACHE_MINIMUMS_AS_OF`; an unknown or absent model gets
        the largest minimum), at most :data:`MAX_BREAKPOINTS`. The lengths are cl100k counts, an
        estimate of Claude's tokens (Claude's tokenizer usually counts more, so a prefix judged long
        enough here is long enough there). A bundle without segments (tokeffc 0.1) is one block.
        """
        minimum, data = cache_minimum(model), self.text.encode("utf-8")
        parts = self.segments or (Segment("command", len(data), self.tokens),)
        if sum(part.bytes for part in parts) != len(data):
            raise ValueError(f"the segments of {self.command} [{self.tier}] do not cover its text")
        blocks: list[dict[str, Any]] = []
        position, prefix_tokens, breakpoints = 0, 0, 0
        for part in parts:
            text = data[position: position + part.bytes].decode("utf-8")
            position, prefix_tokens = position + part.bytes, prefix_tokens + part.tokens
            if not text:
                continue
            blocks.append({"type": "text", "text": text})
            if part.part != "command" and prefix_tokens >= minimum and breakpoints < MAX_BREAKPOINTS:
                blocks[-1]["cache_control"] = {"type": "ephemeral"}
                breakpoints += 1
        return blocks


class ChunkText(NamedTuple):
    id: str
    text: str
    tokens: int
    cache_key: str


class ToolResult(TypedDict):
    """What :meth:`Release.call_tool` returns: spread it into a ``tool_result`` block."""

    content: str
    is_error: bool


def cache_minimum(model: str | None) -> int:
    """The minimum cacheable prefix for ``model`` (a dated id like ``claude-sonnet-4-5-20250929`` works)."""
    if not model:
        return CACHE_MIN_DEFAULT
    name = model.lower().removesuffix("-latest")
    for mark in ("-", "@"):
        head, _, tail = name.rpartition(mark)
        if head and len(tail) == 8 and tail.isdigit():
            name = head
    return CACHE_MIN_TOKENS.get(name, CACHE_MIN_DEFAULT)


class Release:
    """A release opened for reading; each file is verified when first read (see the module's trust model)."""

    def __init__(self, store: Store, index: _Index, source: str):
        self._store, self._index, self.source = store, index, source
        self._texts: dict[str, str] = {}
        self._contexts: dict[tuple, Context] = {}
        self._manifest_bytes: bytes | None = None
        self._manifest: Any = None
        self._aliases: dict[str, list[str]] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike, *, release_id: str | None = None) -> Release:
        """Open a ``.tokb``, a release folder or its ``manifest.json``; ``release_id`` pins the release."""
        source = os.fspath(path)
        store = open_store(source)
        try:
            release = cls(store, _open_index(store), source)
            store.check_prefix(release.framework, release.version)
            if release_id is not None:
                release._pin(release_id)
        except BaseException:
            store.close()
            raise
        return release

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def framework(self) -> str:
        return self._index.framework

    @property
    def version(self) -> str:
        return self._index.version

    @property
    def release_id(self) -> str:
        """The sha256 of ``manifest.json``: the id ``tokeffc build`` prints."""
        return _sha256(self._read_manifest_bytes())

    @property
    def manifest(self):
        """The typed :class:`tokeffc.manifest.Manifest` (parsed and checked on first use)."""
        if self._manifest is None:
            from .manifest import read_manifest

            self._manifest = read_manifest(self._read_manifest_bytes(), self._store.where(MANIFEST_NAME))
        return self._manifest

    @property
    def tiers(self) -> tuple[str, ...]:
        return self._index.tiers

    @property
    def commands(self) -> tuple[str, ...]:
        return self._index.command_names

    def tier_for_complexity(self, complexity: int) -> str:
        """Complexity 1-5 maps evenly onto the tiers, smallest first (3 tiers: 1-2, 3-4, 5)."""
        if not isinstance(complexity, int) or not 1 <= complexity <= COMPLEXITY_LEVELS:
            raise ValueError(f"complexity must be an integer from 1 to {COMPLEXITY_LEVELS}, got {complexity!r}")
        tiers = self.tiers
        return tiers[min(len(tiers) - 1, (complexity - 1) * len(tiers) // COMPLEXITY_LEVELS)]

    def context(self, command: str, tier: str | None = None, complexity: int | None = None) -> Context:
        """The bundle for a command at a tier; a command with no bundle there gets its next larger tier."""
        key = (command, tier, complexity)
        found = self._contexts.get(key)
        if found is None:
            found = self._contexts[key] = self._context(command, tier, complexity)
        return found

    def chunk(self, module_id: str, tier: str | None = None, command: str | None = None) -> ChunkText:
        """A deferred module's text; name the tier (and command) when its text differs between them."""
        texts = self._chunk_texts(module_id, tier, command)
        if not texts:
            raise ReleaseError(f"no chunk '{module_id}'" + (f" at tier '{tier}'" if tier else ""),
                               hint="see a context's .chunks for the ids it lists")
        if len(texts) > 1:
            raise ReleaseError(f"chunk '{module_id}' differs between tiers or commands", hint="pass tier= and command=")
        path, (sha256, tokens) = next(iter(texts.items()))
        return ChunkText(module_id, self._text(path, sha256), tokens, sha256[:16])

    def tool(self) -> dict[str, Any]:
        """An Anthropic tool definition (``name``, ``description``, ``input_schema``) that loads a module."""
        return {
            "name": TOOL_NAME,
            "description": f"Load one of the on-demand modules of {self.framework} {self.version} and return its "
                           "text. The prompt's module index lists each module's id and when to load it; call "
                           "this when a listed module applies to the task, before acting on it.",
            "input_schema": {
                "type": "object",
                "properties": {"module": {"type": "string", "description": "The module's id as the index gives "
                                          "it (its last part, or its file name, also works when unique)."}},
                "required": ["module"],
                "additionalProperties": False,
            },
        }

    def call_tool(self, tool_input: Mapping[str, Any], context: Context | None = None) -> ToolResult:
        """Answer :meth:`tool`: the module's text, or an error result a model can read and recover from.

        ``context``: the context being served, so that a module whose text differs between tiers or
        commands resolves to that context's. A damaged or tampered file still raises ReleaseError.
        """
        name = tool_input.get("module") if isinstance(tool_input, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            return ToolResult(content="error: give {\"module\": \"<id>\"}, an id from the prompt's module index",
                              is_error=True)
        module_id, problem = self._resolve(name.strip())
        if problem:
            return ToolResult(content=f"error: {problem}", is_error=True)
        tier, command = (context.tier, context.command) if context is not None else (None, None)
        texts = self._chunk_texts(module_id, tier, command)
        if len(texts) != 1:
            return ToolResult(content=f"error: module '{module_id}' has different texts for different tiers or "
                              "commands; this host must pass the context it serves", is_error=True)
        path, (sha256, _) = next(iter(texts.items()))
        return ToolResult(content=self._text(path, sha256), is_error=False)

    def verify(self) -> None:
        """Check everything (see the trust model); raises :class:`ReleaseError` on the first problem."""
        from .manifest import read_manifest, runtime_index

        files = self._store.members()
        data = files.get(MANIFEST_NAME)
        if data is None:
            raise ReleaseError("no manifest.json in the release", Span(self._store.where("")),
                               "point at a tokeffc release")
        manifest = read_manifest(data, self._store.where(MANIFEST_NAME))
        _check_listed(manifest, files, self._store)
        _check_texts(manifest, files, self._store)
        _check_index(runtime_index(manifest), self._index.data, manifest, files, self._store)
        self._store.check_prefix(manifest.framework, manifest.version)
        if self._manifest_bytes is not None and self._manifest_bytes != data:
            raise ReleaseError("manifest.json changed since the release was opened", Span(self._store.where(
                MANIFEST_NAME)), "open the release again")
        self._manifest_bytes, self._manifest = data, manifest

    # -- internals

    def _context(self, command: str, tier: str | None, complexity: int | None) -> Context:
        if (tier is None) == (complexity is None):
            raise ValueError("give exactly one of tier= or complexity=")
        wanted = tier if tier is not None else self.tier_for_complexity(complexity)  # type: ignore[arg-type]
        if wanted not in self.tiers:
            raise ReleaseError(f"unknown tier '{wanted}'", hint=f"tiers are: {', '.join(self.tiers)}")
        bundles = self._bundles(command)
        for candidate in self.tiers[self.tiers.index(wanted):]:
            if candidate in bundles:
                return self._make_context(command, candidate, bundles[candidate])
        raise ReleaseError(f"command '{command}' has no bundle at tier '{wanted}' or above",
                           hint=f"it has: {', '.join(bundles)}")

    def _make_context(self, command: str, tier: str, bundle: _Bundle) -> Context:
        text = self._text(bundle.path, bundle.sha256)
        segments = tuple(Segment(*s) for s in bundle.segments)
        if segments and not _splits_cleanly(text.encode("utf-8"), segments):
            raise self._index.malformed(f"the segments of {command} [{tier}] do not cover its text")
        chunks = tuple(ChunkRef(c.id, c.load, c.when, c.tokens, c.sha256[:16], c.path) for c in bundle.chunks)
        return Context(command, tier, text, bundle.tokens, bundle.sha256[:16], chunks, segments)

    def _bundles(self, command: str) -> dict[str, _Bundle]:
        bundles = self._index.command(command)
        if bundles is None:
            raise ReleaseError(f"no command '{command}' in this release", hint=f"commands are: "
                               f"{', '.join(self.commands[:20])}{' ...' if len(self.commands) > 20 else ''}")
        return bundles

    def _chunk_texts(self, module_id: str, tier: str | None, command: str | None) -> dict[str, tuple[str, int]]:
        """Each distinct text of a module (path: (sha256, tokens)) among the bundles asked for."""
        if command is not None:
            bundles = self._bundles(command)
            return {c.path: (c.sha256, c.tokens) for t, b in bundles.items() if tier is None or t == tier
                    for c in b.chunks if c.id == module_id}
        module = self._index.modules().get(module_id)
        return {} if module is None else {
            t.path: (t.sha256, t.tokens) for t in module.texts if tier is None or tier in t.tiers}

    def _resolve(self, name: str) -> tuple[str, str]:
        """A module id for what a model asked for: an id, or a unique trailing part of one (whole path parts:
        ``api``, ``domains/api``, as a bundle's index may show it) or file name."""
        modules = self._index.modules()
        if name in modules:
            return name, ""
        if self._aliases is None:
            self._aliases = {}
            for module_id, module in sorted(modules.items()):
                parts = module_id.split("/")
                for alias in {*("/".join(parts[i:]) for i in range(1, len(parts))), module.file or ""} - {""}:
                    self._aliases.setdefault(alias, []).append(module_id)
        ids = self._aliases.get(name, [])
        if len(ids) == 1:
            return ids[0], ""
        if ids:
            return "", f"'{name}' names several modules ({', '.join(ids[:10])}); give the full id"
        import difflib

        close = difflib.get_close_matches(name, list(modules), n=3)
        return "", f"no module '{name}' in this release" + (f"; did you mean {', '.join(close)}?" if close else
                                                             f"; it offers {len(modules)} modules, listed in the "
                                                             "prompt's module index")

    def _text(self, path: str, sha256: str) -> str:
        text = self._texts.get(path)
        if text is None:
            text = self._texts[path] = _verified_text(self._store, path, sha256)
        return text

    def _read_manifest_bytes(self) -> bytes:
        if self._manifest_bytes is None:
            data = self._store.read(MANIFEST_NAME)
            if data is None:
                raise ReleaseError("no manifest.json in the release", Span(self._store.where(MANIFEST_NAME)),
                                   "point at a tokeffc release")
            self._manifest_bytes = data
        return self._manifest_bytes

    def _pin(self, release_id: str) -> None:
        """manifest.json has the pinned id, and lists the index header this release opened."""
        data = self._read_manifest_bytes()
        if _sha256(data) != release_id:
            raise ReleaseError(f"this is release {_sha256(data)}, not {release_id}",
                               Span(self._store.where(MANIFEST_NAME)),
                               "pin the whole sha256 of manifest.json (tokeffc inspect --json: release_id)")
        listed = self.manifest.files.get(RUNTIME_INDEX)  # parsed and checked: pinning costs a manifest read
        if listed is not None and listed != _sha256(self._index.data):
            raise ReleaseError(f"{RUNTIME_INDEX} is not the one manifest.json lists (tampered)",
                               Span(self._store.where(RUNTIME_INDEX)), "rebuild the release or fetch it again")


_BUILTIN_HASH_BYTES = 1 << 20  # what the interpreter's own SHA-256 hashes before OpenSSL's pays for its loading
_builtin_hashed = 0  # bytes it has hashed in this process


def _sha256(data: bytes) -> str:
    """The sha256 of ``data``. The first MiB a process hashes (a context's reads) goes to the interpreter's
    built-in SHA-256, which has no library to load; the rest (``verify()``, say) to OpenSSL's, about 3 ms
    to load and three times faster per byte."""
    global _builtin_hashed
    if _builtin_hashed + len(data) <= _BUILTIN_HASH_BYTES:
        _builtin_hashed += len(data)
        return _builtin_sha256()(data).hexdigest()
    import hashlib

    return hashlib.sha256(data).hexdigest()


@functools.cache  # found once per process
def _builtin_sha256() -> Callable[[bytes], Any]:
    import importlib

    for name in ("_sha2", "_sha256"):  # CPython 3.12 and later; 3.11
        try:
            return importlib.import_module(name).sha256
        except ImportError:
            continue
    import hashlib  # an interpreter without them

    return hashlib.sha256


def _splits_cleanly(data: bytes, segments: tuple[Segment, ...]) -> bool:
    """The segments cover ``data`` exactly, each starting on a character (never inside a UTF-8 sequence)."""
    position = 0
    for segment in segments:
        if position < len(data) and 0x80 <= data[position] < 0xC0:
            return False
        position += segment.bytes
    return position == len(data)


def _verified_bytes(store: Store, path: str, sha256: str) -> bytes:
    return _checked(store.read(path), path, sha256, store)


def _checked(data: bytes | None, path: str, sha256: str, store: Store) -> bytes:
    """A file's bytes, there and matching the sha256 the manifest lists for it."""
    if data is None:
        raise ReleaseError(f"missing file '{path}'", Span(store.where(path)), "rebuild the release")
    if _sha256(data) != sha256:
        raise ReleaseError(f"'{path}' does not match its sha256 in the manifest (tampered or damaged)",
                           Span(store.where(path)), "rebuild the release or fetch it again")
    return data


def _verified_text(store: Store, path: str, sha256: str) -> str:
    try:
        return _verified_bytes(store, path, sha256).decode("utf-8")
    except UnicodeDecodeError:
        raise ReleaseError(f"'{path}' is not valid UTF-8", Span(store.where(path)), "rebuild the release") from None


def _check_listed(manifest, files: dict[str, bytes], store: Store) -> None:
    """Every listed file is there with its sha256, and nothing else is."""
    extra = sorted(set(files) - set(manifest.files) - {MANIFEST_NAME})
    if extra:
        raise ReleaseError(f"'{extra[0]}' is not listed in the manifest" + (
            f" (nor {len(extra) - 1} more)" if len(extra) > 1 else ""), Span(store.where(extra[0])),
            "remove it, or rebuild the release")
    for name, digest in sorted(manifest.files.items()):
        _checked(files.get(name), name, digest, store)


def _check_index(derived: dict[str, bytes], opened: bytes, manifest, files: dict[str, bytes], store: Store) -> None:
    """The index files are all listed or none is (tokeffc 0.1), and they are the ones derived from the manifest."""
    listed = [path for path in derived if path in manifest.files]
    wrong = [path for path in listed if files[path] != derived[path]]
    if listed and len(listed) != len(derived) or wrong or opened != derived[RUNTIME_INDEX]:
        name = wrong[0] if wrong else RUNTIME_INDEX
        raise ReleaseError(f"{name} does not match manifest.json (tampered, or written by another build)",
                           Span(store.where(name)), "rebuild the release")


def _check_texts(manifest, files: dict[str, bytes], store: Store) -> None:
    paths = {b.path for b in manifest.bundles} | {c.path for b in manifest.bundles for c in b.chunks}
    for path in sorted(paths):
        try:
            files[path].decode("utf-8")
        except UnicodeDecodeError:
            raise ReleaseError(f"'{path}' is not valid UTF-8", Span(store.where(path)), "rebuild the release") from None


# --- the index ---------------------------------------------------------------------------------------------


# The index's records, checked as they are parsed. Plain slotted classes: a NamedTuple class costs 60 µs
# to create, and these four would add a quarter of a millisecond to ``import tokeffc.runtime``.


class _Chunk:
    __slots__ = ("id", "load", "path", "sha256", "tokens", "when")

    def __init__(self, id: str, path: str, sha256: str, tokens: int, load: str, when: str):
        self.id, self.path, self.sha256, self.tokens, self.load, self.when = id, path, sha256, tokens, load, when


class _Bundle:
    __slots__ = ("chunks", "path", "segments", "sha256", "tokens")

    def __init__(self, path: str, sha256: str, tokens: int, segments: tuple[tuple[str, int, int], ...],
                 chunks: tuple[_Chunk, ...]):
        self.path, self.sha256, self.tokens, self.segments, self.chunks = path, sha256, tokens, segments, chunks


class _Text:
    __slots__ = ("path", "sha256", "tiers", "tokens")

    def __init__(self, path: str, sha256: str, tokens: int, tiers: tuple[str, ...]):
        self.path, self.sha256, self.tokens, self.tiers = path, sha256, tokens, tiers


class _Module:
    __slots__ = ("file", "texts", "when")

    def __init__(self, file: str | None, when: str, texts: tuple[_Text, ...]):
        self.file, self.when, self.texts = file, when, texts


ShardReader = Callable[[str, str], bytes]  # (path, sha256) -> the shard's bytes, verified


class _Index:
    """``runtime-index.json``, parsed at open; a command's record (in one shard) when first asked for."""

    def __init__(self, data: bytes, where: str, read_shard: ShardReader):
        self.data, self.where, self._read_shard = data, where, read_shard
        try:
            header = json.loads(data)
            if header["schema"] != RUNTIME_INDEX_SCHEMA:
                raise ValueError(f"schema is {header['schema']!r}, not {RUNTIME_INDEX_SCHEMA}")
            self.framework, self.version = _str(header["framework"]), _str(header["version"])
            self.tiers = tuple(_str(t) for t in header["tiers"])
            self.shards = {_path(p): _sha(d) for p, d in header["shards"].items()}
            self.places = {_str(c): self._place(v) for c, v in header["commands"].items()}
            self.modules_at = self._place(header["modules"])
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise self.malformed(f"its header is malformed ({exc})") from None
        if not self.tiers or len(set(self.tiers)) != len(self.tiers):
            raise self.malformed("its tiers are empty or repeated")
        self.command_names = tuple(sorted(self.places))
        self._loaded: dict[str, bytes] = {}
        self._commands: dict[str, dict[str, _Bundle]] = {}
        self._modules: dict[str, _Module] | None = None

    def command(self, name: str) -> dict[str, _Bundle] | None:
        found = self._commands.get(name)
        if found is None and name in self.places:
            record = self._record(self.places[name], f"command '{name}'")
            found = self._commands[name] = self._parse(f"command '{name}'", _bundles, record, self.tiers)
        return found

    def modules(self) -> dict[str, _Module]:
        if self._modules is None:
            record = self._record(self.modules_at, "modules")
            self._modules = self._parse("modules", _modules, record)
        return self._modules

    def malformed(self, problem: str) -> ReleaseError:
        return ReleaseError(f"{RUNTIME_INDEX} is malformed: {problem}", Span(self.where),
                            "rebuild the release with 'tokeffc build'")

    def _place(self, value: Any) -> tuple[str, int, int]:
        shard, start, length = value
        if shard not in self.shards:
            raise ValueError(f"'{shard:.60}' is not one of its shards")
        return shard, _count(start), _count(length)

    def _record(self, place: tuple[str, int, int], what: str) -> Any:
        shard, start, length = place
        data = self._loaded.get(shard)
        if data is None:
            data = self._loaded[shard] = self._read_shard(shard, self.shards[shard])
        line = data[start: start + length]
        if len(line) != length or data[start + length: start + length + 1] != b"\n":
            raise self.malformed(f"the record of {what} is not where its header says")
        try:
            return json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise self.malformed(f"the record of {what} is not JSON ({exc})") from None

    def _parse(self, what: str, parse, *args):
        try:
            return parse(*args)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise self.malformed(f"{what}: {exc}") from None


def _bundles(record: Any, tiers: tuple[str, ...]) -> dict[str, _Bundle]:
    bundles = {}
    for tier, b in record["bundles"].items():
        if tier not in tiers:
            raise ValueError(f"tier '{tier}' is not one of the release's")
        chunks = tuple(_Chunk(_path(i), _path(p), _sha(s), _count(n), _str(ld), _str(w)) for i, p, s, n, ld, w
                       in b["chunks"])
        segments = tuple((_str(part), _count(size), _count(n)) for part, size, n in b["segments"])
        bundles[tier] = _Bundle(_path(b["path"]), _sha(b["sha256"]), _count(b["tokens"]), segments, chunks)
    return bundles


def _modules(record: Any) -> dict[str, _Module]:
    modules = {}
    for module_id, m in record["modules"].items():
        texts = tuple(_Text(_path(p), _sha(s), _count(n), tuple(_str(t) for t in tiers)) for p, s, n, tiers
                      in m["texts"])
        modules[_path(module_id)] = _Module(None if m["file"] is None else _str(m["file"]), _str(m["when"]), texts)
    return modules


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r:.40} is not a string")
    return value


def _path(value: Any) -> str:
    if not safe_release_path(_str(value)):
        raise ValueError(f"'{value:.60}' is not a plain path inside the release")
    return value


def _sha(value: Any) -> str:
    if len(_str(value)) != 64 or value.strip("0123456789abcdef"):
        raise ValueError(f"'{value:.70}' is not a sha256")
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{value!r:.40} is not a count")
    return value


def _open_index(store: Store) -> _Index:
    """The runtime index; a release written before it had one gets it derived from its manifest."""
    data = store.read(RUNTIME_INDEX)
    if data is not None:
        return _Index(data, store.where(RUNTIME_INDEX), lambda path, sha256: _verified_bytes(store, path, sha256))
    from .manifest import read_manifest, runtime_index

    manifest = store.read(MANIFEST_NAME)
    if manifest is None:
        raise ReleaseError("not a release: no manifest.json", Span(store.where(MANIFEST_NAME)),
                           "pass a .tokb, a release folder or its manifest.json")
    derived = runtime_index(read_manifest(manifest, store.where(MANIFEST_NAME)))
    return _Index(derived[RUNTIME_INDEX], store.where(MANIFEST_NAME), lambda path, sha256: derived[path])
