"""An offline `--data ml-100k` fails in one line and leaves no cache folder behind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reclight.data import fetch
from reclight.data.sources import resolve_source
from reclight.errors import DataError


def test_offline_builtin_leaves_no_empty_cache_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RECLIGHT_DATA", raising=False)
    # Port 9 (discard) on localhost refuses connections: the same failure as being offline.
    monkeypatch.setitem(fetch.DOWNLOADS, "ml-100k",
                        replace(fetch.DOWNLOADS["ml-100k"], url="http://127.0.0.1:9/ml-100k.zip"))
    with pytest.raises(DataError, match="cannot download ml-100k"):
        resolve_source("ml-100k")
    assert not (tmp_path / "cache").exists()
