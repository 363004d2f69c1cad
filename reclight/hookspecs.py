"""Pluggy markers and the hooks a reclight plugin may implement.

A plugin is a module named by an entry point in the group ``reclight``; it implements any of
the hooks below with ``@reclight.hookimpl``. The built-in models load through this same path.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("reclight")
hookimpl = pluggy.HookimplMarker("reclight")


@hookspec
def register_models(register: Any) -> None:
    """Register models: call ``register(name, target, aliases=(), description="")`` for each."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``reclight`` click group, e.g. ``@cli.command()``."""
