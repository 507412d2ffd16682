import os

import pytest

from tokeffc.config import load_config
from tokeffc.errors import TokeffcError
from tokeffc.sources import discover_sources, id_from_pattern


def test_ids_come_from_the_glob_root():
    assert id_from_pattern("modules/quality/gates.md", "modules/**/*.md") == "quality/gates"
    assert id_from_pattern("commands/sc/task.md", "commands/**/*.md") == "sc/task"
    assert id_from_pattern("lib/x.md", "**/*.md") == "lib/x"


def test_walk_is_sorted_core_first_and_skips_hidden(mini):
    root = mini({"commands/b.md": "b\n", "commands/a.md": "a\n", "modules/z.md": "z\n",
                 "modules/.drafts/x.md": "x\n"})
    found = discover_sources(load_config(root))
    assert [s.path for s in found] == ["CORE.md", "commands/a.md", "commands/b.md", "modules/z.md"]
    assert [s.kind for s in found] == ["core", "command", "command", "module"]


def test_bom_is_stripped(mini):
    root = mini({"commands/a.md": "\ufeff# A\n".encode("utf-8")})
    (source,) = [s for s in discover_sources(load_config(root)) if s.kind == "command"]
    assert source.text == "# A\n"


@pytest.mark.parametrize("content, message", [
    (b"ok\n\xff\xfe bad\n", r"commands/a.md:2: not valid UTF-8"),
    (b"ok\nbin\x00ary\n", r"commands/a.md:2: binary file"),
])
def test_bad_bytes_name_file_and_line(mini, content, message):
    root = mini({"commands/a.md": content})
    with pytest.raises(TokeffcError, match=message):
        discover_sources(load_config(root))


def test_huge_file_is_refused(mini):
    root = mini({"commands/a.md": "x" * 100}, config="name: m\nversion: 1.0.0\ncore: [CORE.md]\nmax_file_bytes: 50\n")
    with pytest.raises(TokeffcError, match=r"commands/a.md:1: file is .* over the .* limit"):
        discover_sources(load_config(root))


def test_symlink_leaving_the_root_is_refused(mini, tmp_path):
    outside = tmp_path / "secret.md"
    outside.write_text("secret\n")
    root = mini({})
    (root / "modules").mkdir()
    os.symlink(outside, root / "modules" / "leak.md")
    with pytest.raises(TokeffcError, match="resolves outside the framework root"):
        discover_sources(load_config(root))


def test_missing_core_file_points_at_config(mini):
    root = mini({}, config="name: m\nversion: 1.0.0\ncore: [NOPE.md]\n")
    with pytest.raises(TokeffcError, match=r"tokeffc.yaml:3: 'NOPE.md' matches no file"):
        discover_sources(load_config(root))
