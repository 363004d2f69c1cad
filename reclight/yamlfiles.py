"""Reading a YAML file a user named on the command line (``--config``, ``--overrides``).

One place turns the two ways such a file goes wrong, missing or not YAML, into one-line
:class:`~reclight.errors.ConfigError` messages that name the file and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reclight.errors import ConfigError


def read_yaml(path: str | Path, what: str, example: str) -> Any:
    """The parsed contents of ``path`` (``{}`` for an empty file).

    ``what`` names the file in messages (e.g. "--overrides file") and ``example`` ends the
    message for a missing file with what to pass instead."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} '{path}' does not exist; {example}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} '{path}' is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                          f"at offset {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} '{path}' is not valid YAML "
                          f"({str(exc).splitlines()[0]})") from None
