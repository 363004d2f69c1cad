"""reclight: recommender models as plugins on PyTorch Lightning.

Importing the package stays cheap (no torch): heavy modules are imported where they are used.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reclight")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from reclight.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
