"""The model registry: names and aliases → model classes, fed by the plugins' hooks.

Targets are ``"module:Class"`` strings so that listing models never imports torch; a class is
imported only when a model is actually built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from reclight.errors import PluginConflictError, UnknownModelError
from reclight.plugins import PluginSet, get_plugins


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its name, where its class lives, and which plugin provides it."""

    name: str
    target: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    plugin: str = ""
    dist: str = ""
    version: str = ""
    _cls: Any = field(default=None, compare=False, repr=False)

    def load(self) -> type:
        """Import and return the model class."""
        if self._cls is not None:
            return self._cls
        module_name, _, attr = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "plugin": self.dist,
            "version": self.version,
            "target": self.target,
        }


class Registry:
    """Every model the loaded plugins register, by name and alias."""

    def __init__(self, plugins: PluginSet) -> None:
        self.plugins = plugins
        self.specs: dict[str, ModelSpec] = {}
        self._owner: dict[str, str] = {}
        for impl in plugins.manager.hook.register_models.get_hookimpls():
            impl.function(register=self._register_for(impl.plugin_name))

    def _register_for(self, plugin_name: str) -> Any:
        info = self.plugins.info.get(plugin_name)

        def register(name: str, target: str | type, aliases: tuple[str, ...] | list[str] = (),
                     description: str = "") -> None:
            if isinstance(target, str):
                spec = ModelSpec(name, target, tuple(aliases), description, plugin_name,
                                 info.dist if info else plugin_name, info.version if info else "")
            else:
                spec = ModelSpec(name, f"{target.__module__}:{target.__qualname__}", tuple(aliases),
                                 description or (target.__doc__ or "").strip().split("\n")[0],
                                 plugin_name, info.dist if info else plugin_name,
                                 info.version if info else "", _cls=target)
            for key in (name, *spec.aliases):
                if key in self._owner:
                    other = self._owner[key]
                    raise PluginConflictError(
                        f"model name '{key}' is registered twice: by plugin '{other}' "
                        f"({self.plugins.info[other].dist if other in self.plugins.info else other}) "
                        f"and by plugin '{plugin_name}' ({spec.dist}); uninstall one of them or "
                        f"restrict loading with RECLIGHT_LOAD_PLUGINS")
                self._owner[key] = plugin_name
            self.specs[name] = spec

        return register

    def names(self) -> list[str]:
        return sorted(self.specs)

    def get(self, name: str) -> ModelSpec:
        """The spec for a name or alias; UnknownModelError lists what is installed."""
        if name in self.specs:
            return self.specs[name]
        for spec in self.specs.values():
            if name in spec.aliases:
                return spec
        installed = ", ".join(self.names()) or "none"
        raise UnknownModelError(
            f"unknown model '{name}'; installed models: {installed} "
            f"(see `reclight models`; install a plugin such as reclight-{name} to add it)")


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry over the loaded plugins."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry(get_plugins())
    return _REGISTRY


def reset_registry() -> None:
    global _REGISTRY
    _REGISTRY = None
