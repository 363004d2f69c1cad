"""`reclight install` and `reclight uninstall`: pip, run in reclight's own environment.

Both are thin wrappers over ``python -m pip`` with the interpreter running reclight, so a
plugin lands where reclight will find its entry point (not in whichever environment a bare
``pip`` on the PATH belongs to). pip's own flags pass through unchanged. Nothing a plugin
supplies is imported or run by reclight here: what changed is read from installed metadata
only (entry points of the group ``reclight``); building a source tree is pip's and the
build backend's business, as with any ``pip install``. ``reclight plugins`` loads the result.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from reclight.errors import PluginError
from reclight.plugins import GROUP, normalize

Runner = Callable[[list[str]], int]
CORE = "reclight"


def plugin_entry_points() -> dict[tuple[str, str], str]:
    """Installed plugins from metadata alone: (entry-point name, distribution) -> version."""
    found = {}
    for ep in entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else ep.name
        found[(ep.name, normalize(dist))] = ep.dist.version if ep.dist is not None else ""
    return found


def pip_command(action: str, args: Sequence[str]) -> list[str]:
    """``[python, -m, pip, action, *args]`` for the interpreter running reclight; PluginError
    (one line) when that environment has no pip."""
    if importlib.util.find_spec("pip") is None:
        raise PluginError(f"pip is not installed in reclight's environment ({sys.executable}); "
                          f"add it with `{sys.executable} -m ensurepip`, then retry")
    return [sys.executable, "-m", "pip", action, *args]


def _run(command: list[str]) -> int:
    return subprocess.call(command)


def install(args: Sequence[str], run: Runner | None = None) -> tuple[int, list[str]]:
    """``pip install ARGS``; returns pip's exit status and one line per plugin entry point that
    is new or changed version (``ease (reclight-ease 1.0.0)``)."""
    before = plugin_entry_points()
    code = (run or _run)(pip_command("install", args))
    after = plugin_entry_points()
    changed = [f"{name} ({dist} {version})".replace(" )", ")")
               for (name, dist), version in sorted(after.items())
               if before.get((name, dist)) != version]
    return code, changed


def uninstall_targets(names: Sequence[str]) -> list[str]:
    """Distribution names for ``names``: an installed plugin's entry-point name (``ease``)
    becomes its distribution (``reclight-ease``); anything else (a distribution name, a pip
    flag) passes through. Refuses to remove reclight itself."""
    by_entry_point: dict[str, list[str]] = {}
    for name, dist in plugin_entry_points():
        by_entry_point.setdefault(name, []).append(dist)
    out = []
    for name in names:
        if not name.startswith("-") and normalize(name) == CORE:
            raise PluginError("`reclight uninstall` removes plugins, not reclight itself; use "
                              f"`{sys.executable} -m pip uninstall reclight` for that")
        out += by_entry_point.get(name, [name]) if not name.startswith("-") else [name]
    return out


def uninstall(names: Sequence[str], run: Runner | None = None) -> tuple[int, list[str]]:
    """``pip uninstall`` the plugins ``names`` (see :func:`uninstall_targets`); returns pip's
    exit status and one line per plugin entry point that is gone."""
    if not ({"-y", "--yes"} & set(names)) and not sys.stdin.isatty():
        # pip asks "Proceed (Y/n)?" and, with no terminal to answer it, ends in a traceback.
        raise PluginError("`reclight uninstall` needs -y when its input is not a terminal "
                          "(pip would ask to confirm); run it again with -y")
    before = plugin_entry_points()
    code = (run or _run)(pip_command("uninstall", uninstall_targets(names)))
    after = plugin_entry_points()
    removed = [f"{name} ({dist} {version})".replace(" )", ")")
               for (name, dist), version in sorted(before.items()) if (name, dist) not in after]
    return code, removed
