"""Root pytest configuration, loaded before any test module imports torch.

reclight/__init__.py sets OMP_WAIT_POLICY=PASSIVE for the same reason, but test modules may
import torch first; spinning OpenMP threads made steps 14x slower when tests (or DDP test
processes) share the two cores.
"""

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The MovieLens 100K folder (u.data, u1.base, ...) for the core's and every plugin's tests:
    ``$RECLIGHT_DATA/ml-100k`` or ``shared/data/ml-100k`` beside the repository (never copied
    here: its licence forbids redistribution); skipped when absent, failed when CI=true."""
    home = os.environ.get("RECLIGHT_DATA")
    folder = Path(home) / "ml-100k" if home else REPO.parent / "shared/data/ml-100k"
    if not (folder / "u.data").is_file():
        message = (f"MovieLens 100K not found at {folder}; set RECLIGHT_DATA to a folder "
                   "holding ml-100k/")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder
