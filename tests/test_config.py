
import pytest

from tokeffc.config import load_config
from tokeffc.errors import ConfigError, TokeffcError

from conftest import EXAMPLE, write_tree


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
    assert any(":1: 'name' must match" in l for l in lines)
    assert any(":2: 'version' must be SemVer" in l for l in lines)
    assert any(":3: unknown key 'teirs'; did you mean 'tiers'?" in l for l in lines)
    assert any(":4: 'warn_at'" in l for l in lines)
    assert any(":6: unknown tier 'huge' in budgets.task" in l for l in lines)
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
    with pytest.raises(ConfigError, match="SemVer"):
        load_config(tmp_path, release_version="v2")


def test_tiers_must_grow(tmp_path):
    write_tree(tmp_path, {"tokeffc.yaml": "name: a\nversion: 1.0.0\ntiers: {small: {budget: 9}, big: {budget: 5}}\n"})
    with pytest.raises(ConfigError, match="smallest first"):
        load_config(tmp_path)
