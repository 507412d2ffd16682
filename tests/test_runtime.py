"""The runtime: lazy verification, folder mode's refusals, API hosts (system blocks, the module tool), manifests."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys

import pytest
from conftest import EXAMPLE, MINI_CONFIG, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from releases import MANIFEST, assert_refused, inspect, read_folder, reseal, shard_of, write_folder

from tokeffc.layout import RUNTIME_INDEX
from tokeffc.manifest import Manifest
from tokeffc.pipeline import build_release, compile_framework
from tokeffc.runtime import CACHE_MIN_DEFAULT, Context, Release, ReleaseError, Segment, cache_minimum


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return dict(compile_framework(EXAMPLE).release.files)


@pytest.fixture
def folder(files, tmp_path):
    return write_folder(tmp_path / "forge" / "2.3.0", files)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _, folder, archive = build_release(EXAMPLE, tmp_path_factory.mktemp("dist"))
    return folder, archive


# --- opening and reading ------------------------------------------------------------------------------------


def test_folder_archive_and_manifest_path_agree(built):
    folder, archive = built
    opened = [Release.open(source) for source in (archive, folder, folder / MANIFEST, str(archive))]
    assert len({r.release_id for r in opened}) == 1
    assert len({r.context("feature", tier="full") for r in opened}) == 1
    release = opened[0]
    assert isinstance(release.manifest, Manifest) and release.manifest.framework == "forge"
    assert (release.framework, release.version, release.tiers) == ("forge", "2.3.0", ("minimal", "standard", "full"))
    assert release.commands == ("feature", "meta", "protocol", "query", "swarm", "task")


def test_a_context_is_built_once(built):
    release = Release.open(built[1])
    first = release.context("task", complexity=3)
    assert release.context("task", complexity=3) is first and first.tier == "standard"
    assert first.cache_key == release.manifest.bundle("task", "standard").cache_key


def test_files_are_verified_when_first_read_not_before(folder):
    chunk = folder / "chunks" / "domains" / next(p.name for p in (folder / "chunks" / "domains").iterdir())
    chunk.write_bytes(chunk.read_bytes() + b"tampered\n")
    release = Release.open(folder)
    context = release.context("task", tier="minimal")
    with pytest.raises(ReleaseError, match="does not match its sha256"):
        for ref in context.chunks:
            release.chunk(ref.id, tier="minimal", command="task")
    with pytest.raises(ReleaseError, match="does not match its sha256"):
        release.verify()


@pytest.mark.parametrize("which", [0, 1])
def test_a_closed_release_reads_nothing_more(built, which):
    with Release.open(built[which]) as release:
        release.context("task", tier="minimal")
    assert release.context("task", tier="minimal").tier == "minimal"  # already read
    with pytest.raises(ReleaseError, match="closed"):
        _ = release.release_id  # manifest.json, not read yet


def test_pinned_release_id(folder):
    release_id = Release.open(folder).release_id
    assert Release.open(folder, release_id=release_id).context("task", tier="full").tier == "full"
    with pytest.raises(ReleaseError, match="not 0000000000000000"):
        Release.open(folder, release_id="0" * 64)
    index = folder / RUNTIME_INDEX
    index.write_bytes(index.read_bytes().replace(b'"tiers":', b'"tiers": ', 1))
    Release.open(folder)  # unpinned, the runtime trusts the index (verify() would not)
    with pytest.raises(ReleaseError, match="is not the one manifest.json lists"):
        Release.open(folder, release_id=release_id)


def test_a_release_without_an_index_derives_it(files, tmp_path):
    folder = write_folder(tmp_path / "old", reseal(files, index=False))
    release = Release.open(folder)
    release.verify()
    assert release.context("task", tier="minimal").text == files["bundles/task/minimal.md"].decode()


def test_runtime_import_leaves_heavy_modules_out():
    code = "import sys; before = set(sys.modules); import tokeffc.runtime; " \
           "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('click', 'jinja2', " \
           "'networkx', 'tiktoken', 'rich', 'yaml', 'tempfile', 'shutil', 'threading', 'logging', 'dataclasses', " \
           "'tarfile', 'pathlib')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_a_first_context_loads_no_openssl(folder):
    """What a context reads is hashed by the interpreter's own SHA-256: loading OpenSSL would cost more."""
    code = ("import sys; from tokeffc.runtime import Release; "
            f"Release.open({str(folder)!r}).context('task', tier='minimal'); print('_hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("size", [0, 100, (1 << 20) - 1, 1 << 20, 3 << 20])
@pytest.mark.parametrize("hashed_before", [0, (1 << 20) - 50, 1 << 20])
def test_the_runtime_hashes_as_hashlib_does(size, hashed_before, monkeypatch):
    """Whichever SHA-256 hashes it (the built-in until a MiB is hashed, then OpenSSL's), the digest is one."""
    import hashlib

    from tokeffc import runtime

    monkeypatch.setattr(runtime, "_builtin_hashed", hashed_before)
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert runtime._sha256(data) == hashlib.sha256(data).hexdigest()


# --- folder mode refuses ------------------------------------------------------------------------------------


def test_unlisted_file_in_folder_is_refused_by_inspect(folder):
    (folder / "bundles" / "task" / "notes.md").write_text("an extra file\n")
    assert Release.open(folder).context("task", tier="minimal")  # never read, so harmless to the runtime
    assert_refused(inspect(folder), str(folder / "bundles" / "task" / "notes.md"), "is not listed in the manifest")


def test_listed_file_that_is_a_symlink_is_refused(folder, tmp_path):
    target = folder / "bundles" / "task" / "minimal.md"
    outside = tmp_path / "outside.md"
    outside.write_bytes(target.read_bytes())  # the same bytes: only the link is wrong
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(ReleaseError, match="is a symlink"):
        Release.open(folder).context("task", tier="minimal")
    assert_refused(inspect(folder), str(target), "is a symlink")


def test_listed_file_reached_through_a_symlinked_folder_is_refused(folder, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.move(folder / "bundles" / "task", moved)
    (folder / "bundles" / "task").symlink_to(moved)
    with pytest.raises(ReleaseError, match="is a symlink"):
        Release.open(folder).context("task", tier="minimal")
    assert_refused(inspect(folder), "bundles/task", "is a symlink")


def test_a_fifo_in_the_folder_is_refused_without_blocking(folder):
    os.mkfifo(folder / "bundles" / "pipe.md")
    assert_refused(inspect(folder), str(folder / "bundles" / "pipe.md"), "is not a regular file")


def test_a_manifest_over_the_cap_is_refused_unread(folder):
    with open(folder / MANIFEST, "r+b") as handle:
        handle.truncate(600 << 20)  # sparse: 600 MB that a reader would have to hold
    limit = 512 << 20
    done = subprocess.run([sys.executable, "-m", "tokeffc.cli", "inspect", str(folder)], capture_output=True,
                          text=True, timeout=60, cwd=REPO, check=False,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1 and "over the 67,108,864-byte limit" in lines[0], lines
    assert str(folder / MANIFEST) in lines[0]


def test_a_bundle_that_is_not_utf8_is_refused(files, tmp_path):
    folder = write_folder(tmp_path / "r", reseal({**files, "bundles/task/minimal.md": b"# Task\n\xff\xfe broken\n"}))
    with pytest.raises(ReleaseError, match="is not valid UTF-8"):
        Release.open(folder).context("task", tier="minimal")
    assert_refused(inspect(folder), "bundles/task/minimal.md", "is not valid UTF-8")


@pytest.mark.parametrize("in_shard, change, match", [
    (False, lambda data: b"not json" + data, "runtime-index.json is malformed"),
    (False, lambda data: data.replace(b'"tiers":["minimal"', b'"tiers":[7', 1), "is not a string"),
    (False, lambda data: data.replace(b'"shards":{"', b'"shards":{"../', 1), "not a plain path"),
    (True, lambda data: re.sub(rb'"tokens":(\d)\d', rb'"tokens":-\1', data, count=1), "is not a count"),
    (True, lambda data: data.replace(b'"path":"bundles/', b'"path":"../../x/', 1), "not a plain path"),
    (True, lambda data: b"\n" + data, "is not where its header says"),
])
def test_a_malformed_index_is_refused(folder, in_shard, change, match):
    header = folder / RUNTIME_INDEX
    if in_shard:  # a shard changed, and its sha256 in the header with it
        shard = folder / shard_of(read_folder(folder), "feature")
        old = hashlib.sha256(shard.read_bytes()).hexdigest()
        shard.write_bytes(change(shard.read_bytes()))
        new = hashlib.sha256(shard.read_bytes()).hexdigest()
        header.write_bytes(header.read_bytes().replace(old.encode(), new.encode()))
    else:
        header.write_bytes(change(header.read_bytes()))
    with pytest.raises(ReleaseError, match=match):
        release = Release.open(folder)
        for command in release.commands:
            release.context(command, tier="full")
    result = inspect(folder)
    assert result.exit_code == 3 and "Traceback" not in result.output


# --- API hosts: system blocks -------------------------------------------------------------------------------


def text_blocks(blocks):
    from anthropic.types import TextBlockParam

    return TypeAdapter(list[TextBlockParam]).validate_python(blocks)


def breakpoints(blocks) -> list[int]:
    return [i for i, block in enumerate(blocks) if "cache_control" in block]


def test_a_bundle_too_short_to_cache_gets_no_breakpoint(built):
    context = Release.open(built[1]).context("query", tier="minimal")
    assert context.tokens < 1024
    for model in (None, "claude-sonnet-4-5", "claude-opus-4-1-20250805", "claude-haiku-4-5"):
        blocks = context.system_blocks(model)
        text_blocks(blocks)
        assert "".join(b["text"] for b in blocks) == context.text
        assert len(blocks) == 2 and breakpoints(blocks) == []  # core and command; the empty modules part skipped


def test_a_bundle_with_all_three_parts(built):
    context = Release.open(built[1]).context("feature", tier="full")
    core, modules, _ = context.segments
    assert all(part.bytes for part in context.segments) and core.tokens < 1024 <= core.tokens + modules.tokens
    blocks = context.system_blocks("claude-sonnet-4-5-20250929")
    text_blocks(blocks)
    assert [b["text"] for b in blocks] == [context.text.encode()[:core.bytes].decode(),
                                           context.text.encode()[core.bytes: core.bytes + modules.bytes].decode(),
                                           context.text.encode()[core.bytes + modules.bytes:].decode()]
    assert breakpoints(blocks) == [1] and blocks[1]["cache_control"] == {"type": "ephemeral"}
    assert breakpoints(context.system_blocks("claude-opus-4-5")) == []
    assert breakpoints(context.system_blocks()) == []


def test_a_long_core_and_modules_get_two_breakpoints(mini, tmp_path):
    core = "".join(f"Rule {n}: check the inputs, name the file and the line, and say what to do.\n"
                   for n in range(120))
    root = mini({"CORE.md": "# Core\n\n" + core, "modules/style.md": "# Style\n\n" + core.replace("Rule", "Style"),
                 "commands/c.md": "---\ntokeffc: {requires: [style]}\n---\nDo the task.\n"},
                config=MINI_CONFIG.replace("1000", "9000").replace("2000", "9500").replace("4000", "9900"))
    _, _, archive = build_release(root, tmp_path / "out")
    context = Release.open(archive).context("c", tier="full")
    assert [s.part for s in context.segments if s.bytes] == ["core", "modules", "command"]
    assert context.segments[0].tokens >= 1024
    blocks = context.system_blocks("claude-sonnet-4-5")
    assert breakpoints(blocks) == [0, 1] and "".join(b["text"] for b in blocks) == context.text
    sonnet_4_6 = breakpoints(context.system_blocks("claude-sonnet-4-6"))
    assert sonnet_4_6 == [i for i, n in enumerate((context.segments[0].tokens,
                                                   context.segments[0].tokens + context.segments[1].tokens))
                          if n >= 2048]


def test_cache_minimums_by_model():
    assert cache_minimum(None) == cache_minimum("") == cache_minimum("some-future-model") == CACHE_MIN_DEFAULT == 4096
    assert cache_minimum("claude-sonnet-4-5-20250929") == cache_minimum("claude-opus-4-1@20250805") == 1024
    assert cache_minimum("claude-3-5-haiku-latest") == 2048 and cache_minimum("claude-opus-4-6") == 4096
    assert cache_minimum("claude-opus-4-7") == 4096  # not documented: the conservative minimum


def test_system_blocks_keep_at_most_four_breakpoints_and_skip_empty_parts():
    parts = (Segment("core", 3, 5000), Segment("modules", 0, 0), Segment("command", 4, 10))
    context = Context("c", "t", "abcdefg", 5010, "k", (), parts)
    blocks = context.system_blocks("claude-sonnet-4-5")
    assert blocks == [{"type": "text", "text": "abc", "cache_control": {"type": "ephemeral"}},
                      {"type": "text", "text": "defg"}]
    with pytest.raises(ValueError, match="do not cover"):
        Context("c", "t", "abc", 1, "k", (), (Segment("core", 2, 1),)).system_blocks()


# --- API hosts: the module tool -----------------------------------------------------------------------------


def test_tool_definition_and_answers_have_the_sdks_shapes(built):
    from anthropic.types import ToolParam, ToolResultBlockParam

    release = Release.open(built[1])
    tool = release.tool()
    TypeAdapter(ToolParam).validate_python(tool)
    assert set(tool) == {"name", "description", "input_schema"} and tool["name"] == "load_module"
    answer = release.call_tool({"module": "domains/api"})
    assert answer == {"content": release.chunk("domains/api").text, "is_error": False}
    TypeAdapter(ToolResultBlockParam).validate_python({"type": "tool_result", "tool_use_id": "toolu_1", **answer})


@pytest.mark.parametrize("asked, found", [("domains/api", "domains/api"), ("api", "domains/api"),
                                          ("api.md", "domains/api"), ("  domains/api ", "domains/api")])
def test_a_module_by_id_last_part_or_file_name(built, asked, found):
    release = Release.open(built[1])
    assert release.call_tool({"module": asked})["content"] == release.chunk(found).text


@pytest.mark.parametrize("tool_input, says", [
    ({"module": "domains/apii"}, "did you mean domains/api"),
    ({"module": "nothing-like-it"}, "no module 'nothing-like-it'"),
    ({"module": ""}, "give {\"module\""),
    ({"id": "domains/api"}, "give {\"module\""),
    ("domains/api", "give {\"module\""),
])
def test_an_unknown_module_is_an_error_result(built, tool_input, says):
    answer = Release.open(built[1]).call_tool(tool_input)
    assert answer["is_error"] is True and says in answer["content"]


def test_a_name_that_fits_several_modules_asks_for_the_id(mini, tmp_path):
    root = mini({"commands/c.md": "---\ntokeffc: {requires: [{module: a/x.md, load: on_demand}, "
                                  "{module: b/x.md, load: on_demand}]}\n---\nc\n", "a/x.md": "ax\n", "b/x.md": "bx\n"})
    _, _, archive = build_release(root, tmp_path / "out")
    answer = Release.open(archive).call_tool({"module": "x"})
    assert answer["is_error"] and "names several modules (a/x, b/x)" in answer["content"]


def test_a_module_differing_by_tier_resolves_in_its_context(mini, tmp_path):
    root = mini({"commands/c.md": "---\ntokeffc: {requires: [{module: x, load: on_demand}]}\n---\nc\n",
                 "modules/x.md": "x {{ tokeffc.tier }}\n"})
    _, _, archive = build_release(root, tmp_path / "out")
    release = Release.open(archive)
    assert release.call_tool({"module": "x"})["is_error"]
    assert release.call_tool({"module": "x"}, context=release.context("c", tier="full"))["content"] == "x full\n"


def test_a_tool_use_loop_with_the_sdks_types(built):
    """The README's loop, with a response the SDK parses instead of one from the network."""
    from anthropic.types import Message
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

    release = Release.open(built[1])
    context = release.context("task", complexity=2)
    model = "claude-sonnet-4-5"
    messages = [{"role": "user", "content": "Add an endpoint for exporting invoices."}]
    response = Message.model_validate({
        "id": "msg_1", "type": "message", "role": "assistant", "model": model, "stop_reason": "tool_use",
        "stop_sequence": None, "usage": {"input_tokens": 1200, "output_tokens": 40},
        "content": [{"type": "text", "text": "Loading the API template."},
                    {"type": "tool_use", "id": "toolu_1", "name": "load_module", "input": {"module": "domains/api"}}]})
    results = [{"type": "tool_result", "tool_use_id": block.id, **release.call_tool(block.input, context=context)}
               for block in response.content if block.type == "tool_use"]
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in response.content]},
                 {"role": "user", "content": results}]
    request = {"model": model, "max_tokens": 2048, "system": context.system_blocks(model), "tools": [release.tool()],
               "messages": messages}
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python(request)
    assert results[0]["content"] == release.chunk("domains/api").text and not results[0]["is_error"]


# --- a malformed manifest is one exit-3 line, never a traceback or exit 4 -------------------------------------


def json_values():
    scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=8), inner, max_size=3), max_leaves=8)


def paths(value, at=()):
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*at, key))
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from paths(item, (*at, number))


def mutate(manifest, path, action, value):
    if not path:
        return value
    mutated = copy.deepcopy(manifest)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[f"unknown_{path[-1]}"] = value
    else:
        parent[path[-1]] = value
    return mutated


@pytest.fixture(scope="module")
def mutable(files, tmp_path_factory):
    manifest = json.loads(files[MANIFEST])
    return manifest, sorted(paths(manifest), key=repr), tmp_path_factory.mktemp("mutations")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_manifests_never_crash(files, mutable, data):
    manifest, all_paths, base = mutable
    changed = manifest
    for _ in range(data.draw(st.integers(1, 3))):
        candidates = [p for p in paths(changed)] if changed is not manifest else all_paths
        path = data.draw(st.sampled_from(candidates))
        how = data.draw(st.sampled_from(["replace", "delete", "add"]))
        changed = mutate(changed, path, how, data.draw(json_values()))
    folder = base / "release"
    shutil.rmtree(folder, ignore_errors=True)
    write_folder(folder, {**files, MANIFEST: json.dumps(changed, allow_nan=True).encode()})
    result = inspect(folder)
    assert result.exit_code in (0, 3) and "Traceback" not in result.output, (result.exit_code, result.output)
    if result.exit_code == 3:
        assert len(result.stderr.strip().splitlines()) == 1
    (folder / RUNTIME_INDEX).unlink()  # a release without an index derives it from this manifest
    try:
        release = Release.open(folder)
        for command in release.commands:
            release.context(command, tier=release.tiers[-1]).system_blocks()
    except ReleaseError:
        pass


def _edit(change):
    def edited(manifest: dict) -> bytes:
        change(manifest)
        return json.dumps(manifest).encode()
    return edited


MANIFEST_CASES = {
    "not-json": (lambda m: b"{\"schema\": ", "is not valid JSON"),
    "not-utf8": (lambda m: b"\xff\xfe{}", "is not valid JSON"),
    "not-an-object": (lambda m: b"[1, 2]", "is not a JSON object"),
    "another-schema": (_edit(lambda m: m.update(schema="tokeffc.manifest/9")), "manifest schema is"),
    "schema-tagged-but-empty": (lambda m: b'{"schema": "tokeffc.manifest/1"}', "'framework' is missing"),
    "missing-key": (_edit(lambda m: m.pop("tiers")), "'tiers' is missing"),
    "wrong-type": (_edit(lambda m: m["bundles"][0].update(tokens="many")), "'bundles[0].tokens' must be an integer"),
    "list-for-object": (_edit(lambda m: m.update(tiers=["minimal"])), "'tiers' must be an object"),
    "nested-too-deep": (lambda m: b'{"schema": "tokeffc.manifest/1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                        "is not valid JSON"),
    "meta-nested-too-deep": (_edit(lambda m: next(iter(m["commands"].values())).update(
        meta={"a": [[[[[[[[[[["deep"]]]]]]]]]]]})), "nests deeper than"),
    "tier-not-in-tiers": (_edit(lambda m: m["bundles"][0].update(tier="huge")), "names tier 'huge'"),
    "path-outside-the-release": (_edit(lambda m: m["files"].update({"../../etc/passwd": "0" * 64})),
                                 "not a plain path inside the release"),
    "bundle-sha-not-its-file": (_edit(lambda m: m["bundles"][0].update(sha256="0" * 64)),
                                "a sha256 or cache_key that 'files' does not"),
    "bundle-not-listed": (_edit(lambda m: m["bundles"][0].update(path="bundles/nowhere.md")),
                          "names 'bundles/nowhere.md', which 'files' does not list"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_bad_manifests_are_one_exit_3_line(files, tmp_path, case):
    change, match = MANIFEST_CASES[case]
    folder = write_folder(tmp_path / "r", {**files, MANIFEST: change(json.loads(files[MANIFEST]))})
    assert_refused(inspect(folder), str(folder / MANIFEST), match)


def test_a_tampered_index_shard_is_refused_when_read(folder, files):
    shard = folder / shard_of(files, "feature")
    shard.write_bytes(shard.read_bytes().replace(b'"tokens":', b'"tokens": ', 1))
    release = Release.open(folder)
    with pytest.raises(ReleaseError, match=f"'{shard_of(files, 'feature')}' does not match its sha256"):
        release.context("feature", tier="full")


def test_the_readme_runtime_example_runs_as_written(built):
    """Every line of README's Runtime API block, on the example's release (a real chunk id, a real tool call)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Runtime API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    written = re.search(r'Release\.open\("([^"]+)"\)', block)
    assert written and written.group(1) == "examples/forge/dist/forge-2.3.0.tokb"
    scope: dict = {}
    exec(block.replace(written.group(1), str(built[1])), scope)  # noqa: S102 - the README's own code
    assert scope["rel"].call_tool({"module": "api"}).get("is_error") is not True
