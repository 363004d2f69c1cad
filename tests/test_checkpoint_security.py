"""A checkpoint never runs code: hostile files get one line, and nothing they name is executed.

Each case edits a real checkpoint the way an attacker (or a corrupted download) would and runs
`test`, `predict` and `recommend` on it through the command, in-process. A marker file that a
payload would create must never appear, and the user sees exactly one error line.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from reclight.errors import ConfigError
from reclight.memory import check_fits

from .test_cli import assert_one_line_error, fit, run

pytestmark = pytest.mark.usefixtures("toy_registry")

MARK = "reclight-pwned-marker"


def _payload(tmp: Path) -> str:
    return f"touch {tmp / MARK}"


EDITS: dict[str, tuple[Callable[[dict[str, Any], Path], None], list[str]]] = {
    "names os.system as its class": (
        lambda c, t: c["reclight"].update({"class": "os:system"}),
        ["'os:system' is not registered by any installed plugin"]),
    "names a registered plugin's non-model callable": (
        lambda c, t: c["reclight"].update({"class": "tests.toy_plugin:register_models"}),
        ["not registered"]),
    "plants Lightning's _instantiator": (
        lambda c, t: c["hyper_parameters"].update({"_instantiator": "os.system"}),
        ["instantiator", "refused"]),
    "plants an allow-listed instantiator with a foreign class path": (
        lambda c, t: c["hyper_parameters"].update({
            "_instantiator": "lightning.pytorch.cli.instantiate_module", "_class_path": "os.system"}),
        ["instantiator", "refused"]),
    "puts a shell command in a typed hyper-parameter": (
        lambda c, t: c["hyper_parameters"].update({"dim": _payload(t)}),
        ["does not accept", "model.dim"]),
    "asks for a float where an int is declared": (
        lambda c, t: c["hyper_parameters"].update({"dim": 2.5}),
        ["does not accept", "model.dim"]),
    "asks for petabytes of parameters": (
        lambda c, t: c["hyper_parameters"].update({"dim": 10 ** 12}),
        ["needs", "PiB", "available"]),
    "declares a matrix shape its arrays do not have": (
        lambda c, t: c["hyper_parameters"]["data"]["matrix"].update({"shape": [10 ** 9, 10 ** 9]}),
        ["training data that cannot be read"]),
    "points item indices outside the item map": (
        lambda c, t: c["hyper_parameters"]["data"]["matrix"]["indices"].fill_(10 ** 9),
        ["training data that cannot be read", "item indices"]),
    "drops the training data": (
        lambda c, t: c["hyper_parameters"].pop("data"),
        ["no training data"]),
    "replaces a tensor with a pickled object": (
        lambda c, t: c.update({"evil": __import__("os").system}),
        ["pickled objects", "weights_only"]),
}


_FITTED: dict[str, Any] = {}


def _checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """A real toy-mf checkpoint, fitted once for the module."""
    if "ckpt" not in _FITTED:
        _, record = fit(tmp_path / "fit", capsys, "--model", "toy-mf", "--trainer.max_epochs", "1")
        _FITTED["ckpt"] = torch.load(record["checkpoint"], weights_only=True)
    return _FITTED["ckpt"]


@pytest.mark.parametrize("case", list(EDITS))
def test_a_hostile_checkpoint_is_refused_in_one_line_and_runs_nothing(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path, capsys)
    edit, fragments = EDITS[case]
    hostile = copy.deepcopy(ckpt)
    edit(hostile, tmp_path)
    path = tmp_path / "hostile.ckpt"
    torch.save(hostile, path)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n1,1\n")
    for args in (["test", "--ckpt", str(path)],
                 ["predict", "--ckpt", str(path), "--input", str(pairs), "--output",
                  str(tmp_path / "out.csv")],
                 ["recommend", "--ckpt", str(path), "--users", "1"]):
        code, out, err = run(args, capsys)
        assert_one_line_error(code, err, *fragments)
        assert not (tmp_path / MARK).exists()
        assert not (tmp_path / "out.csv").exists()


def test_an_unedited_checkpoint_still_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, record = fit(tmp_path, capsys, "--model", "toy-mf", "--trainer.max_epochs", "1")
    code, out, err = run(["recommend", "--ckpt", record["checkpoint"], "--users", "1", "-k", "2"],
                         capsys)
    assert code == 0, err
    assert out.startswith("user,rank,item,score")


def test_the_size_check_builds_on_the_meta_device_and_names_the_need() -> None:
    big = torch.nn.Linear
    with pytest.raises(ConfigError, match=r"needs 4\.0 PiB .* available; lower it"):
        check_fits(lambda: big(2 ** 25, 2 ** 25), "the layer", "lower it")
    check_fits(lambda: big(4, 4), "the layer", "lower it")  # small: passes
