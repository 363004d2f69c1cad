"""Typed errors raised by library code.

Library code raises these; only the CLI turns them into one-line messages and an exit code.
Every message names the bad value, the valid choices where there are some, and the fix.
"""

from __future__ import annotations


class RecLightError(Exception):
    """Base class: a problem the user can fix, reported as one line without a traceback."""


class DataError(RecLightError):
    """A ratings source, split or data option that cannot be used."""


class DataWarning(UserWarning):
    """Data that load but look wrong (ids spelled two ways); printed as one warning line."""


class UnknownModelError(RecLightError):
    """A model name that no installed plugin registers."""


class PluginConflictError(RecLightError):
    """Two plugins register the same model name or alias."""


class CheckpointError(RecLightError):
    """A checkpoint that is missing or was not written by reclight."""


class ConfigError(RecLightError):
    """A bad hyper-parameter, flag or output path."""


class PluginError(RecLightError):
    """A plugin that cannot be used as given: its model class fails to import or is no class,
    or its plugin name is already taken."""


class RunInterrupted(RecLightError):
    """A fit stopped by Ctrl-C or SIGTERM before it finished; the message says where the last
    checkpoint is and how to resume. ``exit_code`` is 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
