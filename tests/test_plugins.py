"""Plugin loading and the model registry: entry points, failures, conflicts, restrictions."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from types import SimpleNamespace
from typing import Any

import pytest

from reclight import hookimpl, plugins
from reclight.errors import PluginConflictError, UnknownModelError
from reclight.plugins import PluginSet
from reclight.registry import Registry, get_registry


def fake_plugin(*names: str) -> Any:
    class Plugin:
        @hookimpl
        def register_models(self, register: Any) -> None:
            for name in names:
                register(name, f"fake_module:{name.title()}", description=f"fake {name}")

    return Plugin()


def test_installed_mf_plugin_is_registered_with_its_distribution() -> None:
    spec = get_registry().get("mf")
    assert spec.dist == "reclight-mf" and spec.version
    assert spec.target == "reclight_mf.model:MatrixFactorization"
    assert get_registry().get("biasedmf") is spec  # aliases resolve to the same spec


def test_unknown_model_lists_installed_ones() -> None:
    plugin_set = PluginSet()
    plugin_set.add(fake_plugin("alpha", "beta"), "fake", "reclight-fake", "1.0")
    with pytest.raises(UnknownModelError, match="unknown model 'gamma'; installed models: alpha, beta"):
        Registry(plugin_set).get("gamma")


def test_two_plugins_claiming_one_name_is_an_error_naming_both() -> None:
    plugin_set = PluginSet()
    plugin_set.add(fake_plugin("alpha"), "first", "reclight-first", "1.0")
    plugin_set.add(fake_plugin("alpha"), "second", "reclight-second", "2.0")
    with pytest.raises(PluginConflictError) as err:
        Registry(plugin_set)
    assert "reclight-first" in str(err.value) and "reclight-second" in str(err.value)


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, points: list[EntryPoint]) -> None:
    monkeypatch.setattr(plugins, "entry_points", lambda group: [p for p in points if p.group == group])


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, [
        EntryPoint("broken", "reclight_no_such_module_xyz", "reclight"),
        EntryPoint("mf", "reclight_mf", "reclight"),
    ])
    plugin_set = PluginSet()
    plugin_set.load_entry_points()
    assert [f.name for f in plugin_set.failures] == ["broken"]
    assert "ModuleNotFoundError" in plugin_set.failures[0].error
    assert Registry(plugin_set).names() == ["mf"]


def test_load_plugins_env_restricts_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, [EntryPoint("mf", "reclight_mf", "reclight"),
                                    EntryPoint("broken", "reclight_no_such_module_xyz", "reclight")])
    monkeypatch.setenv("RECLIGHT_LOAD_PLUGINS", "mf")
    plugin_set = PluginSet()
    plugin_set.load_entry_points(plugins.allowed_from_env())
    assert list(plugin_set.info) == ["mf"] and not plugin_set.failures
    monkeypatch.setenv("RECLIGHT_LOAD_PLUGINS", "")
    assert plugins.allowed_from_env() == set()


def test_register_commands_hook_adds_a_cli_command(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import click

    from reclight import cli

    class CommandPlugin:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command(name="hello-plugin")
            def hello() -> None:
                click.echo("hello from a plugin")

    plugin_set = PluginSet()
    plugin_set.add(CommandPlugin(), "commands", "reclight-commands", "1.0")
    monkeypatch.setattr(cli, "get_plugins", lambda: plugin_set)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["hello-plugin"])
    assert exit_info.value.code == 0
    assert "hello from a plugin" in capsys.readouterr().out
    cli.cli.commands.pop("hello-plugin", None)


def test_hookspecs_are_documented() -> None:
    from reclight import hookspecs

    for name in ("register_models", "register_commands"):
        assert getattr(hookspecs, name).__doc__.strip()
    readme = (__import__("pathlib").Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in ("register_models", "register_commands"):
        assert name in readme, f"hook {name} is not documented in the README"


def test_spec_loads_class_lazily() -> None:
    spec = get_registry().get("mf")
    cls = spec.load()
    assert cls.__name__ == "MatrixFactorization" and SimpleNamespace(**spec.as_dict()).plugin == "reclight-mf"
