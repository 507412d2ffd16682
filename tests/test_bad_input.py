"""The bad-input matrix (issue 10): one generator per class of hostile or mistaken framework. Each case
runs the real command in a subprocess under a memory limit and a timeout, and asserts its exit code,
one `error:` line naming the file and line, no traceback, and an output folder left byte for byte.

Archive and manifest classes (bombs, symlinks, duplicates, trailing data, malformed manifests) are in
test_archive.py and test_runtime.py; YAML classes in test_yamlio.py; writing the pair in test_publish.py.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE, MINI_CONFIG, REPO, write_tree

MEMORY_LIMIT = 1 << 30  # 1 GiB of address space: a bomb that expands fails here, not on the machine
TIMEOUT = 60


def alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(9))}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def deep_includes(count: int) -> dict[str, str]:
    files = {"commands/c.md": '{% include "modules/m0.md" %}\n'}
    for i in range(count):
        nxt = f'{{% include "modules/m{i + 1}.md" %}}\n' if i + 1 < count else ""
        files[f"modules/m{i}.md"] = f"m{i}\n{nxt}"
    return files


# name: (files over the mini framework, expected exit, regex for the single error line, or None for exit 0)
CASES = {
    "front-matter alias bomb (a 392-byte command)": (
        {"commands/c.md": "---\n" + alias_bomb() + "---\nbody\n"}, 0, None),
    "tokeffc key with an alias bomb": (
        {"commands/c.md": "---\ntokeffc:\n  when: x\n" + alias_bomb().replace("a0:", "x0:") + "---\nbody\n"},
        3, r"commands/c.md:\d+: .*(expands|aliases|values)"),
    "recursive alias in front matter": (
        {"commands/c.md": "---\ntokeffc: &a {requires: [*a]}\n---\nbody\n"}, 3, r"commands/c.md:\d+: "),
    "config alias bomb": ({"tokeffc.yaml": MINI_CONFIG + alias_bomb()}, 3, r"tokeffc.yaml:\d+: "),
    "config duplicate key": ({"tokeffc.yaml": MINI_CONFIG + "name: again\n"}, 3, r"tokeffc.yaml:\d+: .*duplicate"),
    "config integer tier name and boolean budget": (
        {"tokeffc.yaml": "name: m\nversion: 1.0.0\ncore: [CORE.md]\ntiers: {1: {budget: true}}\n"},
        3, r"tokeffc.yaml:4: "),
    "template arithmetic on a tokeffc value": (
        {"commands/c.md": "x\n{% if tokeffc.tier * 200000000 %}\ny\n{% endif %}\n"}, 3,
        r"commands/c.md:2: tokeffc condition"),
    "template loop bomb that is not tokeffc's (kept as text)": (
        {"commands/c.md": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\n"
                          "{{ 9 ** (9 ** 9) }} {{ tier * 200000000 }}\n"}, 0, None),
    "include chain 600 deep": (deep_includes(600), 3, r"modules/m\d+.md:2: files embed files 65 levels deep"),
    "include cycle": ({"commands/c.md": '{% include "modules/a.md" %}\n',
                       "modules/a.md": '{% include "modules/b.md" %}\n',
                       "modules/b.md": '{% include "modules/a.md" %}\n'}, 3, r"dependency cycle"),
    "front matter never closed (a warning, kept as text)": ({"commands/c.md": "---\ntitle: x\nbody\n"}, 0, None),
    "a file name with a newline": ({"commands/a\nb.md": "text\n"}, 3, r"commands/a\\nb.md:1: id 'a\\nb'"),
    "NUL in a source": ({"commands/c.md": b"ok\nbin\x00ary\n"}, 3, r"commands/c.md:2: binary file"),
    "invalid UTF-8 in tokeffc.yaml": ({"tokeffc.yaml": MINI_CONFIG.encode() + b"# caf\xe9\n"}, 3, r"tokeffc.yaml:8: "),
    "NUL in tokeffc.yaml": ({"tokeffc.yaml": MINI_CONFIG.encode() + b"\n\n# \x00\n"}, 3, r"tokeffc.yaml:10: "),
    "a malformed local encoding file": (
        {"tokeffc.yaml": MINI_CONFIG + "encoding: enc/cl100k_base.tiktoken\nencoding_sha256: "
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n", "enc/cl100k_base.tiktoken": ""},
        3, r"tokeffc.yaml:8: "),
    "a reference that leaves the root": ({"commands/c.md": "@../../../etc/hostname.md\n"}, 3,
                                          r"commands/c.md:1: .*escapes the framework root"),
}


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOKEFFC_CACHE_DIR": str(cwd / ".cache-for-test")}
    return subprocess.run([sys.executable, "-m", "tokeffc.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=TIMEOUT, preexec_fn=limited)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def existing_release(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    assert run("build", str(EXAMPLE), "-o", str(out), "--no-cache").returncode == 0
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_located_line_bounded_and_touches_nothing(case, tmp_path, existing_release):
    files, code, pattern = CASES[case]
    defaults = {"tokeffc.yaml": MINI_CONFIG, "CORE.md": "# Core\n"}
    root = write_tree(tmp_path / "fw", {**defaults, **files})
    before = snapshot(existing_release)
    done = run("build", str(root), "-o", str(existing_release), "--no-cache")
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr[-500:]
    assert done.returncode == code, (done.returncode, done.stderr[-500:])
    if pattern is None:
        return
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) >= 1 and re.search(pattern, lines[0]), done.stderr[-500:]
    assert all("\n" not in line for line in lines)
    assert snapshot(existing_release) == before  # a failed build never touches an existing release


def test_the_front_matter_bomb_makes_no_huge_manifest(tmp_path):
    root = write_tree(tmp_path / "fw", {"tokeffc.yaml": MINI_CONFIG, "CORE.md": "# Core\n",
                                        "commands/c.md": "---\n" + alias_bomb() + "---\nbody\n"})
    done = run("build", str(root), "-o", str(tmp_path / "out"), "--no-cache")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "mini" / "1.0.0" / "manifest.json").stat().st_size < 64 << 10
