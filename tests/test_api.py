"""The declared public API: every name resolves, and importing the package stays light."""

import subprocess
import sys

from conftest import REPO

import tokeffc


def test_every_public_name_resolves():
    for name in tokeffc.__all__:
        assert getattr(tokeffc, name) is not None, name


def test_importing_the_package_imports_none_of_the_compiler():
    code = ("import sys, tokeffc; heavy = ('jinja2', 'networkx', 'tiktoken', 'rich', 'yaml', 'click'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
