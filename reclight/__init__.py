"""reclight: recommender models as plugins on PyTorch Lightning.

Importing the package stays cheap (no torch): heavy modules are imported where they are used.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads that spin while waiting made small tensor ops 20x slower whenever another
# process shared the cores (measured on 2 cores: 0.1 ms -> 2.3 ms per embedding step). A
# passive wait costs little when the machine is idle. It must be set before torch loads its
# OpenMP runtime, which is why it sits here; an explicit setting by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("reclight")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from reclight.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
