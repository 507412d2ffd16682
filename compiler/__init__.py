"""tokeffc: a build-time static compiler for prompt frameworks.

This package root stays import-light on purpose: ``tokeffc.runtime`` must load
with only the standard library and zstandard.
"""

__version__ = "0.1.0"
