"""The plugin manager: loads entry points of the group ``reclight``.

``RECLIGHT_LOAD_PLUGINS`` (comma-separated entry-point or distribution names) restricts which
plugins load; set it to an empty string to load none. A plugin that fails to import is recorded
with its error and skipped, so one broken plugin never takes the others down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points


import pluggy

from reclight import hookspecs

GROUP = "reclight"
ENV_LOAD = "RECLIGHT_LOAD_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """Where a loaded plugin came from: its entry-point name and distribution."""

    name: str
    dist: str
    version: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported, and why."""

    name: str
    dist: str
    error: str


class PluginSet:
    """A pluggy manager plus what was loaded and what failed."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []

    def add(self, module: object, name: str, dist: str = "", version: str = "") -> None:
        """Register an already imported plugin object (used for entry points and in tests)."""
        self.manager.register(module, name=name)
        self.info[name] = PluginInfo(name=name, dist=dist or name, version=version)

    def load_entry_points(self, allowed: set[str] | None = None) -> None:
        """Import every entry point in the group, recording failures instead of raising."""
        for ep in entry_points(group=GROUP):
            dist = ep.dist.name if ep.dist is not None else ep.name
            version = ep.dist.version if ep.dist is not None else ""
            if allowed is not None and ep.name not in allowed and dist not in allowed:
                continue
            if self.manager.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:  # any import-time error of a third-party plugin
                self.failures.append(PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                continue
            self.add(module, ep.name, dist, version)


def allowed_from_env() -> set[str] | None:
    """The plugin names ``RECLIGHT_LOAD_PLUGINS`` allows, or None when it is unset."""
    raw = os.environ.get(ENV_LOAD)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


_DEFAULT: PluginSet | None = None


def get_plugins() -> PluginSet:
    """The process-wide plugin set, loaded from entry points on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        plugins = PluginSet()
        plugins.load_entry_points(allowed_from_env())
        _DEFAULT = plugins
    return _DEFAULT


def reset_plugins(plugins: PluginSet | None = None) -> None:
    """Replace (or forget) the process-wide plugin set; tests use this to install fakes."""
    global _DEFAULT
    _DEFAULT = plugins
    from reclight import registry

    registry.reset_registry()


