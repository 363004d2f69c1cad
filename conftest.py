"""Root pytest configuration, loaded before any test module imports torch.

reclight/__init__.py sets OMP_WAIT_POLICY=PASSIVE for the same reason, but test modules may
import torch first; spinning OpenMP threads made steps 14x slower when tests (or DDP test
processes) share the two cores.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
