"""The CLI through click's CliRunner: exit codes, one-line errors, no tracebacks, dist untouched."""

import json
import re
import shutil

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, FIXTURES

from tokeffc.cli import main

BAD_INPUT = {
    "broken-yaml": r"broken-yaml/commands/cmd.md:2: invalid YAML front matter",
    "unknown-tier": r"unknown-tier/commands/cmd.md:3: unknown tier 'huge'",
    "missing-include": r"missing-include/commands/cmd.md:4: include 'modules/nowhere.md' not found",
    "include-cycle": r"include-cycle/modules/a.md:2: dependency cycle: modules/a.md:2 -> modules/b.md:2 -> "
                     r"modules/a.md",
    "root-escape": r"root-escape/commands/cmd.md:3: '../../../etc/hostname.md' escapes the framework root",
    "non-utf8": r"non-utf8/commands/cmd.md:3: not valid UTF-8",
    "huge-file": r"huge-file/commands/cmd.md:1: file is 2,007 bytes, over the 1,024 bytes limit",
    "sandbox-escape": r"sandbox-escape/commands/cmd.md:3: tokeffc condition .* uses something tokeffc does not "
                      r"evaluate",
    "bad-config": r"bad-config/tokeffc.yaml:4: tier 'minimal' needs a positive integer budget",
}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def existing_dist(tmp_path):
    out = tmp_path / "dist"
    assert run("build", EXAMPLE, "-o", out).exit_code == 0
    return out, {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("fixture", sorted(BAD_INPUT))
def test_bad_input_is_one_line_exit_3_and_dist_untouched(fixture, existing_dist):
    out, before = existing_dist
    result = run("build", FIXTURES / fixture, "-o", out)
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    assert re.search(BAD_INPUT[fixture], lines[0]), lines[0]
    if fixture != "bad-config":  # config problems are all listed, one line each
        assert len(lines) == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_file_over_the_default_4_mib_limit(tmp_path):
    shutil.copytree(FIXTURES / "huge-file", tmp_path / "fw")
    (tmp_path / "fw" / "tokeffc.yaml").write_text("name: huge\nversion: 1.0.0\ncore: [CORE.md]\n")
    (tmp_path / "fw" / "commands" / "cmd.md").write_bytes(b"word " * (1 << 20))
    result = run("check", tmp_path / "fw")
    assert result.exit_code == 3 and "over the 4.0 MiB limit" in result.stderr


def test_build_prints_the_table_and_writes(tmp_path):
    result = run("build", EXAMPLE, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "baseline" in result.stdout and "task" in result.stdout and "written to" in result.stdout
    assert (tmp_path / "out" / "forge-2.3.0.tokb").is_file()


def test_build_json_is_stable_and_complete(tmp_path):
    result = run("build", EXAMPLE, "-o", tmp_path / "out", "--json")
    report = json.loads(result.stdout)
    assert report["schema"] == "tokeffc.build-report/2" and report["status"] == "ok"
    assert {b["command"] for b in report["bundles"]} == {"task", "feature", "query", "swarm", "protocol", "meta"}
    again = json.loads(run("build", EXAMPLE, "-o", tmp_path / "out", "--json").stdout)
    assert again == report


def test_check_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("check", EXAMPLE)
    assert result.exit_code == 0 and not (tmp_path / "dist").exists()


def test_over_budget_exits_1_and_allow_over_records_it(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "fw")
    config = tmp_path / "fw" / "tokeffc.yaml"
    config.write_text(config.read_text().replace("minimal:  {budget: 3000}", "minimal:  {budget: 900}"))
    over = run("build", tmp_path / "fw", "-o", tmp_path / "out")
    assert over.exit_code == 1
    assert "over its budget of 900. What to cut:" in over.stdout
    assert "thinking/patterns (modules/thinking/patterns.md):" in over.stdout
    assert not (tmp_path / "out" / "forge").exists()
    assert run("check", tmp_path / "fw").exit_code == 1
    allowed = run("build", tmp_path / "fw", "-o", tmp_path / "out", "--allow-over", "--json")
    assert allowed.exit_code == 0
    manifest = json.loads((tmp_path / "out" / "forge" / "2.3.0" / "manifest.json").read_text())
    assert "over" in {b["status"] for b in manifest["bundles"]}


def test_usage_errors_exit_2():
    assert run("build", EXAMPLE, "--tier", "huge").exit_code == 2
    assert run("build", EXAMPLE, "--no-pass", "everything").exit_code == 2
    assert "did you mean 'task'" in run("check", EXAMPLE, "--command", "tsak").stderr


def test_inspect_verifies_and_lists(tmp_path):
    run("build", EXAMPLE, "-o", tmp_path)
    archive = tmp_path / "forge-2.3.0.tokb"
    result = run("inspect", archive)
    assert result.exit_code == 0 and "all sha256 verified" in result.stdout
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) - 40])
    broken = run("inspect", archive)
    assert broken.exit_code == 3 and "truncated" in broken.stderr and "Traceback" not in broken.output


def test_init_creates_a_framework_that_builds(tmp_path):
    target = tmp_path / "new-fw"
    assert run("init", target).exit_code == 0
    assert run("check", target).exit_code == 0
    again = run("init", target)
    assert again.exit_code == 3 and "already exists" in again.stderr


def test_release_version_flag(tmp_path):
    result = run("build", EXAMPLE, "-o", tmp_path, "--release-version", "2.4.0-rc.1")
    assert result.exit_code == 0 and (tmp_path / "forge-2.4.0-rc.1.tokb").is_file()
