"""Plugin failures are contained, end to end: with a plugin whose import raises, one whose
``register_models`` raises, one registering a name twice and one whose model class cannot be
imported all installed at once, every message names the plugin, its distribution and its
error, and a healthy plugin's model still lists, fits and tests through the real CLI.

(tests/test_plugins.py checks each failure on its own, in the plugin set and the registry.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import SimpleNamespace

import pytest

from reclight import plugins
from reclight.plugins import PluginSet, reset_plugins
from tests.cli_helpers import run_cli

from . import toy_plugin
from . import toy_plugins_extra as toys

BROKEN_IMPORT = "reclight_tmp_broken_at_import"


def entry_point(name: str, value: str, dist: str, version: str) -> EntryPoint:
    # EntryPoint is immutable; `_for` is how importlib.metadata itself attaches a distribution.
    return EntryPoint(name, value, plugins.GROUP)._for(SimpleNamespace(name=dist, version=version))


@pytest.fixture
def broken_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginSet]:
    """Installed: the tests' toy plugin (healthy) and four broken plugins, loaded through the
    same entry-point path as real ones; the process-wide plugin set is restored afterwards."""
    (tmp_path / f"{BROKEN_IMPORT}.py").write_text("raise ImportError('needs libfoo 3')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    offered = [
        entry_point("toy", toy_plugin.__name__, "reclight-toy-tests", "0.0"),
        entry_point("broken-import", BROKEN_IMPORT, "reclight-broken-import", "0.1"),
        entry_point("hook-raises", f"{toys.__name__}:raising_models", "reclight-hook-raises", "0.2"),
    ]
    monkeypatch.setattr(plugins, "entry_points",
                        lambda group: [p for p in offered if p.group == group])
    monkeypatch.delenv(plugins.ENV_LOAD, raising=False)
    monkeypatch.delenv(plugins.ENV_SKIP, raising=False)
    plugin_set = PluginSet()
    plugin_set.load_entry_points()
    # In-process plugin objects, as a module's hooks would be (same add() path).
    plugin_set.add(toys.Models(("twice", "AlphaModel", ()), ("twice", "BetaModel", ())),
                   "twice", "reclight-twice", "0.3")
    plugin_set.add(toys.Models(("ghost", "reclight_no_such_module_xyz:Ghost", ())),
                   "ghost", "reclight-ghost", "0.4")
    reset_plugins(plugin_set)
    try:
        yield plugin_set
    finally:
        reset_plugins(None)
        sys.modules.pop(BROKEN_IMPORT, None)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code, out, err = run_cli(args, capsys)
    assert "Traceback" not in err, err
    return code, out, err


def test_every_failure_is_named_with_plugin_distribution_and_error(
        broken_world: PluginSet, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["models"], capsys)
    assert code == 0
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert set(toy_plugin.MODELS) <= listed  # the healthy plugin's models are all there
    warnings = "\n".join(line for line in err.splitlines() if line.startswith("reclight: warning:"))
    assert ("plugin 'broken-import' (reclight-broken-import 0.1) failed to load and was "
            "skipped: ImportError: needs libfoo 3") in warnings
    assert ("plugin 'hook-raises' (reclight-hook-raises 0.2) failed in register_models, its "
            "models were skipped: RuntimeError: boom in register_models") in warnings


@pytest.mark.parametrize("model, expected", [
    ("twice", "model name 'twice' is registered 2 times by plugin 'twice' (reclight-twice 0.3)"),
    ("ghost", "model 'ghost' from plugin 'ghost' (reclight-ghost 0.4) failed to import "
              "reclight_no_such_module_xyz:Ghost: ModuleNotFoundError"),
    ("never-kept", "it may come from a plugin that failed: "),
    ("never-kept", "plugin 'broken-import' (reclight-broken-import 0.1) failed to load and was "
                   "skipped: ImportError: needs libfoo 3"),
    ("never-kept", "plugin 'hook-raises' (reclight-hook-raises 0.2) failed in register_models, "
                   "its models were skipped: RuntimeError: boom in register_models"),
])
def test_choosing_a_broken_model_is_one_line(broken_world: PluginSet, model: str, expected: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["fit", "--model", model, "--trainer.max_epochs", "1"], capsys)
    errors = [line for line in err.splitlines() if line.startswith("reclight: error:")]
    assert code == 2 and len(errors) == 1 and expected in errors[0], err


def test_a_healthy_model_fits_and_tests_beside_the_broken_plugins(
        broken_world: PluginSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["fit", "--model", "toy", "--data.synthetic_ratings", "2000",
                          "--trainer.max_epochs", "1", "--trainer.default_root_dir",
                          str(tmp_path / "runs")], capsys)
    assert code == 0, err
    assert "toy: test RMSE" in out + err
    assert "reclight-broken-import" in err  # the broken ones are still reported, once each
    assert err.count("failed to load and was skipped") == 1
