"""Shared test fixtures.

MovieLens 100K may not be copied into the repository (GroupLens licence): tests read it from
``$RECLIGHT_DATA/ml-100k`` or from ``shared/data/ml-100k`` beside the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest



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
