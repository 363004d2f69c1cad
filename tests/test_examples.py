"""examples/: the third-party plugin installed with `reclight install` and trained through the
command, its own tests, the YAML configs of the built-in models and the Python API script."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import yaml

from reclight import install as installer
from reclight.errors import PluginError
from reclight.registry import get_registry
from tests.cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "reclight-ease"
CONFIGS = REPO / "examples" / "configs"
# The figure the example's README states, on a line of its own: "u1 NDCG@10: 0.xxxx".
STATED = re.compile(r"^u1 NDCG@10: (0\.\d{4})\b", re.MULTILINE)


run = run_cli


def reclight(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The `reclight` command of this environment, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "reclight", *args], capture_output=True,
                          text=True, cwd=cwd)


def installed(dist: str) -> bool:
    try:
        distribution(dist)
    except PackageNotFoundError:
        return False
    return True


def offline_build_flags() -> list[str]:
    """pip flags that build the example without any package index when this environment's
    setuptools can build it (pip's isolated build would fetch setuptools from an index)."""
    probe = "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 64)"
    ok = subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0
    return ["--no-build-isolation", "--no-index"] if ok else []


# --- the third-party plugin, start to finish -----------------------------------------------
def test_example_plugin_installs_trains_to_its_readme_figure_and_passes_its_tests(
        ml100k_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stated = STATED.search((EXAMPLE / "README.md").read_text(encoding="utf-8"))
    assert stated, "examples/reclight-ease/README.md must state 'u1 NDCG@10: 0.xxxx' on a line"
    was_installed = installed("reclight-ease")
    try:
        # --no-deps: reclight (its one dependency) is here, so pip needs no index for it.
        code, out, err = run(["install", "-e", str(EXAMPLE), "--no-deps", "-q",
                              *offline_build_flags()], capsys)
        assert code == 0, err
        if not was_installed:
            assert "installed plugin ease (reclight-ease 1.0.0)" in out
        assert "reclight_ease" not in sys.modules  # install never imports what it installs

        listing = reclight("plugins", "--json")
        assert listing.returncode == 0, listing.stderr
        row = next(r for r in json.loads(listing.stdout) if r["name"] == "ease")
        assert row == {"name": "ease", "dist": "reclight-ease", "version": "1.0.0",
                       "status": "loaded", "hooks": ["register_commands", "register_models"],
                       "models": ["ease"], "error": None}

        fit = reclight("fit", "--model", "ease", "--data", str(ml100k_dir), "--data.split", "u1",
                       "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar",
                       "false")
        assert fit.returncode == 0, fit.stderr
        run_dir = Path(fit.stdout.split("run dir: ")[1].split()[0])
        ndcg = json.loads((run_dir / "metrics.json").read_text())["metrics"]["test_ndcg@10"]
        assert ndcg == pytest.approx(float(stated.group(1)), abs=5e-4)

        similar = reclight("ease-similar", "--ckpt", json.loads(
            (run_dir / "metrics.json").read_text())["checkpoint"], "--items", "50", "-k", "3")
        assert similar.returncode == 0, similar.stderr
        assert similar.stdout.splitlines()[0] == "item,rank,similar_item,weight"
        assert [line.split(",")[:2] for line in similar.stdout.splitlines()[1:]] == [
            ["50", "1"], ["50", "2"], ["50", "3"]]

        own_tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x"], cwd=EXAMPLE,
                                   capture_output=True, text=True)
        assert own_tests.returncode == 0, own_tests.stdout[-3000:]
    finally:
        if not was_installed:
            done = reclight("uninstall", "ease", "-y", "-q")
            assert done.returncode == 0, done.stderr
            assert "removed plugin ease (reclight-ease 1.0.0)" in done.stdout
            assert not installed("reclight-ease")


def test_example_plugin_uses_only_reclights_public_api() -> None:
    """Every `reclight` name the examples import is in the README's public-API table, where an
    entry is `module:name` or a whole `module`."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.split(r"\n##+ ", readme.split("### The public API", 1)[1], maxsplit=1)[0]
    public = set(re.findall(r"`(reclight(?:\.\w+)*(?::\w+)?)`", section))

    def is_public(module: str, name: str | None) -> bool:
        if name is None:  # `import reclight.x`
            return module in public or any(p.startswith(f"{module}:") for p in public)
        return f"{module}:{name}" in public or f"{module}.{name}" in public or module in public

    used, private = 0, []
    for path in [*EXAMPLE.rglob("*.py"), REPO / "examples" / "api_example.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "reclight":
                pairs = [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                pairs = [(a.name, None) for a in node.names if a.name.split(".")[0] == "reclight"]
            else:
                continue
            used += len(pairs)
            private += [f"{path.name}: {m}{':' + n if n else ''}" for m, n in pairs
                        if not is_public(m, n)]
    assert used > 5, "the parser found almost no reclight import; it is broken"
    assert private == [], f"not in the README's public API: {private}"


# --- reclight install / uninstall: pip in reclight's environment ---------------------------
def test_install_passes_pips_flags_through_to_this_interpreters_pip() -> None:
    seen: list[list[str]] = []
    code, changed = installer.install(["-e", "./x", "--no-deps", "--index-url", "U"],
                                      run=lambda command: seen.append(command) or 3)
    assert seen == [[sys.executable, "-m", "pip", "install", "-e", "./x", "--no-deps",
                     "--index-url", "U"]]
    assert (code, changed) == (3, [])


def test_uninstall_maps_an_entry_point_name_to_its_distribution() -> None:
    name = next(iter(get_registry().plugins.info))  # an installed plugin, e.g. mf
    dist = get_registry().plugins.info[name].dist
    seen: list[list[str]] = []
    installer.uninstall([name, "-y", "other-dist"], run=lambda command: seen.append(command) or 0)
    assert seen[0][4:] == [installer.normalize(dist), "-y", "other-dist"]


def test_uninstall_refuses_to_remove_reclight_itself(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["uninstall", "Reclight", "-y"], capsys)
    assert code == 2 and "removes plugins, not reclight itself" in err
    assert len(err.strip().splitlines()) == 1


def test_uninstall_without_a_terminal_needs_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer.sys.stdin, "isatty", lambda: False, raising=False)
    ran: list[list[str]] = []
    with pytest.raises(PluginError, match="needs -y when its input is not a terminal"):
        installer.uninstall(["ease"], run=lambda command: ran.append(command) or 0)
    assert ran == []  # pip never started
    installer.uninstall(["ease", "--yes"], run=lambda command: ran.append(command) or 0)
    assert len(ran) == 1


def test_install_without_pip_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PluginError, match="pip is not installed in reclight's environment"):
        installer.install(["reclight-ease"], run=lambda command: 0)


def test_a_failed_pip_install_exits_with_pips_status(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(installer, "_run", lambda command: 1)
    code, _, err = run(["install", "no-such-plugin"], capsys)
    assert code == 1
    assert err.strip().splitlines()[-1] == ("reclight: error: pip install failed (exit status "
                                            "1); see pip's messages above")


# --- YAML configs of the built-in models ---------------------------------------------------
def builtin_models() -> list[str]:
    """Models registered by the distributions in this repository's plugins/ folder."""
    registry = get_registry()
    names = []
    for pyproject in sorted(REPO.glob("plugins/*/pyproject.toml")):
        entry_points = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["reclight"]
        for plugin in entry_points:
            names += registry.models_of(plugin)
    return names


def test_every_builtin_model_has_an_example_config() -> None:
    names = builtin_models()
    assert names, "no built-in model is installed; run scripts/install.sh"
    missing = [n for n in names if not (CONFIGS / f"{n}.yaml").is_file()]
    assert missing == [], (f"no examples/configs/<model>.yaml for {missing}; write them with "
                           f"`.venv/bin/python examples/configs/generate.py {' '.join(missing)}`")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_config_parses_and_holds_the_models_defaults(
        path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["fit", "--config", str(path), "--print_config"], capsys)
    assert code == 0, err
    resolved = yaml.safe_load(out)
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    name = written["model"]["name"]
    defaults = run(["fit", "--model", name, "--print_config"], capsys)[1]
    assert resolved["model"] == yaml.safe_load(defaults)["model"], (
        f"{path.name} no longer holds {name}'s defaults; rewrite it with "
        f"`.venv/bin/python examples/configs/generate.py {name}`")
    assert {k: resolved["data"][k] for k in written["data"]} == written["data"]
    assert resolved["trainer"]["max_epochs"] == written["trainer"]["max_epochs"]


# --- the Python API script ------------------------------------------------------------------
def test_api_example_fits_predicts_and_recommends() -> None:
    done = subprocess.run([sys.executable, str(REPO / "examples" / "api_example.py"),
                           "--epochs", "10"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    rmse = float(re.search(r"'test_rmse': ([\d.]+)", lines[0]).group(1))
    assert 0 < rmse < 0.8, lines[0]  # the ratings' spread (standard deviation) is 1.12
    assert sum(line.startswith("predicted ") for line in lines) == 4
    assert "1 prediction(s) used the fallback for unseen ids" in lines
    top = re.search(r"top 5 for u0: \[(.*)\]", done.stdout)
    assert top and len(top.group(1).split(",")) == 5
