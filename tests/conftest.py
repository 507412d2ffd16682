"""Shared fixtures: mini frameworks written on the fly, the bundled example, golden updates."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tokeffc.tokens import TokenCounter, resolve_encoding

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "forge"
CORPORA = Path(os.environ.get("TOKEFFC_CORPORA") or REPO.parent / "shared" / "corpora")  # third-party frameworks
FIXTURES = Path(__file__).resolve().parent / "fixtures"

MINI_CONFIG = """\
name: mini
version: 1.0.0
core: [CORE.md]
tiers:
  minimal: {budget: 1000}
  standard: {budget: 2000}
  full: {budget: 4000}
"""


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden from the current output.")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` (path -> text, dedented; or bytes as they are) under ``root``."""
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(textwrap.dedent(content), encoding="utf-8")
    return root


@pytest.fixture
def mini(tmp_path):
    """A factory for small frameworks: ``mini({"commands/a.md": "..."})`` returns the root."""

    def make(files: dict[str, str | bytes], config: str = MINI_CONFIG) -> Path:
        root = tmp_path / "fw"
        defaults = {"tokeffc.yaml": config, "CORE.md": "# Core\n\nBe precise.\n"}
        return write_tree(root, {**defaults, **files})

    return make


@pytest.fixture(scope="session")
def encoding():
    return resolve_encoding("cl100k_base", None, REPO)


@pytest.fixture
def counter(encoding) -> TokenCounter:
    return TokenCounter.of(encoding)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every CLI run in the tests uses a cache of the test session's own, never the user's."""
    import os

    os.environ["TOKEFFC_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
