"""Pluggy markers and the hooks a reclight plugin may implement.

A plugin is a module named by an entry point in the group ``reclight``; it implements any of
the hooks below with ``@reclight.hookimpl``. The built-in models load through this same path.
A function named like a hook but lacking the decorator is no hook: a plugin with nothing else
is reported as empty, naming that function (see :mod:`reclight.plugins`). Every hook here needs
a ``test_hook_<name>`` test and a README entry; ``tests/test_plugins.py`` checks both.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("reclight")
hookimpl = pluggy.HookimplMarker("reclight")


@hookspec
def register_models(register: Any) -> None:
    """Register models: call ``register(name, target, aliases=(), description="")`` for each.

    ``target`` is ``"module:Class"``, imported only when the model is built so that listing
    models never imports torch (a class object works too). A name or alias that another plugin
    also registers becomes unusable, reported naming both; if this hook raises, the plugin's
    models are skipped with a warning.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``reclight`` click group, e.g. ``@cli.command()``.

    Called before every command; if this hook raises, only this plugin's commands are missing,
    with a warning.
    """
