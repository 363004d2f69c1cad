"""Torch-free toy plugins for the loader's tests: working, clashing, broken and empty ones.

Fake entry points name these objects (``tests.toy_plugins_extra:alpha``), or tests add them
in-process with ``PluginSet.add``. Model targets are strings into this module, so nothing here
imports torch and ``reclight plugins`` can be checked for staying torch-free.
"""

from __future__ import annotations

from typing import Any

import click

from reclight import hookimpl

HERE = __name__


class AlphaModel:
    """Toy alpha: a plain class, enough for ``ModelSpec.load``."""


class BetaModel:
    """Toy beta."""


NOT_A_CLASS = 42


class Models:
    """A plugin registering ``(name, target, aliases)`` triples; a target without ``:`` means
    a class of this module."""

    def __init__(self, *models: tuple[str, str, tuple[str, ...]]) -> None:
        self.models = models

    @hookimpl
    def register_models(self, register: Any) -> None:
        for name, target, aliases in self.models:
            target = target if ":" in target else f"{HERE}:{target}"
            register(name, target, aliases=aliases, description=f"toy {name}")


class Unmarked:
    """The classic mistake: a function named like a hook, without ``@reclight.hookimpl``."""

    def register_models(self, register: Any) -> None:
        register("unmarked", f"{HERE}:AlphaModel")


class Misnamed:
    """Marked, but ``register_model`` is no hook (the spec is ``register_models``)."""

    @hookimpl
    def register_model(self, register: Any) -> None:
        register("misnamed", f"{HERE}:AlphaModel")


class Nothing:
    """Implements nothing at all, as when an entry point names the wrong module."""


class MisnamedBesideAHook(Models):
    """A working ``register_models`` plus a misspelt ``register_comands``."""

    @hookimpl
    def register_comands(self, cli: Any) -> None:
        """Never called: no hook has this name."""


class RaisingModels:
    """``register_models`` that raises."""

    @hookimpl
    def register_models(self, register: Any) -> None:
        register("never-kept", f"{HERE}:AlphaModel")
        raise RuntimeError("boom in register_models")


class WrongArguments:
    """A hook whose argument is not the hookspec's; pluggy refuses to register it."""

    @hookimpl
    def register_models(self, reg: Any) -> None:
        """Never called."""


class Commands:
    """``register_commands`` adding ``reclight load-model NAME``, which builds a model's class
    the way fit/test do, so the CLI's handling of registry errors is tested without them."""

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command(name="load-model")
        @click.argument("name")
        def load_model(name: str) -> None:
            from reclight.registry import get_registry

            cls = get_registry().get(name).load()
            click.echo(f"loaded {cls.__name__}")


class RaisingCommands:
    """``register_commands`` that raises."""

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        raise ValueError("boom in register_commands")


# Instances for entry points (an entry point loads an attribute, and pluggy registers objects).
alpha = Models(("alpha", "AlphaModel", ("a1",)))
alpha_again = Models(("alpha", "BetaModel", ()))  # another distribution's idea of `alpha`
beta = Models(("beta", "BetaModel", ()))
unmarked = Unmarked()
misnamed = Misnamed()
nothing = Nothing()
raising_models = RaisingModels()
wrong_arguments = WrongArguments()
commands = Commands()
