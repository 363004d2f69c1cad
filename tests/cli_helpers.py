"""Running the `reclight` command in-process, for the tests of its commands."""

from __future__ import annotations

import pytest

from reclight import cli


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``reclight ARGS`` through :func:`reclight.cli.main`: its exit status, stdout and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err
