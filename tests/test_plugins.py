"""Plugin loading and the model registry: entry points, failures, clashes, settings, listings.

Only toy plugins from the tests are used (``tests.toy_plugins_extra``, modules written to a
temporary folder, in-process objects), never an installed model plugin: every entry point here
is a fake ``importlib.metadata.EntryPoint`` with a fake distribution.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from reclight import cli, hookimpl, hookspecs, plugins, registry
from reclight.errors import PluginConflictError, PluginError, RecLightError, UnknownModelError
from reclight.plugins import PluginSet, get_plugins, reset_plugins
from reclight.registry import ModelSpec, Registry, get_registry

from . import toy_plugins_extra as toys

REPO = Path(__file__).resolve().parents[1]
TOYS = toys.__name__


def entry_point(name: str, value: str, dist: str | None = None, version: str = "1.0") -> EntryPoint:
    """A fake entry point of the group ``reclight``, from a fake distribution when ``dist``."""
    point = EntryPoint(name, value, plugins.GROUP)
    if dist is None:
        return point
    # EntryPoint is immutable; `_for` is how importlib.metadata itself attaches a distribution.
    return point._for(SimpleNamespace(name=dist, version=version))


@pytest.fixture(autouse=True)
def clean_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No inherited settings, and the process-wide plugin set forgotten after each test."""
    monkeypatch.delenv(plugins.ENV_LOAD, raising=False)
    monkeypatch.delenv(plugins.ENV_SKIP, raising=False)
    yield
    reset_plugins(None)


@pytest.fixture
def offer(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``offer(*entry_points)`` makes them the installed entry points."""

    def _offer(*points: EntryPoint) -> None:
        monkeypatch.setattr(plugins, "entry_points",
                            lambda group: [p for p in points if p.group == group])

    return _offer


def loaded(*points: EntryPoint, allowed: set[str] | None = None,
           skipped: set[str] | None = None) -> PluginSet:
    """A plugin set loaded from the entry points ``offer`` installed."""
    plugin_set = PluginSet()
    plugin_set.load_entry_points(allowed, skipped)
    return plugin_set


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """``make_module(name, source)`` writes an importable module; it is forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []

    def _make(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        made.append(name)
        return name

    yield _make
    for name in made:
        sys.modules.pop(name, None)


def run(args: list[str], plugin_set: PluginSet,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``reclight ARGS`` in-process on ``plugin_set``; exit code, stdout, stderr."""
    reset_plugins(plugin_set)
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(args)
    finally:
        reset_plugins(None)
        for name in ("load-model", "hello-plugin"):  # commands toy plugins add to the group
            cli.cli.commands.pop(name, None)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return int(exit_info.value.code or 0), out, err


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("reclight: warning: ")]


def errors_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("reclight: error: ")]


# --- the hooks -------------------------------------------------------------------------------


def test_hook_register_models_registers_specs_with_their_distribution() -> None:
    plugin_set = PluginSet()
    plugin_set.add(toys.Models(("alpha", "AlphaModel", ("a1", "a2"))), "toys", "reclight-toys", "1.2")
    spec = Registry(plugin_set).get("alpha")
    assert (spec.name, spec.plugin, spec.dist, spec.version) == ("alpha", "toys", "reclight-toys", "1.2")
    assert spec.target == f"{TOYS}:AlphaModel" and spec.description == "toy alpha"
    assert Registry(plugin_set).get("a2").name == "alpha"  # aliases resolve to the same model
    assert spec.load() is toys.AlphaModel  # the class is imported only now
    assert spec.as_dict()["plugin"] == "reclight-toys"


def test_hook_register_models_accepts_a_class_and_a_subset_of_arguments() -> None:
    class ClassTarget:
        @hookimpl
        def register_models(self, register: Any) -> None:
            register("beta", toys.BetaModel, aliases="b")  # a bare string is one alias

    class NoArguments:  # pluggy allows an implementation to take fewer arguments than the spec
        @hookimpl
        def register_models(self) -> None:
            """Registers nothing."""

    plugin_set = PluginSet()
    plugin_set.add(ClassTarget(), "class")
    plugin_set.add(NoArguments(), "none")
    found = Registry(plugin_set)
    assert found.get("b").load() is toys.BetaModel and found.get("beta").description == "Toy beta."
    assert not found.failures


def test_hook_register_commands_adds_a_cli_command(capsys: pytest.CaptureFixture[str]) -> None:
    import click

    class CommandPlugin:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command(name="hello-plugin")
            def hello() -> None:
                click.echo("hello from a plugin")

    plugin_set = PluginSet()
    plugin_set.add(CommandPlugin(), "commands", "reclight-commands", "1.0")
    code, out, err = run(["hello-plugin"], plugin_set, capsys)
    assert code == 0 and "hello from a plugin" in out and not warnings_of(err)


def test_a_register_commands_that_raises_is_a_warning_and_other_commands_work(
        capsys: pytest.CaptureFixture[str]) -> None:
    plugin_set = PluginSet()
    plugin_set.add(toys.RaisingCommands(), "bad-commands", "reclight-bad-commands", "0.1")
    plugin_set.add(toys.Commands(), "commands", "reclight-commands", "1.0")
    plugin_set.add(toys.Models(("beta", "BetaModel", ())), "models")
    code, out, err = run(["load-model", "beta"], plugin_set, capsys)
    assert code == 0 and "loaded BetaModel" in out
    assert warnings_of(err) == [
        "reclight: warning: plugin 'bad-commands' (reclight-bad-commands 0.1) failed in "
        "register_commands, its commands are missing: ValueError: boom in register_commands"]


# --- the registry follows the plugin set; no import cycle -------------------------------------


def test_plugins_module_does_not_import_the_registry() -> None:
    tree = ast.parse(inspect.getsource(plugins))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not {name for name in imported if name and "registry" in name}, imported


def test_get_registry_rebuilds_when_the_plugin_set_is_replaced_or_changed() -> None:
    first = PluginSet()
    first.add(toys.Models(("alpha", "AlphaModel", ())), "one")
    reset_plugins(first)
    assert get_registry().names() == ["alpha"] and get_registry() is get_registry()
    first.add(toys.Models(("beta", "BetaModel", ())), "two")
    assert get_registry().names() == ["alpha", "beta"]
    first.remove("one")
    assert get_registry().names() == ["beta"]
    reset_plugins(PluginSet())
    assert get_registry().names() == []
    registry.reset_registry()  # still forces a rebuild
    assert get_registry().plugins is get_plugins()


def test_adding_a_taken_plugin_name_is_an_error_and_remove_frees_it() -> None:
    plugin_set = PluginSet()
    plugin_set.add(toys.Models(("alpha", "AlphaModel", ())), "toys", "reclight-toys", "1.0")
    with pytest.raises(PluginError, match=r"plugin 'toys' \(reclight-toys 1.0\) is already loaded"):
        plugin_set.add(toys.Models(("beta", "BetaModel", ())), "toys")
    plugin_set.remove("toys")
    plugin_set.add(toys.Models(("beta", "BetaModel", ())), "toys")
    assert Registry(plugin_set).names() == ["beta"]


# --- entry points ----------------------------------------------------------------------------


def test_entry_points_load_with_their_distribution(offer: Callable[..., None]) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"),
          entry_point("beta", f"{TOYS}:beta", "reclight-beta", "2.5"))
    plugin_set = loaded()
    assert [(r.name, r.dist, r.version, r.status, r.hooks) for r in plugin_set.records()] == [
        ("alpha", "reclight-alpha", "1.0", "loaded", ("register_models",)),
        ("beta", "reclight-beta", "2.5", "loaded", ("register_models",))]
    assert Registry(plugin_set).get("beta").version == "2.5" and not plugin_set.warnings


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(
        offer: Callable[..., None], make_module: Callable[[str, str], str]) -> None:
    raising = make_module("reclight_tmp_raises_at_import", "raise RuntimeError('bad config')\n")
    offer(entry_point("missing", "reclight_no_such_module_xyz", "reclight-missing", "0.1"),
          entry_point("raising", raising, "reclight-raising", "0.2"),
          entry_point("wrong-args", f"{TOYS}:wrong_arguments", "reclight-wrong-args", "0.3"),
          entry_point("beta", f"{TOYS}:beta", "reclight-beta", "1.0"))
    plugin_set = loaded()
    assert [r.name for r in plugin_set.problems if r.status == "failed"] == ["missing", "raising",
                                                                               "wrong-args"]
    assert plugin_set.warnings[0] == (
        "plugin 'missing' (reclight-missing 0.1) failed to load and was skipped: "
        "ModuleNotFoundError: No module named 'reclight_no_such_module_xyz'")
    assert "RuntimeError: bad config" in plugin_set.warnings[1]
    assert "PluginValidationError" in plugin_set.warnings[2] and "\n" not in plugin_set.warnings[2]
    assert not plugin_set.manager.has_plugin("wrong-args")  # no half-registered plugin left
    assert Registry(plugin_set).names() == ["beta"]


def test_two_distributions_with_one_entry_point_name_load_neither(
        offer: Callable[..., None], capsys: pytest.CaptureFixture[str]) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"),
          entry_point("alpha", f"{TOYS}:alpha_again", "reclight-alpha-fork", "2.0"),
          entry_point("beta", f"{TOYS}:beta", "reclight-beta", "1.0"))
    plugin_set = loaded()
    assert list(plugin_set.info) == ["beta"]
    assert [(r.dist, r.status) for r in plugin_set.problems] == [("reclight-alpha", "clash"),
                                                                 ("reclight-alpha-fork", "clash")]
    warning = ("reclight: warning: plugin name 'alpha' is used by two distributions, "
               "reclight-alpha 1.0 and reclight-alpha-fork 2.0, so neither was loaded; uninstall "
               "one (pip uninstall reclight-alpha-fork) or skip one with "
               "RECLIGHT_SKIP_PLUGINS=reclight-alpha-fork")
    for command in (["plugins"], ["models"]):
        code, out, err = run(command, plugin_set, capsys)
        assert code == 0 and warnings_of(err) == [warning]
    code, out, _ = run(["plugins", "--json"], plugin_set, capsys)
    rows = json.loads(out)
    assert [(r["name"], r["dist"], r["status"]) for r in rows] == [
        ("alpha", "reclight-alpha", "clash"), ("alpha", "reclight-alpha-fork", "clash"),
        ("beta", "reclight-beta", "loaded")]
    assert "reclight-alpha-fork 2.0 also uses the entry-point name 'alpha'" in rows[0]["error"]


def test_three_distributions_with_one_entry_point_name_are_named_in_one_warning(
        offer: Callable[..., None]) -> None:
    offer(*(entry_point("alpha", f"{TOYS}:alpha", f"reclight-alpha-{n}", "1.0") for n in "abc"))
    plugin_set = loaded()
    assert not plugin_set.info and [r.status for r in plugin_set.problems] == ["clash"] * 3
    assert plugin_set.warnings == [
        "plugin name 'alpha' is used by 3 distributions, reclight-alpha-a 1.0, reclight-alpha-b 1.0 "
        "and reclight-alpha-c 1.0, so none was loaded; uninstall or skip all but one, e.g. "
        "RECLIGHT_SKIP_PLUGINS=reclight-alpha-b,reclight-alpha-c"]
    assert plugin_set.problems[0].error == (
        "was not loaded: distributions reclight-alpha-b 1.0, reclight-alpha-c 1.0 also use the "
        "entry-point name 'alpha'")


def test_the_same_distribution_seen_twice_is_not_a_clash(offer: Callable[..., None]) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"),
          entry_point("alpha", f"{TOYS}:alpha", "reclight_alpha", "1.0"))  # e.g. twice on sys.path
    plugin_set = loaded()
    assert list(plugin_set.info) == ["alpha"] and not plugin_set.problems and not plugin_set.warnings


@pytest.mark.parametrize("setting, expected", [
    ("alpha", ["alpha"]),                     # an entry-point name
    ("reclight-beta", ["beta"]),              # a distribution name
    ("Reclight_Beta", ["beta"]),              # compared as pip compares them
    (" alpha , beta ", ["alpha", "beta"]),
    ("", []),                                 # the empty string loads none
])
def test_load_plugins_setting_restricts_loading(setting: str, expected: list[str],
                                                offer: Callable[..., None],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"),
          entry_point("beta", f"{TOYS}:beta", "reclight-beta", "1.0"),
          entry_point("broken", "reclight_no_such_module_xyz", "reclight-broken", "1.0"))
    monkeypatch.setenv("RECLIGHT_LOAD_PLUGINS", setting)
    assert list(get_plugins().info) == expected
    assert not get_plugins().problems and not get_plugins().warnings


@pytest.mark.parametrize("setting", ["broken", "reclight-broken", "broken,reclight-nothing"])
def test_skip_plugins_setting_excludes_plugins(setting: str, offer: Callable[..., None],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"),
          entry_point("broken", "reclight_no_such_module_xyz", "reclight-broken", "1.0"),
          entry_point("nothing", f"{TOYS}:nothing", "reclight-nothing", "1.0"))
    monkeypatch.setenv("RECLIGHT_SKIP_PLUGINS", setting)
    names = [r.name for r in get_plugins().records()]
    assert "broken" not in names and names[0] == "alpha"
    assert ("nothing" in names) == ("nothing" not in setting)
    assert not [w for w in get_plugins().warnings if "failed" in w]


def test_skipping_one_distribution_resolves_an_entry_point_clash(
        offer: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"),
          entry_point("alpha", f"{TOYS}:alpha_again", "reclight-alpha-fork", "2.0"))
    monkeypatch.setenv("RECLIGHT_SKIP_PLUGINS", "reclight-alpha-fork")
    assert get_plugins().info["alpha"].dist == "reclight-alpha" and not get_plugins().warnings
    assert get_registry().get("a1").load() is toys.AlphaModel


def test_a_setting_naming_no_installed_plugin_is_a_warning(offer: Callable[..., None],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"))
    monkeypatch.setenv("RECLIGHT_LOAD_PLUGINS", "alpha,alpah")
    monkeypatch.setenv("RECLIGHT_SKIP_PLUGINS", "reclight-bta")
    assert get_plugins().warnings == [
        "RECLIGHT_LOAD_PLUGINS names 'alpah', which is no installed plugin's entry-point or "
        "distribution name; installed: alpha (reclight-alpha)",
        "RECLIGHT_SKIP_PLUGINS names 'reclight-bta', which is no installed plugin's entry-point "
        "or distribution name; installed: alpha (reclight-alpha)"]


# --- plugins that register nothing -----------------------------------------------------------


def test_a_hook_module_without_the_decorator_is_reported_as_empty(
        offer: Callable[..., None], make_module: Callable[[str, str], str],
        capsys: pytest.CaptureFixture[str]) -> None:
    module = make_module("reclight_tmp_unmarked", """
        def register_models(register):
            register("unmarked", "reclight_tmp_unmarked.model:Model")
    """)
    offer(entry_point("unmarked", module, "reclight-unmarked", "1.0"),
          entry_point("beta", f"{TOYS}:beta", "reclight-beta", "1.0"))
    plugin_set = loaded()
    record = plugin_set.problems[0]
    assert (record.name, record.status, record.hooks) == ("unmarked", "empty", ())
    assert not plugin_set.manager.has_plugin("unmarked")
    warning = ("reclight: warning: plugin 'unmarked' (reclight-unmarked 1.0) registered no models "
               "or commands: register_models lacks the @reclight.hookimpl decorator; add it above "
               "the function")
    code, out, err = run(["models"], plugin_set, capsys)
    assert code == 0 and "beta" in out and warnings_of(err) == [warning]
    for name in ("unmarked", "reclight-unmarked"):  # the entry-point or the distribution name
        with pytest.raises(UnknownModelError) as err_info:
            Registry(plugin_set).get(name)
        message = str(err_info.value)
        assert message.startswith(f"unknown model '{name}'; installed models: beta; plugin "
                                  "'unmarked' (reclight-unmarked 1.0) registered no models")
        assert "lacks the @reclight.hookimpl decorator" in message
        assert "install a plugin such as" not in message


@pytest.mark.parametrize("plugin, cause", [
    (toys.Misnamed(), "register_model, which is not a reclight hook (the hooks are "
                      "register_commands, register_models); rename it"),
    (toys.Nothing(), "Nothing defines none of the hooks register_commands, register_models; "
                     "check that the entry point names the module holding"),
])
def test_an_empty_plugin_names_the_likely_cause(plugin: object, cause: str) -> None:
    plugin_set = PluginSet()
    record = plugin_set.add(plugin, "x", "reclight-x", "1.0")
    assert record.status == "empty" and not Registry(plugin_set).names()
    assert len(plugin_set.warnings) == 1
    assert plugin_set.warnings[0].startswith(
        f"plugin 'x' (reclight-x 1.0) registered no models or commands: {cause}")
    with pytest.raises(UnknownModelError, match=re.escape(cause)):
        Registry(plugin_set).get("x")  # the naming chain reclight-x -> x


def test_a_misspelt_hook_beside_a_real_one_is_a_warning_but_loads() -> None:
    plugin_set = PluginSet()
    plugin_set.add(toys.MisnamedBesideAHook(("beta", "BetaModel", ())), "typo", "reclight-typo", "1.0")
    assert plugin_set.info["typo"].hooks == ("register_models",)
    assert Registry(plugin_set).names() == ["beta"]
    assert plugin_set.warnings == [
        "plugin 'typo' (reclight-typo 1.0) implements register_comands, which is not a reclight "
        "hook (the hooks are register_commands, register_models); rename it"]


def test_unknown_model_lists_installed_ones() -> None:
    plugin_set = PluginSet()
    plugin_set.add(toys.Models(("alpha", "AlphaModel", ()), ("beta", "BetaModel", ())), "fake",
                   "reclight-fake", "1.0")
    with pytest.raises(UnknownModelError) as err:
        Registry(plugin_set).get("gamma")
    assert str(err.value) == ("unknown model 'gamma'; installed models: alpha, beta (see `reclight "
                              "models`; install a plugin such as reclight-gamma to add it)")
    with pytest.raises(UnknownModelError, match="plugin 'fake' .* is installed but registers only alpha, beta"):
        Registry(plugin_set).get("fake")


# --- model classes that fail to import -------------------------------------------------------


@pytest.mark.parametrize("target, error", [
    ("reclight_no_such_module_xyz:Model", "ModuleNotFoundError: No module named 'reclight_no_such_module_xyz'"),
    ("reclight_tmp_raising_model:Model", "ZeroDivisionError: division by zero"),
    (f"{TOYS}:NoSuchModel", f"AttributeError: module '{TOYS}' has no attribute 'NoSuchModel'"),
])
def test_a_model_class_that_fails_to_import_is_one_plugin_error(
        target: str, error: str, make_module: Callable[[str, str], str]) -> None:
    make_module("reclight_tmp_raising_model", "import os\nRATIO = 1 / 0\n")
    plugin_set = PluginSet()
    plugin_set.add(toys.Models(("y", target, ())), "y", "reclight-y", "1.0")
    spec = Registry(plugin_set).get("y")
    with pytest.raises(PluginError) as err:
        spec.load()
    assert str(err.value) == (f"model 'y' from plugin 'y' (reclight-y 1.0) failed to import "
                              f"{target}: {error}; reinstall or fix the plugin")
    assert isinstance(err.value, RecLightError)


def test_a_target_that_is_malformed_or_no_class_is_a_plugin_error() -> None:
    spec = ModelSpec("n", f"{TOYS}:NOT_A_CLASS", plugin="p", dist="reclight-p", version="2")
    with pytest.raises(PluginError, match=r"model 'n' from plugin 'p' \(reclight-p 2\): .*NOT_A_CLASS "
                                          "is a int, not a class"):
        spec.load()
    with pytest.raises(PluginError, match="failed to import no_colon: ValueError: the target is not "
                                          "of the form 'module:Class'"):
        ModelSpec("n", "no_colon", plugin="p", dist="reclight-p").load()


def test_the_cli_reports_a_failing_model_class_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    plugin_set = PluginSet()
    plugin_set.add(toys.Commands(), "commands", "reclight-commands", "1.0")
    plugin_set.add(toys.Models(("y", "reclight_no_such_module_xyz:Model", ())), "y", "reclight-y", "1.0")
    code, _, err = run(["load-model", "y"], plugin_set, capsys)
    assert code == 2 and errors_of(err) == [
        "reclight: error: model 'y' from plugin 'y' (reclight-y 1.0) failed to import "
        "reclight_no_such_module_xyz:Model: ModuleNotFoundError: No module named "
        "'reclight_no_such_module_xyz'; reinstall or fix the plugin"]
    assert len(err.strip().splitlines()) == 1


# --- two plugins claiming one model name -----------------------------------------------------


def clashing_set() -> PluginSet:
    """``alpha`` claimed by two plugins; ``beta`` and ``gamma`` unique; alias ``a1`` of the
    first alpha unique; alias ``g`` claimed by gamma and as delta's alias."""
    plugin_set = PluginSet()
    plugin_set.add(toys.Models(("alpha", "AlphaModel", ("a1",)), ("beta", "BetaModel", ())),
                   "first", "reclight-first", "1.0")
    plugin_set.add(toys.Models(("alpha", "BetaModel", ()), ("gamma", "BetaModel", ("g",))),
                   "second", "reclight-second", "2.0")
    plugin_set.add(toys.Models(("delta", "AlphaModel", ("g", "d"))), "third", "reclight-third", "3.0")
    return plugin_set


def test_two_plugins_claiming_one_name_record_a_conflict_and_the_rest_works() -> None:
    found = Registry(clashing_set())  # building never raises
    assert found.names() == ["beta", "delta", "gamma"]
    assert sorted(found.conflicts) == ["alpha", "g"]
    assert [s.plugin for s in found.conflicts["alpha"]] == ["first", "second"]
    with pytest.raises(PluginConflictError) as err:
        found.get("alpha")
    assert str(err.value) == (
        "model name 'alpha' is claimed by plugin 'first' (reclight-first 1.0) and plugin 'second' "
        "(reclight-second 2.0), so it is not usable; uninstall one of them or skip one with "
        "RECLIGHT_SKIP_PLUGINS=reclight-second")
    assert found.get("beta").load() is toys.BetaModel
    assert found.get("d").name == "delta" and found.get("gamma").plugin == "second"


def test_a_clashing_alias_is_withdrawn_from_both_models() -> None:
    found = Registry(clashing_set())
    assert found.specs["gamma"].aliases == () and found.specs["delta"].aliases == ("d",)
    with pytest.raises(PluginConflictError, match=r"model alias 'g' is claimed by plugin 'second' .* "
                                                  r"\(an alias of its model 'gamma'\) and plugin 'third'"):
        found.get("g")


def test_the_alias_of_a_clashing_model_names_the_clash() -> None:
    with pytest.raises(PluginConflictError,
                       match="'a1' is an alias of model 'alpha', which is unusable: model name 'alpha'"):
        Registry(clashing_set()).get("a1")


def test_one_plugin_registering_a_name_twice_is_its_own_conflict() -> None:
    plugin_set = PluginSet()
    plugin_set.add(toys.Models(("alpha", "AlphaModel", ("alpha",)), ("alpha", "BetaModel", ())),
                   "twice", "reclight-twice", "1.0")
    found = Registry(plugin_set)
    with pytest.raises(PluginConflictError, match=r"registered 2 times by plugin 'twice' "
                                                  r"\(reclight-twice 1.0\); fix its register_models"):
        found.get("alpha")


def test_a_register_models_that_raises_drops_only_that_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    plugin_set = PluginSet()
    plugin_set.add(toys.RaisingModels(), "raising", "reclight-raising", "0.1")
    plugin_set.add(toys.Models(("beta", "BetaModel", ())), "beta", "reclight-beta", "1.0")
    found = Registry(plugin_set)
    assert found.names() == ["beta"]  # nothing of the raising plugin is kept, not even before the raise
    with pytest.raises(UnknownModelError, match="plugin 'raising' .* failed in register_models"):
        found.get("raising")
    code, out, err = run(["plugins", "--json"], plugin_set, capsys)
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["raising"]["status"] == "failed" and rows["beta"]["status"] == "loaded"
    assert warnings_of(err) == [
        "reclight: warning: plugin 'raising' (reclight-raising 0.1) failed in register_models, its "
        "models were skipped: RuntimeError: boom in register_models"]


def test_models_lists_conflicts_and_every_command_keeps_working(capsys: pytest.CaptureFixture[str]) -> None:
    plugin_set = clashing_set()
    plugin_set.add(toys.Commands(), "commands", "reclight-commands", "1.0")
    code, out, err = run(["models"], plugin_set, capsys)
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["beta", "delta", "gamma", "alpha", "g"]
    assert lines[3].startswith("alpha  conflict: model name 'alpha' is claimed by plugin 'first'")
    assert "delta  reclight-third 3.0  toy delta (aliases: d)" in out
    assert len(warnings_of(err)) == 2 and "model name 'alpha'" in warnings_of(err)[0]
    code, out, err = run(["models", "--json"], plugin_set, capsys)
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["beta"]["status"] == "ok" and rows["alpha"]["status"] == "conflict"
    assert [c["plugin"] for c in rows["alpha"]["claimed_by"]] == ["reclight-first", "reclight-second"]
    assert "RECLIGHT_SKIP_PLUGINS" in rows["alpha"]["error"]
    code, out, err = run(["load-model", "beta"], plugin_set, capsys)  # an unrelated command
    assert code == 0 and "loaded BetaModel" in out
    code, out, err = run(["load-model", "alpha"], plugin_set, capsys)
    assert code == 2 and errors_of(err) == [
        "reclight: error: model name 'alpha' is claimed by plugin 'first' (reclight-first 1.0) and "
        "plugin 'second' (reclight-second 2.0), so it is not usable; uninstall one of them or skip "
        "one with RECLIGHT_SKIP_PLUGINS=reclight-second"]


# --- reclight plugins ------------------------------------------------------------------------


def test_plugins_lists_every_plugin_with_hooks_models_and_reasons(
        offer: Callable[..., None], capsys: pytest.CaptureFixture[str]) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"),
          entry_point("commands", f"{TOYS}:commands", "reclight-commands", "0.5"),
          entry_point("broken", "reclight_no_such_module_xyz", "reclight-broken", "0.1"),
          entry_point("unmarked", f"{TOYS}:unmarked", "reclight-unmarked", "0.2"),
          entry_point("twin", f"{TOYS}:beta", "reclight-twin-a", "1.0"),
          entry_point("twin", f"{TOYS}:beta", "reclight-twin-b", "1.0"),
          entry_point("other-alpha", f"{TOYS}:alpha_again", "reclight-other-alpha", "3.0"))
    plugin_set = loaded()
    code, out, err = run(["plugins", "--json"], plugin_set, capsys)
    assert code == 0
    rows = {(row["name"], row["dist"]): row for row in json.loads(out)}
    assert set(json.loads(out)[0]) == {"name", "dist", "version", "status", "hooks", "models", "error"}
    assert rows[("alpha", "reclight-alpha")] == {
        "name": "alpha", "dist": "reclight-alpha", "version": "1.0", "status": "conflict",
        "hooks": ["register_models"], "models": [],
        "error": "claims names that another registration claims too, so they are unusable: alpha "
                 "(see `reclight models`)"}
    assert rows[("commands", "reclight-commands")]["status"] == "loaded"
    assert rows[("commands", "reclight-commands")]["hooks"] == ["register_commands"]
    assert rows[("commands", "reclight-commands")]["error"] is None
    assert rows[("broken", "reclight-broken")]["status"] == "failed"
    assert "ModuleNotFoundError" in rows[("broken", "reclight-broken")]["error"]
    assert rows[("unmarked", "reclight-unmarked")]["status"] == "empty"
    assert {rows[("twin", d)]["status"] for d in ("reclight-twin-a", "reclight-twin-b")} == {"clash"}
    assert len(warnings_of(err)) == 4  # broken, unmarked, twin, alpha: one line each
    code, out, err = run(["plugins"], plugin_set, capsys)
    assert code == 0 and len(out.splitlines()) == 7
    lines = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines()}
    assert re.fullmatch(r"commands +reclight-commands 0\.5 +loaded +hooks: register_commands",
                        lines["commands reclight-commands"])
    assert "empty" in lines["unmarked reclight-unmarked"] and "lacks the @reclight.hookimpl" in \
        lines["unmarked reclight-unmarked"]
    assert "failed to load and was skipped: ModuleNotFoundError" in lines["broken reclight-broken"]


def test_plugins_shows_models_and_aliases_of_a_loaded_plugin(offer: Callable[..., None],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"))
    code, out, err = run(["plugins"], loaded(), capsys)
    assert code == 0 and not err
    assert re.fullmatch(r"alpha  reclight-alpha 1\.0  loaded +hooks: register_models; models: "
                        r"alpha \(a1\)\n", out)


def test_plugins_with_none_loaded_names_the_setting(offer: Callable[..., None],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    offer(entry_point("alpha", f"{TOYS}:alpha", "reclight-alpha", "1.0"))
    monkeypatch.setenv("RECLIGHT_LOAD_PLUGINS", "")
    reset_plugins(None)
    code, out, _ = run(["plugins"], get_plugins(), capsys)
    assert code == 0 and out == "no plugins loaded (RECLIGHT_LOAD_PLUGINS='')\n"


def test_plugins_does_not_import_torch() -> None:
    probe = textwrap.dedent(f"""
        import sys
        from importlib.metadata import EntryPoint
        from types import SimpleNamespace
        from reclight import plugins
        from reclight.cli import main
        points = [EntryPoint("alpha", "{TOYS}:alpha", "reclight")._for(
                      SimpleNamespace(name="reclight-alpha", version="1.0")),
                  EntryPoint("broken", "reclight_no_such_module_xyz", "reclight")]
        plugins.entry_points = lambda group: points
        try:
            main(["plugins"])
        except SystemExit:
            pass
        print("TORCH" if "torch" in sys.modules else "NO-TORCH")
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=REPO)
    assert re.search(r"alpha +reclight-alpha 1\.0 +loaded", done.stdout)  # the listing really ran
    assert done.stdout.strip().endswith("NO-TORCH")


# --- every hook has a test and a README entry (datasette's meta-tests) -----------------------


def hookspec_names() -> list[str]:
    """The hookspecs defined in reclight/hookspecs.py, found by pluggy's marker."""
    return sorted(name for name, obj in vars(hookspecs).items() if hasattr(obj, "reclight_spec"))


def undocumented(hooks: list[str], test_names: set[str], readme: str) -> list[str]:
    """Problems of hooks without a ``test_hook_<name>...`` test or a README bullet ``- `name(``."""
    problems = []
    for hook in hooks:
        if not any(t.startswith(f"test_hook_{hook}") for t in test_names):
            problems.append(f"hook {hook} has no test named test_hook_{hook}... in tests/")
        if not re.search(rf"^- `{hook}\(", readme, re.MULTILINE):
            problems.append(f"hook {hook} has no entry (- `{hook}(...)`) in README.md")
    return problems


def test_every_hookspec_has_a_test_a_readme_entry_and_a_docstring() -> None:
    hooks = hookspec_names()
    assert {"register_models", "register_commands"} <= set(hooks)
    assert plugins.hook_names() == tuple(hooks)
    test_names = {match for path in (REPO / "tests").glob("test_*.py")
                  for match in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE)}
    assert undocumented(hooks, test_names, (REPO / "README.md").read_text()) == []
    for hook in hooks:
        assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"hook {hook} has no docstring"


def test_the_meta_test_catches_a_new_hookspec() -> None:
    readme = "- `register_models(register)`: ...\n"
    assert undocumented(["register_models", "register_views"], {"test_hook_register_models_x"},
                        readme) == [
        "hook register_views has no test named test_hook_register_views... in tests/",
        "hook register_views has no entry (- `register_views(...)`) in README.md"]
