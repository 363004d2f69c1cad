"""The model registry: names and aliases → model specs, fed by the plugins' ``register_models``.

Targets are ``"module:Class"`` strings so that listing models never imports torch; a class is
imported only when a model is built (:meth:`ModelSpec.load`), and a class that fails to import
raises :class:`~reclight.errors.PluginError` naming the model, its plugin and the error.

Problems are recorded, never raised while building, so one bad plugin cannot stop unrelated
commands:

- a name or alias claimed more than once (by two plugins, or twice by one) goes into
  :attr:`Registry.conflicts` with every spec claiming it. It is in no usable spec: a model whose
  own name is claimed twice is left out of :attr:`Registry.specs` and :meth:`Registry.names`
  (its unique aliases stop working too, since they would reach a half-owned name), and a
  clashing alias is dropped from the usable specs' ``aliases``. :meth:`Registry.get` on any of
  these raises :class:`~reclight.errors.PluginConflictError` naming both claimants and the fix;
- a ``register_models`` hook that raises drops that plugin's models and goes into
  :attr:`Registry.failures`.

The registry reads a :class:`~reclight.plugins.PluginSet` and never the other way round;
:func:`get_registry` rebuilds when the process-wide plugin set is replaced or changes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Any

from reclight.errors import PluginConflictError, PluginError, UnknownModelError
from reclight.plugins import (ENV_SKIP, FAILED, LOADED, PluginRecord, PluginSet, call_hook,
                              describe_error, get_plugins)

CONFLICT = "conflict"  # plugin status: loaded, but some of its model names are claimed twice


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

    @property
    def source(self) -> str:
        """``plugin 'x' (reclight-x 1.0)``."""
        return PluginRecord(self.plugin, self.dist, self.version).label

    def load(self) -> type:
        """Import and return the model class; :class:`PluginError` (one line) if that fails."""
        if self._cls is not None:
            return self._cls
        module_name, colon, attr = self.target.partition(":")
        try:
            if not (module_name and colon and attr):
                raise ValueError("the target is not of the form 'module:Class'")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        # Whatever the plugin's module raises at import time is the plugin's bug, not ours:
        # report it in one line rather than a traceback through importlib.
        except Exception as exc:
            raise PluginError(f"model '{self.name}' from {self.source} failed to import "
                              f"{self.target}: {describe_error(exc)}; reinstall or fix the "
                              "plugin") from exc
        if not isinstance(obj, type):
            raise PluginError(f"model '{self.name}' from {self.source}: {self.target} is a "
                              f"{type(obj).__name__}, not a class; fix the plugin's register_models")
        return obj

    def as_dict(self) -> dict[str, Any]:
        """The ``reclight models --json`` row (``plugin`` is the distribution name)."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "plugin": self.dist,
            "version": self.version,
            "target": self.target,
        }


class Registry:
    """Every model the loaded plugins register, by name and alias, and the clashes between them.

    ``specs``: usable models by canonical name. ``conflicts``: every name or alias claimed more
    than once → the specs claiming it, in registration order. ``failures``: plugin name → why
    its ``register_models`` was skipped.
    """

    def __init__(self, plugins: PluginSet) -> None:
        self.plugins = plugins
        self.generation = plugins.generation
        self.failures: dict[str, str] = {}
        staged: list[ModelSpec] = []
        for impl in plugins.manager.hook.register_models.get_hookimpls():
            mine: list[ModelSpec] = []
            try:
                call_hook(impl, register=self._register_for(impl.plugin_name, mine))
            except Exception as exc:  # third-party code: record it, keep the others
                self.failures[impl.plugin_name] = (
                    f"failed in register_models, its models were skipped: {describe_error(exc)}")
                continue
            staged += mine
        self._resolve(staged)

    def _record(self, plugin_name: str) -> PluginRecord:
        return self.plugins.info.get(plugin_name) or PluginRecord(plugin_name, plugin_name)

    def _register_for(self, plugin_name: str, into: list[ModelSpec]) -> Any:
        record = self._record(plugin_name)

        def register(name: str, target: str | type, aliases: tuple[str, ...] | list[str] = (),
                     description: str = "") -> None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"model name must be a non-empty string, got {name!r}")
            if isinstance(aliases, str):  # aliases="svd" would otherwise become s, v, d
                aliases = (aliases,)
            own = tuple(a for a in dict.fromkeys(aliases) if a != name)
            cls = None
            if not isinstance(target, str):
                cls = target
                description = description or (target.__doc__ or "").strip().split("\n")[0]
                target = f"{target.__module__}:{target.__qualname__}"
            into.append(ModelSpec(name, target, own, description, plugin_name, record.dist,
                                  record.version, _cls=cls))

        return register

    def _resolve(self, staged: list[ModelSpec]) -> None:
        claims: dict[str, list[ModelSpec]] = {}
        for spec in staged:
            for key in (spec.name, *spec.aliases):
                claims.setdefault(key, []).append(spec)
        self.conflicts: dict[str, tuple[ModelSpec, ...]] = {
            key: tuple(specs) for key, specs in claims.items() if len(specs) > 1}
        self.specs: dict[str, ModelSpec] = {}
        self._keys: dict[str, ModelSpec] = {}  # every usable name and alias
        self._orphans: dict[str, str] = {}  # alias → its model's own, clashing, name
        for spec in staged:
            free = tuple(a for a in spec.aliases if a not in self.conflicts)
            if spec.name in self.conflicts:
                self._orphans.update((alias, spec.name) for alias in free)
                continue
            usable = replace(spec, aliases=free)
            self.specs[spec.name] = usable
            for key in (spec.name, *free):
                self._keys[key] = usable

    def names(self) -> list[str]:
        """The usable models' canonical names, sorted; clashing names are in ``conflicts``."""
        return sorted(self.specs)

    def get(self, name: str) -> ModelSpec:
        """The spec for a name or alias.

        Raises :class:`PluginConflictError` for a name claimed twice and
        :class:`UnknownModelError` (listing what is installed, and any installed plugin of
        that name that is broken or empty) for a name nobody registers.
        """
        if name in self._keys:
            return self._keys[name]
        if name in self.conflicts:
            raise PluginConflictError(self.conflict_message(name))
        if name in self._orphans:
            raise PluginConflictError(f"'{name}' is an alias of model '{self._orphans[name]}', "
                                      f"which is unusable: {self.conflict_message(self._orphans[name])}")
        raise UnknownModelError(self._unknown_message(name))

    def conflict_message(self, key: str) -> str:
        """One line: who claims ``key`` and how to resolve it."""
        specs = self.conflicts[key]
        kind = "model name" if any(s.name == key for s in specs) else "model alias"
        if len({s.plugin for s in specs}) == 1:
            return (f"{kind} '{key}' is registered {len(specs)} times by {specs[0].source}; "
                    "fix its register_models")
        claims = " and ".join(
            s.source + ("" if s.name == key else f" (an alias of its model '{s.name}')") for s in specs)
        return (f"{kind} '{key}' is claimed by {claims}, so it is not usable; uninstall one of "
                f"them or skip one with {ENV_SKIP}={specs[-1].dist}")

    def models_of(self, plugin_name: str) -> list[str]:
        """The usable models a plugin provides, sorted."""
        return sorted(n for n, s in self.specs.items() if s.plugin == plugin_name)

    def warnings(self) -> list[str]:
        """One line per registration failure and per clashing name."""
        out = [f"{self._record(p).label} {error}" for p, error in self.failures.items()]
        return out + [self.conflict_message(key) for key in self.conflicts]

    def plugin_rows(self) -> list[dict[str, Any]]:
        """Every plugin offered, as ``reclight plugins --json`` lists them.

        Keys: name, dist, version, status (loaded, empty, failed, clash, or conflict: loaded
        but some of its names are claimed twice), hooks, models (usable ones), error (None
        when there is nothing to say).
        """
        rows = []
        for record in self.plugins.records():
            status, errors = record.status, [record.error] if record.error else []
            if record.status == LOADED:
                clashed = sorted(k for k, specs in self.conflicts.items()
                                 if any(s.plugin == record.name for s in specs))
                if record.name in self.failures:
                    status, errors = FAILED, [self.failures[record.name], *errors]
                elif clashed:
                    status = CONFLICT
                    errors.append("claims names that another registration claims too, so they are "
                                  f"unusable: {', '.join(clashed)} (see `reclight models`)")
            rows.append({"name": record.name, "dist": record.dist, "version": record.version,
                         "status": status, "hooks": list(record.hooks),
                         "models": self.models_of(record.name), "error": "; ".join(errors) or None})
        return rows

    def _unknown_message(self, name: str) -> str:
        installed = ", ".join(self.names()) or "none"
        head = f"unknown model '{name}'; installed models: {installed}"
        hints = []
        for record in self.plugins.find(name):
            if record.name in self.failures:
                hints.append(f"{record.label} {self.failures[record.name]}")
            elif record.status == LOADED:
                provides = self.models_of(record.name)
                hints.append(f"{record.label} is installed but registers "
                             + (f"only {', '.join(provides)}" if provides else "no models"))
            else:
                hints.append(f"{record.label} {record.error}")
        if hints:
            return f"{head}; {'; '.join(hints)} (see `reclight plugins`)"
        # A plugin that failed may be the one that registers this name: we cannot know which
        # models it would have registered, so name every failed plugin with its error.
        broken = [f"{r.label} {self.failures.get(r.name, r.error)}" for r in self.plugins.records()
                  if r.name in self.failures or r.status == FAILED]
        if broken:
            return (f"{head}; it may come from a plugin that failed: {'; '.join(broken)} "
                    "(see `reclight plugins`)")
        return (f"{head} (see `reclight models`; install a plugin such as reclight-{name} to "
                "add it)")


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry over :func:`reclight.plugins.get_plugins`, rebuilt when that
    plugin set is replaced (``reset_plugins``) or changed (``add``/``remove``/loading)."""
    global _REGISTRY
    plugins = get_plugins()
    if _REGISTRY is None or _REGISTRY.plugins is not plugins or \
            _REGISTRY.generation != plugins.generation:
        _REGISTRY = Registry(plugins)
    return _REGISTRY


def reset_registry() -> None:
    """Forget the process-wide registry; the next :func:`get_registry` rebuilds it."""
    global _REGISTRY
    _REGISTRY = None
