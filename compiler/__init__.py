"""tokeffc: a build-time static compiler for prompt frameworks.

The public API is what ``__all__`` lists; each name is imported only when first used, so that
``import tokeffc`` (and ``tokeffc.runtime``, which needs only the standard library and zstandard)
stays light. Everything else is internal and may change between versions.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "BuildOptions": "tokeffc.build",          # what to build: config, preset, commands, tiers, passes, cache
    "build_cached": "tokeffc.build",          # build (and write) as the command line does, with the cache
    "compile_framework": "tokeffc.pipeline",  # everything but writing: the release as bytes, with its checks
    "build_release": "tokeffc.pipeline",      # compile and write a release folder and its .tokb
    "Release": "tokeffc.runtime",             # load a release at run time (standard library + zstandard)
    "Manifest": "tokeffc.manifest",           # the typed manifest.json
    "read_manifest": "tokeffc.manifest",
    "TokeffcError": "tokeffc.errors",         # every error a user can fix: .lines(), .exit_code
    "ReleaseError": "tokeffc.errors",
    "ExitCode": "tokeffc.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tokeffc' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
