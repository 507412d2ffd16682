"""``tokeffc serve``: a verified release as an MCP server over stdio, on the official ``mcp`` SDK (v2).

    tokeffc serve dist/forge-2.3.0.tokb                  # or the release folder, or its manifest.json
    claude mcp add forge -- tokeffc serve /abs/path/forge-2.3.0.tokb

At start the release is opened and verified whole (:meth:`Release.verify`); a damaged or tampered
release is refused with one ``error:`` line (exit 3) before a byte of MCP is written. Then every
bundle and chunk is read once (each read checked against its sha256) and held: the server answers
from what it verified, whatever happens to the files afterwards.

What a client sees:

- **Prompts**, one per command×tier bundle (:func:`prompt_name`): the command's id with each
  character outside ``[A-Za-z0-9_-]`` made ``_`` (``analyst/elicit`` gives ``analyst_elicit``)
  for the command's smallest tier, and ``<that>-<tier>`` for each larger one (``task``,
  ``task-standard``, ``task-full``). Claude Code lists them as ``/mcp__<server>__task-full``. The
  description is the command's front matter ``description``; the title gives the tier and size. A
  prompt is one user message holding the bundle's text, byte for byte. A bundle whose text holds
  ``$ARGUMENTS`` declares one optional argument, ``arguments``: when the client passes it, every
  ``$ARGUMENTS`` becomes its value (as Claude Code does for its own commands); when it does not,
  the text is the bundle as compiled, exactly the tokens the manifest gives.
- **Resources**, one per chunk file: ``tokeffc://<framework>/<version>/<chunk path>``, named by
  the module's id, described by its trigger and size.
- **A tool**, ``load_module``: :meth:`Release.tool`'s definition, answered by
  :meth:`Release.call_tool` (an id, any trailing part of it the index shows, or its file name,
  when unique). The bundles' module index already names this tool. A module whose text differs between tiers
  resolves to the
  bundle of the prompt this server served last; an unknown id is a tool error the model can read
  (``is_error``), and the server goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .errors import ReleaseError, UsageError
from .runtime import TOOL_NAME, Context, Release

URI_SCHEME = "tokeffc"
ARGUMENTS = "$ARGUMENTS"
ARGUMENT_NAME = "arguments"
MAX_ARGUMENT_CHARS = 1 << 20  # what a user types after a command; more is refused
MAX_MODULE_NAME = 1024  # a module id a model asks for; longer is refused before any lookup
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MIME_TYPES = {"md": "text/markdown", "markdown": "text/markdown", "yaml": "application/yaml",
               "yml": "application/yaml", "json": "application/json", "xml": "application/xml",
               "csv": "text/csv", "html": "text/html"}


@dataclass(frozen=True, slots=True)
class PromptEntry:
    """One command×tier bundle, as an MCP prompt."""

    name: str
    command: str
    tier: str
    title: str
    description: str
    argument_hint: str | None  # set when the text holds $ARGUMENTS: the prompt takes `arguments`
    context: Context

    @property
    def takes_arguments(self) -> bool:
        return self.argument_hint is not None


@dataclass(frozen=True, slots=True)
class ResourceEntry:
    """One chunk file, as an MCP resource."""

    uri: str
    path: str
    module: str
    title: str
    description: str
    mime_type: str
    text: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Everything the server offers, read and verified at start."""

    release: Release
    server_name: str
    prompts: Mapping[str, PromptEntry]
    resources: Mapping[str, ResourceEntry]

    @property
    def has_tool(self) -> bool:
        """load_module is offered only when the release has modules on request (its chunks, the resources)."""
        return bool(self.resources)


# --- opening -------------------------------------------------------------------------------------------------


def open_catalogue(path: str, server_name: str | None = None, release_id: str | None = None) -> Catalogue:
    """Open and verify the release at ``path``, then read all it serves. Raises :class:`ReleaseError`."""
    _check_options(server_name, release_id)
    release = Release.open(path, release_id=release_id)
    try:
        release.verify()
        return catalogue(release, server_name or release.framework)
    except BaseException:
        release.close()
        raise


def _check_options(server_name: str | None, release_id: str | None) -> None:
    if server_name is not None and not server_name.strip():
        raise UsageError("the server's --name is empty", hint="give a name, or leave --name out")
    if release_id is not None and not _SHA256.fullmatch(release_id):
        raise UsageError(f"--release-id '{release_id:.70}' is not a release id", hint="give the whole sha256 (64 "
                         "hex digits) that 'tokeffc inspect RELEASE --json' prints as release_id")


def catalogue(release: Release, server_name: str) -> Catalogue:
    """What ``release`` offers over MCP: its bundles as prompts and its chunks as resources, all read now."""
    prompts = _prompts(release)
    return Catalogue(release, server_name, prompts, _resources(release, [p.context for p in prompts.values()]))


# --- prompts -------------------------------------------------------------------------------------------------


def prompt_name(command: str, tier: str, smallest: bool) -> str:
    """``task`` for a command's smallest tier, ``task-full`` for another; ``/`` and the like become ``_``."""
    base = _UNSAFE.sub("_", command)
    return base if smallest else f"{base}-{_UNSAFE.sub('_', tier)}"


def _prompts(release: Release) -> dict[str, PromptEntry]:
    entries: dict[str, PromptEntry] = {}
    for bundles in _bundles_by_command(release).values():
        for rank, bundle in enumerate(bundles):
            name = _unique(prompt_name(bundle.command, bundle.tier, rank == 0), entries)
            entries[name] = _prompt(release, name, bundle)
    return entries


def _bundles_by_command(release: Release) -> dict[str, list]:
    """Each command's bundles (manifest entries), smallest tier first; commands in id order."""
    order = {tier: rank for rank, tier in enumerate(release.tiers)}
    found: dict[str, list] = {}
    for bundle in release.manifest.bundles:
        found.setdefault(bundle.command, []).append(bundle)
    return {command: sorted(bundles, key=lambda b: order[b.tier]) for command, bundles in sorted(found.items())}


def _unique(name: str, taken: Mapping[str, Any]) -> str:
    """``name``, or ``name-2``, ``name-3``, … when two bundles would share it (ids that differ only in ``/``)."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def _prompt(release: Release, name: str, bundle) -> PromptEntry:
    command, tier = bundle.command, bundle.tier
    context = release.context(command, tier=tier)
    doc = release.manifest.commands.get(command)
    meta = doc.meta if doc is not None else {}
    description = _text_field(meta, "description") or f"{command} ({bundle.role}, {release.framework} " \
                                                       f"{release.version})"
    hint = (_text_field(meta, "argument-hint") or "what the command works on") if ARGUMENTS in context.text else None
    title = f"{command} [{tier}, {context.tokens:,} tokens]"
    return PromptEntry(name, command, tier, title, description, hint, context)


def _text_field(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    return " ".join(value.split()) if isinstance(value, str) else ""


def prompt_text(entry: PromptEntry, arguments: Mapping[str, Any] | None) -> str:
    """The bundle's text; with ``arguments`` given, each ``$ARGUMENTS`` replaced by its value."""
    value = (arguments or {}).get(ARGUMENT_NAME)
    if value is None or not entry.takes_arguments:
        return entry.context.text
    if not isinstance(value, str) or len(value) > MAX_ARGUMENT_CHARS:
        raise UsageError(f"'{ARGUMENT_NAME}' must be text of at most {MAX_ARGUMENT_CHARS:,} characters")
    return entry.context.text.replace(ARGUMENTS, value)


# --- resources -----------------------------------------------------------------------------------------------


def resource_uri(framework: str, version: str, path: str) -> str:
    return f"{URI_SCHEME}://{quote(framework, safe='')}/{quote(version, safe='')}/{quote(path, safe='/')}"


def mime_type(path: str) -> str:
    return _MIME_TYPES.get(path.rsplit(".", 1)[-1].lower(), "text/plain")


def _resources(release: Release, contexts: list[Context]) -> dict[str, ResourceEntry]:
    """Each chunk file once, read through the first bundle that lists it."""
    listed, tiers, paths = _chunk_listing(contexts)
    entries = {}
    for path, (ref, context) in sorted(listed.items()):
        shown = [tier for tier in release.tiers if tier in tiers[path]] if len(paths[ref.id]) > 1 else []
        entry = _resource(release, ref, context, shown)
        entries[entry.uri] = entry
    return entries


def _chunk_listing(contexts: list[Context]) -> tuple[dict, dict[str, set[str]], dict[str, set[str]]]:
    """By chunk path, the first (ref, context) listing it and the tiers listing it; by module id, its paths."""
    listed: dict = {}
    tiers: dict[str, set[str]] = {}
    paths: dict[str, set[str]] = {}
    for context in contexts:
        for ref in context.chunks:
            listed.setdefault(ref.path, (ref, context))
            tiers.setdefault(ref.path, set()).add(context.tier)
            paths.setdefault(ref.id, set()).add(ref.path)
    return listed, tiers, paths


def _resource(release: Release, ref, context: Context, tiers: list[str]) -> ResourceEntry:
    """``tiers``: where this text of the module is listed, when the module has several texts."""
    text = release.chunk(ref.id, tier=context.tier, command=context.command).text
    title = f"{ref.id} [{', '.join(tiers)}]" if tiers else ref.id
    description = f"{ref.when} ({ref.tokens:,} tokens)" if ref.when else f"{ref.tokens:,} tokens"
    uri = resource_uri(release.framework, release.version, ref.path)
    return ResourceEntry(uri, ref.path, ref.id, title, description, mime_type(ref.path), text)


# --- the tool ------------------------------------------------------------------------------------------------


def load_module(release: Release, tool_input: Mapping[str, Any], context: Context | None) -> tuple[str, bool]:
    """:meth:`Release.call_tool` for ``tool_input``: (text, is_error). ``context``: the prompt served last.

    A module the context's bundle does not list is looked up in the whole release, so a model can
    load any module of the release by the id another bundle gave it.
    """
    name = tool_input.get("module") if isinstance(tool_input, Mapping) else None
    if isinstance(name, str) and len(name) > MAX_MODULE_NAME:
        return f"error: a module id is at most {MAX_MODULE_NAME} characters", True
    try:
        answer = release.call_tool(tool_input, context) if context is not None else None
        if answer is None or answer["is_error"]:
            answer = release.call_tool(tool_input)
    except ReleaseError as exc:
        return f"error: {exc.one_line()}", True
    return answer["content"], answer["is_error"]


# --- the server ----------------------------------------------------------------------------------------------


def serve(path: str, server_name: str | None = None, release_id: str | None = None,
          say: Callable[[str], None] | None = None) -> None:
    """Verify the release at ``path``, then serve it over stdio until the client closes the connection
    (or an interrupt). ``say``: where the one line announcing what is served goes (stderr, never stdout)."""
    served = open_catalogue(path, server_name, release_id)
    try:
        require_sdk()
        import anyio

        if say is not None:
            say(announcement(served))
        anyio.run(run_stdio, served)
    except KeyboardInterrupt:
        pass
    finally:
        served.release.close()


def announcement(served: Catalogue) -> str:
    release = served.release
    return (f"tokeffc serve: {release.framework} {release.version}, release {release.release_id[:16]} verified: "
            f"{len(served.prompts)} prompts, {len(served.resources)} resources, "
            f"{f'tool {TOOL_NAME}' if served.has_tool else 'no tool (no module on request)'}; MCP on stdio")


def require_sdk() -> None:
    try:
        import mcp.server  # noqa: F401  (the SDK is an optional dependency: tokeffc[serve])
    except ImportError:
        raise UsageError("tokeffc serve needs the MCP Python SDK, which is not installed",
                         hint="install tokeffc's serve extra (from a clone: pip install '.[serve]'), "
                              "or the SDK itself: pip install 'mcp>=2.3,<3'") from None


async def run_stdio(served: Catalogue) -> None:
    from mcp.server.stdio import stdio_server

    server = mcp_server(served)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def mcp_server(served: Catalogue):
    """The SDK's low-level ``Server``, answering from ``served``."""
    from mcp.server import Server

    handlers = _Handlers(served)
    release = served.release
    return Server(served.server_name, version=release.version, title=f"{release.framework} {release.version}",
                  instructions=instructions(served),
                  on_list_prompts=handlers.list_prompts, on_get_prompt=handlers.get_prompt,
                  on_list_resources=handlers.list_resources, on_read_resource=handlers.read_resource,
                  on_list_tools=handlers.list_tools, on_call_tool=handlers.call_tool)


def instructions(served: Catalogue) -> str:
    release = served.release
    modules = (" A prompt's module index lists modules on request: when a trigger there applies, call "
               f"{TOOL_NAME} with the module's id.") if served.has_tool else ""
    return (f"{release.framework} {release.version}, compiled by tokeffc. Each prompt is one of its commands at "
            f"one tier: the plain name is the command's smallest tier, '-<tier>' a larger one.{modules}")


class _Handlers:
    """The MCP requests, answered from the catalogue; remembers the prompt served last (one client per stdio)."""

    def __init__(self, served: Catalogue):
        self.served = served
        self.current: Context | None = None

    async def list_prompts(self, ctx, params):
        import mcp_types as types

        return types.ListPromptsResult(prompts=[_prompt_of(types, entry) for entry in self.served.prompts.values()])

    async def get_prompt(self, ctx, params):
        import mcp_types as types

        entry = self.served.prompts.get(params.name)
        if entry is None:
            raise _invalid(f"no prompt '{params.name:.200}' in {_release_name(self.served)}; list the prompts "
                           "for their names")
        try:
            text = prompt_text(entry, params.arguments)
        except UsageError as exc:
            raise _invalid(exc.one_line()) from None
        self.current = entry.context
        message = types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
        return types.GetPromptResult(description=entry.description, messages=[message])

    async def list_resources(self, ctx, params):
        import mcp_types as types

        resources = [_resource_of(types, entry) for entry in self.served.resources.values()]
        return types.ListResourcesResult(resources=resources)

    async def read_resource(self, ctx, params):
        import mcp_types as types

        entry = self.served.resources.get(str(params.uri))
        if entry is None:
            raise _invalid(f"no resource '{str(params.uri):.300}' in {_release_name(self.served)}; list the "
                           "resources for their URIs", {"uri": str(params.uri)})
        contents = types.TextResourceContents(uri=entry.uri, mime_type=entry.mime_type, text=entry.text)
        return types.ReadResourceResult(contents=[contents])

    async def list_tools(self, ctx, params):
        import mcp_types as types

        if not self.served.has_tool:
            return types.ListToolsResult(tools=[])
        definition = self.served.release.tool()
        tool = types.Tool(name=definition["name"], description=definition["description"],
                          input_schema=definition["input_schema"])
        return types.ListToolsResult(tools=[tool])

    async def call_tool(self, ctx, params):
        import mcp_types as types

        if params.name != TOOL_NAME or not self.served.has_tool:
            offers = f"this server has one, {TOOL_NAME}" if self.served.has_tool else \
                "this release offers no module on request, so this server has no tool"
            text, is_error = f"error: no tool '{params.name:.200}'; {offers}", True
        else:
            text, is_error = load_module(self.served.release, params.arguments or {}, self.current)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)


def _prompt_of(types, entry: PromptEntry):
    arguments = [types.PromptArgument(name=ARGUMENT_NAME, description=entry.argument_hint, required=False)] \
        if entry.takes_arguments else None
    return types.Prompt(name=entry.name, title=entry.title, description=entry.description, arguments=arguments)


def _resource_of(types, entry: ResourceEntry):
    return types.Resource(uri=entry.uri, name=entry.module, title=entry.title, description=entry.description,
                          mime_type=entry.mime_type, size=len(entry.text.encode("utf-8")))


def _invalid(message: str, data: Any = None):
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS

    return MCPError(INVALID_PARAMS, message, data)


def _release_name(served: Catalogue) -> str:
    return f"{served.release.framework} {served.release.version}"
