"""Golden files: the example's release, byte for byte. Refresh with ``pytest --update-golden``."""

from pathlib import Path

from conftest import EXAMPLE

from tokeffc.pipeline import compile_framework

GOLDEN = Path(__file__).resolve().parent / "golden" / "forge"


def test_example_release_matches_golden_files(update_golden):
    files = dict(compile_framework(EXAMPLE).release.files)
    if update_golden:
        for old in GOLDEN.rglob("*"):
            if old.is_file():
                old.unlink()
        for path, data in files.items():
            (GOLDEN / path).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / path).write_bytes(data)
    golden = {str(p.relative_to(GOLDEN)): p.read_bytes() for p in GOLDEN.rglob("*") if p.is_file()}
    assert sorted(golden) == sorted(files), "files differ: run pytest --update-golden and review the diff"
    for path, data in files.items():
        assert golden[path] == data, f"{path} differs: run pytest --update-golden and review the diff"
