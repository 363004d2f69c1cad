"""The plugin set: loads the entry points of the group ``reclight`` and records what went wrong.

``RECLIGHT_LOAD_PLUGINS`` (comma-separated entry-point or distribution names) restricts which
plugins load; an empty string loads none. ``RECLIGHT_SKIP_PLUGINS`` (same syntax) excludes
plugins, which also resolves a clash between two distributions. Problems never raise here: a
plugin that fails to import, two distributions using one entry-point name (neither loads), a
plugin that implements no hook (usually a missing ``@reclight.hookimpl``), a ``register_commands``
that raises, and a setting naming no installed plugin are each kept as a :class:`PluginRecord`
and one line in :attr:`PluginSet.warnings`, so one broken plugin never takes the others down.

This module knows nothing of models: :mod:`reclight.registry` reads a :class:`PluginSet` and
rebuilds itself when :attr:`PluginSet.generation` changes, so the dependency runs one way.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any, Iterable

import pluggy

from reclight import hookspecs
from reclight.errors import PluginError

GROUP = "reclight"
ENV_LOAD = "RECLIGHT_LOAD_PLUGINS"
ENV_SKIP = "RECLIGHT_SKIP_PLUGINS"

LOADED, EMPTY, FAILED, CLASH = "loaded", "empty", "failed", "clash"


def hook_names() -> tuple[str, ...]:
    """The names of the hookspecs in :mod:`reclight.hookspecs`, sorted."""
    marker = f"{GROUP}_spec"  # the attribute pluggy's HookspecMarker sets
    return tuple(sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), marker)))


def describe_error(exc: BaseException) -> str:
    """``Type: message`` on one line (pluggy's validation errors span several)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def call_hook(impl: Any, **kwargs: Any) -> Any:
    """Call one hook implementation the way pluggy would: with the arguments it declares
    (pluggy lets an implementation take a subset of the hookspec's arguments)."""
    return impl.function(*(kwargs[arg] for arg in impl.argnames))


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``Reclight_MF`` matches ``reclight-mf``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PluginRecord:
    """One plugin as ``reclight plugins`` shows it.

    ``status`` is ``loaded`` (registered with pluggy), ``empty`` (imported but implements no
    hook, so not registered), ``failed`` (import or registration raised) or ``clash`` (its
    entry-point name is also used by another distribution, so neither loaded). ``error`` says
    why, phrased to follow ``plugin 'x' (dist version)``; a loaded plugin may carry one too (a
    hook that raised, an implementation of a hook that does not exist).
    """

    name: str
    dist: str
    version: str = ""
    status: str = LOADED
    hooks: tuple[str, ...] = ()
    error: str = ""

    @property
    def label(self) -> str:
        """``plugin 'x' (reclight-x 1.0)``: how every message names a plugin."""
        return f"plugin '{self.name}' ({f'{self.dist} {self.version}'.strip()})"

    def matches(self, key: str) -> bool:
        """Whether ``key`` names this plugin: its entry-point or distribution name, or the
        distribution without the ``reclight-`` prefix (the naming chain ``reclight-x`` → ``x``)."""
        dist = normalize(self.dist)
        return key == self.name or normalize(key) in (dist, dist.removeprefix("reclight-"))


class PluginSet:
    """A pluggy manager plus a record of every plugin it was offered and what became of it."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.info: dict[str, PluginRecord] = {}  # registered plugins, by entry-point name
        self.problems: list[PluginRecord] = []  # offered but not registered: empty, failed, clash
        self.warnings: list[str] = []  # one line per problem, for the CLI to print
        # Bumped on every change so a registry built from this set knows it is stale.
        self.generation = 0

    def records(self) -> list[PluginRecord]:
        """Every plugin offered, loaded ones first, in loading order."""
        return [*self.info.values(), *self.problems]

    def find(self, key: str) -> list[PluginRecord]:
        """The records ``key`` names (see :meth:`PluginRecord.matches`)."""
        return [r for r in self.records() if r.matches(key)]

    def add(self, plugin: object, name: str, dist: str = "", version: str = "") -> PluginRecord:
        """Register an imported plugin object (a module, or an object with hook methods).

        A plugin that implements no hookspec is not registered: it is recorded as ``empty``
        with the likely cause, and a warning. Raises :class:`PluginError` when ``name``
        is taken, and pluggy's ``PluginValidationError`` for a hook with wrong arguments.
        """
        if name in self.info:
            raise PluginError(f"{self.info[name].label} is already loaded; cannot add "
                              f"another plugin under the name '{name}'")
        try:
            self.manager.register(plugin, name=name)
        except Exception:
            # pluggy keeps a plugin whose hook failed validation half-registered; undo that.
            if self.manager.has_plugin(name):
                self.manager.unregister(name=name)
            raise
        self.generation += 1
        implemented = sorted(c.name for c in self.manager.get_hookcallers(plugin) or ())
        known = tuple(h for h in implemented if h in hook_names())
        unknown = [h for h in implemented if h not in hook_names()]
        record = PluginRecord(name, dist or name, version, LOADED, known)
        if not known:
            self.manager.unregister(name=name)
            record = replace(record, status=EMPTY,
                             error=f"registered no models or commands: {_why_empty(plugin, unknown)}")
            self.problems.append(record)
        else:
            if unknown:  # e.g. a typo: `register_model` is marked but no hook has that name
                record = replace(record, error=f"implements {_unknown_hooks(unknown)}")
            self.info[name] = record
        if record.error:
            self.warnings.append(f"{record.label} {record.error}")
        return record

    def remove(self, name: str) -> None:
        """Unregister a plugin added with :meth:`add` (tests do this in ``finally``)."""
        if name in self.info:
            self.manager.unregister(name=name)
            del self.info[name]
        self.problems = [r for r in self.problems if r.name != name]
        self.generation += 1

    def load_entry_points(self, allowed: set[str] | None = None,
                          skipped: set[str] | None = None) -> None:
        """Import the entry points of the group, recording problems instead of raising.

        ``allowed`` (None: all) and ``skipped`` hold entry-point or distribution names, the
        values of ``RECLIGHT_LOAD_PLUGINS`` and ``RECLIGHT_SKIP_PLUGINS``.
        """
        skipped = skipped or set()
        offered = _dedupe(entry_points(group=GROUP))
        by_name: dict[str, list[tuple[Any, str, str]]] = {}
        for ep, dist, version in offered:
            probe = PluginRecord(ep.name, dist, version)
            if allowed is not None and not any(probe.matches(k) for k in allowed):
                continue
            if any(probe.matches(k) for k in skipped):
                continue
            by_name.setdefault(ep.name, []).append((ep, dist, version))
        for name, candidates in by_name.items():
            if len(candidates) > 1:
                self._record_clash(name, [(d, v) for _, d, v in candidates])
                continue
            ep, dist, version = candidates[0]
            try:
                self.add(ep.load(), name, dist, version)
            except Exception as exc:  # any error of third-party code: import, validation
                self._fail(PluginRecord(name, dist, version, FAILED,
                                        error=f"failed to load and was skipped: {describe_error(exc)}"))
        probes = [PluginRecord(ep.name, d, v) for ep, d, v in offered]
        for env, keys in ((ENV_LOAD, allowed or set()), (ENV_SKIP, skipped)):
            for key in sorted(keys):
                if not any(p.matches(key) for p in probes):
                    installed = ", ".join(f"{p.name} ({p.dist})" for p in probes) or "none"
                    self.warnings.append(f"{env} names '{key}', which is no installed plugin's "
                                         f"entry-point or distribution name; installed: {installed}")
        self.generation += 1

    def add_commands(self, group: Any) -> None:
        """Run every ``register_commands`` hook on the click group; a hook that raises is
        recorded on its plugin and warned about, and the other plugins' commands still load."""
        for impl in self.manager.hook.register_commands.get_hookimpls():
            try:
                call_hook(impl, cli=group)
            except Exception as exc:
                record = self.info[impl.plugin_name]
                error = f"failed in register_commands, its commands are missing: {describe_error(exc)}"
                if record.error != error:
                    self.info[impl.plugin_name] = replace(record, error=error)
                    self.warnings.append(f"{record.label} {error}")

    def _record_clash(self, name: str, dists: list[tuple[str, str]]) -> None:
        shown = [f"{d} {v}".strip() for d, v in dists]
        for (dist, version), me in zip(dists, shown):
            others = [s for s in shown if s != me]
            self.problems.append(PluginRecord(name, dist, version, CLASH, error=(
                f"was not loaded: distribution{'s' if len(others) > 1 else ''} {', '.join(others)} "
                f"also use{'' if len(others) > 1 else 's'} the entry-point name '{name}'")))
        rest = ",".join(d for d, _ in dists[1:])
        if len(dists) == 2:
            count, none, fix = "two", "neither", (f"uninstall one (pip uninstall {rest}) or skip "
                                                  f"one with {ENV_SKIP}={rest}")
        else:
            count, none, fix = str(len(dists)), "none", (f"uninstall or skip all but one, e.g. "
                                                         f"{ENV_SKIP}={rest}")
        self.warnings.append(f"plugin name '{name}' is used by {count} distributions, "
                             f"{', '.join(shown[:-1])} and {shown[-1]}, so {none} was loaded; {fix}")

    def _fail(self, record: PluginRecord) -> None:
        self.problems.append(record)
        self.warnings.append(f"{record.label} {record.error}")


def _dedupe(points: Iterable[Any]) -> list[tuple[Any, str, str]]:
    """(entry point, distribution, version) per entry point; the same distribution seen twice
    on ``sys.path`` is one plugin, not a clash."""
    seen: set[tuple[str, str]] = set()
    out = []
    for ep in points:
        dist = ep.dist.name if ep.dist is not None else ep.name
        version = ep.dist.version if ep.dist is not None else ""
        if (ep.name, normalize(dist)) not in seen:
            seen.add((ep.name, normalize(dist)))
            out.append((ep, dist, version))
    return out


def _why_empty(plugin: object, unknown: list[str]) -> str:
    """The likely reason a plugin implements no hook, phrased as the fix."""
    unmarked = [h for h in hook_names() if callable(getattr(plugin, h, None))]
    if unmarked:
        names = ", ".join(unmarked)
        verb = "lacks" if len(unmarked) == 1 else "lack"
        return f"{names} {verb} the @reclight.hookimpl decorator; add it above the function"
    if unknown:
        return _unknown_hooks(unknown)
    where = getattr(plugin, "__name__", type(plugin).__name__)
    return (f"{where} defines none of the hooks {', '.join(hook_names())}; check that the entry "
            "point names the module holding the @reclight.hookimpl functions")


def _unknown_hooks(unknown: list[str]) -> str:
    names = ", ".join(unknown)
    return (f"{names}, which {'is' if len(unknown) == 1 else 'are'} not a reclight hook "
            f"(the hooks are {', '.join(hook_names())}); rename it")


def _names_from_env(variable: str) -> set[str] | None:
    raw = os.environ.get(variable)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def allowed_from_env() -> set[str] | None:
    """The plugin names ``RECLIGHT_LOAD_PLUGINS`` allows, or None when it is unset."""
    return _names_from_env(ENV_LOAD)


def skipped_from_env() -> set[str]:
    """The plugin names ``RECLIGHT_SKIP_PLUGINS`` excludes (empty when unset)."""
    return _names_from_env(ENV_SKIP) or set()


_DEFAULT: PluginSet | None = None


def get_plugins() -> PluginSet:
    """The process-wide plugin set, loaded from entry points on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        plugins = PluginSet()
        plugins.load_entry_points(allowed_from_env(), skipped_from_env())
        _DEFAULT = plugins
    return _DEFAULT


def reset_plugins(plugins: PluginSet | None = None) -> None:
    """Replace (or forget, with None) the process-wide plugin set; tests install fakes with it.

    The registry notices the new set on its next :func:`reclight.registry.get_registry`.
    """
    global _DEFAULT
    _DEFAULT = plugins
