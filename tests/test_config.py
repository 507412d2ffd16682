import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, write_tree

from tokeffc.cli import main
from tokeffc.config import load_config
from tokeffc.errors import ConfigError, TokeffcError, UsageError


def test_example_config_loads_with_tiers_in_order():
    config = load_config(EXAMPLE)
    assert config.name == "forge"
    assert config.tier_names == ("minimal", "standard", "full")
    assert [t.compress for t in config.tiers] == [True, True, False]
    assert config.budget_for("swarm", "standard") == 7000
    assert config.budget_for("task", "standard") == 6000
    assert config.budget_for("task", "standard", override=100) == 100


def test_every_problem_is_reported_at_once_with_lines(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": """\
        name: Bad Name
        version: one
        teirs: {}
        warn_at: 3
        budgets:
          task: {minimal: 10, huge: 20}
        """})
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    lines = caught.value.lines()
    assert any(":1: 'name' must match" in line for line in lines)
    assert any(":2: 'version' must be SemVer" in line for line in lines)
    assert any(":3: unknown key 'teirs'; did you mean 'tiers'?" in line for line in lines)
    assert any(":4: 'warn_at'" in line for line in lines)
    assert any(":6: unknown tier 'huge' in budgets.task" in line for line in lines)
    assert len(lines) == 5


def test_broken_yaml_names_the_line(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": "name: a\nversion: 1.0.0\ntiers: [unclosed\n"})
    with pytest.raises(TokeffcError, match=r"tokeffc.yaml:\d+: invalid YAML"):
        load_config(tmp_path)


def test_missing_config_says_how_to_start(tmp_path):
    with pytest.raises(TokeffcError, match="tokeffc init"):
        load_config(tmp_path)


def test_release_version_overrides_and_is_checked(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": "name: a\nversion: 1.0.0\n"})
    assert load_config(tmp_path, release_version="2.0.0-rc.1").version == "2.0.0-rc.1"
    with pytest.raises(UsageError, match="--release-version 'v2' is not SemVer"):  # the flag's, not the file's
        load_config(tmp_path, release_version="v2")


def test_tiers_must_grow(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": "name: a\nversion: 1.0.0\ntiers: {small: {budget: 9}, big: {budget: 5}}\n"})
    with pytest.raises(ConfigError, match="smallest first"):
        load_config(tmp_path)


# --- tokeffc.yaml read through the one bounded YAML reader -----------------------------------------

GOOD = "name: a\nversion: 1.0.0\n"


def config_lines(root) -> list[str]:
    with pytest.raises(TokeffcError) as caught:
        load_config(root)
    return [line.replace(str(root) + "/", "") for line in caught.value.lines()]


def test_duplicate_keys_are_refused_at_the_second(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": GOOD + "tiers:\n  small: {budget: 5}\n  small: {budget: 9}\nname: b\n"})
    assert config_lines(tmp_path) == [
        "tokeffc.yaml:5: duplicate key 'small' in YAML (first on line 4); keep one: keys are unique",
        "tokeffc.yaml:6: duplicate key 'name' in YAML (first on line 1); keep one: keys are unique",
    ]


def test_tier_names_are_text_matching_the_name_pattern(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": GOOD + "tiers:\n  1: {budget: 5}\n  Big One: {budget: 9}\n  3: 12\n"})
    assert config_lines(tmp_path) == [
        "tokeffc.yaml:5: tier name 'Big One' must match [a-z0-9][a-z0-9-]*; e.g. minimal"]
    write_tree(tmp_path, {"tokeffc.yaml": GOOD + "tiers:\n  1: {budget: 5}\n  3: 12\n"})
    assert load_config(tmp_path).tier_names == ("1", "3")  # a key is the text written: 1 is "1"


def test_booleans_are_not_budgets(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": GOOD + "tiers:\n  minimal: {budget: true}\n  standard: true\n"
                          "  full: {budget: 9}\nbudgets:\n  task: {full: true}\nmax_file_bytes: yes\n"})
    assert config_lines(tmp_path) == [
        "tokeffc.yaml:4: tier 'minimal' needs a positive integer budget; e.g. {budget: 20000}",
        "tokeffc.yaml:5: tier 'standard' needs a positive integer budget; e.g. {budget: 20000}",
        "tokeffc.yaml:8: budgets.task.full must be a positive integer",
        "tokeffc.yaml:9: 'max_file_bytes' must be a positive integer; default is 4194304",
    ]


def test_a_nul_or_bad_utf8_is_reported_at_its_line(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": (GOOD + "core: [A.md]\nexclude: [x\0y]\n").encode()})
    assert config_lines(tmp_path) == [
        "tokeffc.yaml:4: YAML holds the character U+0000, which YAML does not allow; remove it, or write it escaped"]
    write_tree(tmp_path, {"tokeffc.yaml": GOOD.encode() + b"core: [\xe9.md]\n"})
    assert config_lines(tmp_path) == ["tokeffc.yaml:3: not UTF-8 (byte 30 of the file); save the file as UTF-8"]


def test_a_config_that_is_not_a_mapping_or_far_too_large(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": "# settings\n- name: a\n"})
    assert config_lines(tmp_path) == [
        "tokeffc.yaml:2: the config must be a mapping of keys; see README, 'tokeffc.yaml'"]
    write_tree(tmp_path, {"tokeffc.yaml": GOOD + "# " + "x" * (1 << 20) + "\n"})
    assert config_lines(tmp_path)[0].startswith("tokeffc.yaml:1: larger than 1048576 bytes")


def test_aliases_and_merges_still_work_in_the_config(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": GOOD + "tiers:\n  minimal: &small {budget: 100, compress: true}\n"
                          "  standard: {<<: *small, budget: 200}\n  full: {budget: 300}\n"})
    assert [(t.name, t.budget, t.compress) for t in load_config(tmp_path).tiers] == [
        ("minimal", 100, True), ("standard", 200, True), ("full", 300, False)]


def laughs(levels: int) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


CHECK_PROBLEMS = {
    "duplicate key": (GOOD + "core: [A.md]\ncore: [B.md]\n",
                      ["tokeffc.yaml:4: duplicate key 'core' in YAML (first on line 3)"]),
    "tier name": (GOOD + "tiers: {Minimal: 5, 2: 10}\n",
                  ["tokeffc.yaml:3: tier name 'Minimal' must match [a-z0-9][a-z0-9-]*"]),
    "boolean budget": (GOOD + "tiers:\n  minimal: 5\n  full: {budget: true}\nbudgets:\n  task: {minimal: on}\n",
                       ["tokeffc.yaml:5: tier 'full' needs a positive integer budget",
                        "tokeffc.yaml:7: budgets.task.minimal must be a positive integer"]),
    "alias bomb": ("name: a\nversion: 1.0.0\n" + laughs(9),
                   ["tokeffc.yaml:7: YAML holds more than 100000 values"]),
    "recursive alias": (GOOD + "core: &c [A.md, *c]\n",
                        ["tokeffc.yaml:3: YAML: alias '*c' repeats a node inside itself"]),
    "deep": (GOOD + "exclude: " + "[" * 100 + "]" * 100 + "\n", ["tokeffc.yaml:3: YAML nests deeper than 64 levels"]),
    "list key": (GOOD + "? [a, b]\n: 1\n", ["tokeffc.yaml:3: YAML: a key must be a single value"]),
    "tag": (GOOD + "warn_at: !!python/name:os.system 0.5\n", ["tokeffc.yaml:3: YAML: unsupported tag"]),
    "nul": (GOOD + "\n\ncore: [A\0.md]\n", ["tokeffc.yaml:5: YAML holds the character U+0000"]),
    "syntax": (GOOD + "tiers: {minimal: 5\n\n", ["tokeffc.yaml:3: invalid YAML: did not find expected ',' or '}'"]),
    "several": ("name: Bad Name\nversion: 1.0.0\ntiers: {minimal: true, full: 9}\nwarn_at: 2\n",
                ["tokeffc.yaml:1: 'name' must match", "tokeffc.yaml:3: tier 'minimal' needs a positive integer budget",
                 "tokeffc.yaml:4: 'warn_at' must be a share between 0 and 1"]),
}


@pytest.mark.parametrize("problem", sorted(CHECK_PROBLEMS))
def test_check_gives_exit_3_and_one_located_line_per_problem(mini, problem):
    config, expected = CHECK_PROBLEMS[problem]
    root = mini({}, config=config)
    result = CliRunner().invoke(main, ["check", str(root)])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.output and len(lines) == len(expected), lines
    for line, start in zip(lines, expected):
        assert line.startswith(f"error: {root}/{start}"), line


def test_a_release_version_from_the_command_line_is_blamed_on_the_flag():
    from click.testing import CliRunner
    from conftest import EXAMPLE

    from tokeffc.cli import main
    done = CliRunner().invoke(main, ["check", str(EXAMPLE), "--release-version", "1.0"])
    assert done.exit_code == 2
    assert done.stderr == "error: --release-version '1.0' is not SemVer; give three numbers: 1.4.0\n"
