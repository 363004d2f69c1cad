"""Shared test fixtures.

MovieLens 100K may not be copied into the repository (GroupLens licence): tests read it from
``$RECLIGHT_DATA/ml-100k`` or from ``shared/data/ml-100k`` beside the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The MovieLens 100K folder (u.data, u1.base, ...); skipped (failed on CI) if absent."""
    home = os.environ.get("RECLIGHT_DATA")
    folder = Path(home) / "ml-100k" if home else REPO.parent / "shared/data/ml-100k"
    if not (folder / "u.data").is_file():
        message = (f"MovieLens 100K not found at {folder}; set RECLIGHT_DATA to a folder "
                   "holding ml-100k/")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture
def write(tmp_path: Path):
    """``write(name, text)`` creates ``tmp_path/name`` with ``text`` and returns its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def toy_registry() -> Iterator[None]:
    """The installed plugins plus the tests' toy plugin (tests/toy_plugin.py) as the process-wide
    plugin set, forgotten afterwards."""
    from reclight.plugins import PluginSet, reset_plugins

    from . import toy_plugin

    plugin_set = PluginSet()
    plugin_set.load_entry_points()
    plugin_set.add(toy_plugin, "toy", "reclight-toy-tests", "0.0")
    reset_plugins(plugin_set)
    yield
    reset_plugins(None)
