"""What a reclight command prints while it runs, besides its results.

- :func:`warn` prints one ``reclight: warning: ...`` line on stderr; :func:`show_warning`
  (installed by the ``reclight`` command as :func:`warnings.showwarning`) prints every Python
  warning the same way, one line without a source path or code line, naming the library that
  raised it when that is not reclight, and each distinct message once.
- :func:`lightning_noise` keeps Lightning's start-up chatter (the "GPU available" and "TPU
  available" lines, "Seed set to", the tips advertising its cloud products) off the terminal
  unless ``--verbose`` asks for it; Lightning's own warnings still arrive, as warnings.

Imports neither torch nor Lightning, so the listing commands stay fast; the progress lines for
logs are :class:`reclight.progress.EpochLines`.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

# The loggers Lightning's rank_zero_info and seed_everything write to.
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning",
                     "lightning_fabric")
_shown: set[str] = set()


def warn(message: str) -> None:
    """Print ``reclight: warning: message`` on stderr (one line)."""
    print(f"reclight: warning: {' '.join(message.split())}", file=sys.stderr)


def _origin(filename: str) -> str:
    """The top-level package a warning came from (``lightning``, ``torch``), or ''."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            rest = parts[parts.index(marker) + 1:]
            return rest[0].removesuffix(".py") if rest else ""
    return "reclight" if "reclight" in parts else ""


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """A :func:`warnings.showwarning` that prints one ``reclight: warning:`` line."""
    text = " ".join(str(message).split())
    origin = _origin(filename)
    if origin and origin != "reclight":
        text = f"{text} ({origin})"
    if text in _shown:
        return
    _shown.add(text)
    print(f"reclight: warning: {text}", file=file or sys.stderr)


@contextmanager
def lightning_noise(verbose: bool) -> Iterator[None]:
    """Lightning's info lines on (verbose) or off (the default) for the block; restored after."""
    import lightning.pytorch  # noqa: F401  (its import sets its loggers' level to INFO)

    saved = {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS}
    level = logging.INFO if verbose else logging.WARNING
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, old in saved.items():
            logging.getLogger(name).setLevel(old)


def wants_verbose(args: list[str]) -> bool:
    """Whether ``--verbose`` is among the flags (read before they are parsed, since Lightning
    speaks while they are)."""
    verbose = False
    for arg in args:
        if arg == "--verbose" or arg.lower() in ("--verbose=true", "--verbose=yes"):
            verbose = True
        elif arg == "--no_verbose" or arg.lower() in ("--verbose=false", "--verbose=no"):
            verbose = False
    return verbose


def stdout_is_terminal() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())
