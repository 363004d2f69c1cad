"""Writing files so that a crash never leaves half of one, and nothing is replaced unasked.

:func:`write_atomic` writes to a temporary file in the destination's folder, flushes it to
disk and renames it over the destination (``os.replace`` is atomic on POSIX and Windows), so a
reader sees the old file or the new one, never a torn one. :func:`check_output` is the one
place that decides whether an output path may be written: an existing file only with
``overwrite``, a folder never.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from reclight.errors import ConfigError


def check_output(path: str | Path, overwrite: bool, flag: str = "--overwrite") -> Path:
    """``path`` if reclight may write it: refuse a folder, an existing file without
    ``overwrite`` (``flag`` names the option that allows it) and a missing parent folder."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"output path '{path}' is a folder; pass a file path such as "
                          f"'{path / 'out.csv'}'")
    if path.exists() and not overwrite:
        raise ConfigError(f"output file '{path}' already exists; pass {flag} to replace it "
                          "or choose another output path")
    if path.parent and not path.parent.exists():
        raise ConfigError(f"output folder '{path.parent}' does not exist; create it first")
    return path


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: object) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path`` atomically,
    on an exception it is removed and ``path`` is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:  # type: ignore[call-overload]
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | Path, data: str | bytes | Callable[[IO], object],
                 overwrite: bool = True, flag: str = "--overwrite") -> Path:
    """Write ``data`` (text, bytes, or a function writing to an open file) to ``path``
    atomically. With ``overwrite=False`` an existing file is refused (:func:`check_output`)."""
    path = check_output(path, overwrite, flag)
    if callable(data):
        with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
            data(handle)
    elif isinstance(data, bytes):
        with atomic_open(path, "wb") as handle:
            handle.write(data)
    else:
        with atomic_open(path, "w", encoding="utf-8") as handle:
            handle.write(data)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
