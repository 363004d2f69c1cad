"""Reading id tables and writing result tables for `predict` and `recommend`.

Raw ids stay strings end to end, exactly as the id maps store them. Outputs are written to a
temporary file and renamed, and an existing file is never replaced without ``overwrite``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reclight.errors import ConfigError, DataError
from reclight.files import check_output, write_atomic

__all__ = ["check_output", "parse_user_list", "read_pairs", "write_table"]

USER_NAMES = {"user", "userid", "user_id", "users"}
ITEM_NAMES = {"item", "itemid", "item_id", "movieid", "movie_id", "items"}


def write_table(frame: pd.DataFrame, path: str | Path, overwrite: bool) -> Path:
    """Write a CSV atomically (see :func:`reclight.files.write_atomic`)."""
    return write_atomic(path, lambda handle: frame.to_csv(handle, index=False), overwrite)


def read_pairs(path: str | Path) -> pd.DataFrame:
    """(user, item) pairs from a CSV/TSV, with or without a header; extra columns are kept."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file '{path}' does not exist; pass a CSV of user,item pairs")
    if path.stat().st_size == 0:
        raise DataError(f"input file '{path}' is empty; it needs one user,item pair per line")
    try:
        frame = pd.read_csv(path, sep=None, engine="python", header=None, dtype=str,
                            skip_blank_lines=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read '{path}' as CSV ({str(exc).splitlines()[0]})") from None
    if frame.shape[1] < 2:
        raise DataError(f"'{path}' has {frame.shape[1]} column; it needs user and item columns")
    first = [str(v).strip().lower() for v in frame.iloc[0]]
    if first[0] in USER_NAMES and first[1] in ITEM_NAMES:
        names = ["user", "item"] + [str(v) for v in frame.iloc[0][2:]]
        frame = frame.iloc[1:].reset_index(drop=True)
    else:
        names = ["user", "item"] + [f"col{i}" for i in range(2, frame.shape[1])]
    frame.columns = names
    if len(frame) == 0:
        raise DataError(f"'{path}' has a header but no pairs")
    bad = frame[["user", "item"]].isna().any(axis=1)
    if bool(bad.any()):
        line = int(bad.idxmax()) + 1 + (1 if names[0] == "user" and first[0] in USER_NAMES else 0)
        raise DataError(f"'{path}' line {line}: missing user or item id")
    frame["user"] = frame["user"].str.strip()
    frame["item"] = frame["item"].str.strip()
    return frame


def parse_user_list(text: str) -> list[str]:
    users = [part.strip() for part in text.split(",") if part.strip()]
    if not users:
        raise ConfigError(f"--users '{text}' names no user; pass raw ids like --users 1,2,3")
    return users
