"""MovieLens 100K for the ALS tests, found as the core's tests find it (never copied here: its
licence forbids redistribution)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """``$RECLIGHT_DATA/ml-100k`` or ``shared/data/ml-100k`` beside the repository; skipped
    when absent, failed when CI=true."""
    home = os.environ.get("RECLIGHT_DATA")
    folder = Path(home) / "ml-100k" if home else REPO.parent / "shared/data/ml-100k"
    if not (folder / "u.data").is_file():
        message = (f"MovieLens 100K not found at {folder}; set RECLIGHT_DATA to a folder "
                   "holding ml-100k/")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder
