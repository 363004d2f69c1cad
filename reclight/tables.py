"""Reading id tables and writing result tables for `predict` and `recommend`.

Raw ids stay strings end to end, exactly as the id maps store them. Outputs are written to a
temporary file and renamed, and an existing file is never replaced without ``overwrite``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reclight.data.readers import read_pairs
from reclight.data.schema import normalise_id
from reclight.errors import ConfigError
from reclight.files import check_output, write_atomic

__all__ = ["check_output", "parse_user_list", "read_pairs", "write_table"]


def write_table(frame: pd.DataFrame, path: str | Path, overwrite: bool) -> Path:
    """Write a CSV atomically (see :func:`reclight.files.write_atomic`)."""
    return write_atomic(path, lambda handle: frame.to_csv(handle, index=False), overwrite)


def parse_user_list(text: str) -> list[str]:
    """``--users 1,2,3`` as raw ids, normalised as training normalises them, each once."""
    users = list(dict.fromkeys(normalise_id(part) for part in text.split(",")
                               if normalise_id(part)))
    if not users:
        raise ConfigError(f"--users '{text}' names no user; pass raw ids like --users 1,2,3")
    return users
