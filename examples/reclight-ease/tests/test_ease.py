"""EASE's tests: reclight's contract kit, the closed form against an independent NumPy
implementation of the paper's formula, bad settings, the checkpoint and the plugin's command.

Run after installing the plugin (``reclight install -e .`` or ``pip install -e .``):
``python -m pytest`` in this folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reclight.errors import ConfigError
from reclight.testing import RecModelContract, low_rank_ratings, quiet_trainer
from reclight_ease.model import EASE
from reclight_ease.solver import ease_weights


class TestEASEContract(RecModelContract):
    """Every check reclight asks of a model; one solve is the whole fit."""

    model_name = "ease"
    model_kwargs = {"l2": 5.0}  # the contract's data are tiny: 40 users, 30 items
    fit_epochs = 1


def fitted(l2: float = 5.0) -> tuple[EASE, object]:
    kit = TestEASEContract()
    dm = kit.make_data()
    model = kit.make_model(dm, l2=l2)
    kit.fit(model, dm)
    return model, dm


def numpy_ease(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck (2019), equation 8, written out: B = I - P diag(1/diag(P)), P = (X^T X + l2 I)^-1."""
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    return np.eye(x.shape[1]) - p @ np.diag(1.0 / np.diag(p))


def test_weights_match_the_papers_closed_form() -> None:
    model, _ = fitted(l2=3.0)
    x = model.train_rows.dense(torch.arange(model.num_users))[1].double().numpy()
    expected = numpy_ease(x, 3.0)
    np.testing.assert_allclose(model.weights.double().numpy(), expected, atol=1e-5)
    assert np.abs(np.diag(model.weights.numpy())).max() == 0.0


def test_the_weights_minimise_the_objective_under_a_zero_diagonal() -> None:
    """Any other zero-diagonal matrix near B has a larger ||X - XB||^2 + l2 ||B||^2."""
    rng = np.random.default_rng(0)
    x = (rng.random((30, 12)) < 0.3).astype(float)
    b = ease_weights(torch.from_numpy(x.T @ x), 2.0).numpy()

    def objective(m: np.ndarray) -> float:
        return float(np.square(x - x @ m).sum() + 2.0 * np.square(m).sum())

    for _ in range(20):
        step = rng.normal(scale=1e-2, size=b.shape)
        np.fill_diagonal(step, 0.0)
        assert objective(b + step) > objective(b)


def test_scores_are_the_users_rows_times_the_weights() -> None:
    model, _ = fitted()
    users = torch.tensor([0, 3, 7])
    rows = model.train_rows.dense(users)[1].float()
    torch.testing.assert_close(model.score_items(users), rows @ model.weights)


def test_larger_l2_shrinks_the_weights() -> None:
    small, _ = fitted(l2=1.0)
    large, _ = fitted(l2=100.0)
    assert large.weights.abs().sum() < small.weights.abs().sum()


@pytest.mark.parametrize("l2", [0.0, -1.0, float("nan")])
def test_bad_l2_is_a_one_line_config_error(l2: float) -> None:
    data = TestEASEContract().make_data().training_data
    with pytest.raises(ConfigError, match="l2"):
        EASE(data, l2=l2)


def test_a_solve_larger_than_the_memory_is_refused_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import reclight_ease.model

    data = TestEASEContract().make_data().training_data  # builds an EASE itself: before the patch
    monkeypatch.setattr(reclight_ease.model, "_available_bytes", lambda: 1000)
    with pytest.raises(ConfigError, match=r"EASE on \d+ items needs about .* GiB .* available"):
        EASE(data)


def test_explicit_ratings_train_as_interactions() -> None:
    """Ratings are read as interactions: a 1-star and a 5-star rating weigh the same."""
    kit = TestEASEContract()
    frame = low_rank_ratings()
    flat = frame.assign(rating=3.0)
    weights = []
    for source in (frame, flat):
        dm = kit.make_data(source)
        model = kit.make_model(dm)
        quiet_trainer(max_epochs=1).fit(model, datamodule=dm)
        weights.append(model.weights)
    torch.testing.assert_close(weights[0], weights[1])


def checkpoint(tmp_path: Path) -> tuple[Path, EASE]:
    kit = TestEASEContract()
    dm = kit.make_data()
    model = kit.make_model(dm)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model, datamodule=dm)
    path = tmp_path / "ease.ckpt"
    trainer.save_checkpoint(path)
    return path, model


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``reclight ARGS`` in-process, as the console script runs it."""
    from reclight import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_hook_register_commands_adds_ease_similar(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path, model = checkpoint(tmp_path)
    item = str(model.item_map.to_raw([0])[0])
    code, out, err = run(["ease-similar", "--ckpt", str(path), "--items", item, "-k", "3"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "item,rank,similar_item,weight" and len(lines) == 4
    weights = model.weights[0].clone()
    weights[0] = float("-inf")
    expected = model.item_map.to_raw(torch.topk(weights, 3).indices.numpy())
    assert [line.split(",")[2] for line in lines[1:]] == list(expected)
    assert item not in [line.split(",")[2] for line in lines[1:]]


def test_ease_similar_rejects_an_unknown_item_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = checkpoint(tmp_path)
    code, _, err = run(["ease-similar", "--ckpt", str(path), "--items", "no-such-item"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("reclight: error: item(s) no-such-item")


def test_hook_register_models_lists_ease_without_importing_torch() -> None:
    """``reclight models`` imports the plugin's hook module only, which never imports torch."""
    import json
    import subprocess
    import sys

    probe = ("import sys, json; from reclight import cli\n"
             "try: cli.main(['models', '--json'])\n"
             "except SystemExit: pass\n"
             "print(json.dumps(sorted(m for m in ('torch', 'lightning', 'reclight_ease.model') "
             "if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    *listing, imported = done.stdout.strip().splitlines()
    assert any(row["name"] == "ease" and row["plugin"] == "reclight-ease"
               for row in json.loads("\n".join(listing)))
    assert json.loads(imported) == []
