"""The wheel carries the templates the emitter and `tokeffc init` need."""

import shutil
import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_contains_templates(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the work tree
    for name in ("compiler", "templates"):
        shutil.copytree(REPO / name, source / name)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, source / name)
    # No isolation: the build backend comes from the test extras, so nothing is downloaded.
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(source)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("tokeffc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("tokeffc/runtime.py", "tokeffc/templates/__init__.py", "tokeffc/templates/index.md.j2",
                   "tokeffc/templates/starter/tokeffc.yaml", "tokeffc/templates/starter/modules/review/style.md"):
        assert needed in names
