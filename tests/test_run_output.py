"""What `reclight fit`/`test` print: the closing summary beside the baseline, warnings as one
line each, no Lightning start-up noise unless --verbose, one line per epoch in a log."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from reclight import cli, console
from reclight.baseline import baseline_metrics
from reclight.data import RatingDataModule
from reclight.progress import EpochLines
from reclight.summary import _change, headline

from . import toy_plugin

RECLIGHT = str(Path(sys.executable).with_name("reclight"))
NOISE = ("GPU available", "TPU available", "Tip:", "Seed set", "| Name", "Trainable params",
         "Warning:", "\r")


def test_show_warning_prints_one_line_naming_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    console._shown.clear()
    path = "/x/.venv/lib/python3.11/site-packages/lightning/pytorch/trainer/setup.py"
    console.show_warning(UserWarning("first line\n  second line"), UserWarning, path, 12)
    console.show_warning(UserWarning("first line\n  second line"), UserWarning, path, 12)
    err = capsys.readouterr().err
    assert err == "reclight: warning: first line second line (lightning)\n"


def test_warnings_under_the_command_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        with pytest.raises(SystemExit):
            cli.main(["models"])  # installs the formatter
        capsys.readouterr()
        warnings.simplefilter("always")
        warnings.warn_explicit("something odd happened", UserWarning, "/work/reclight/model.py", 290)
    err = capsys.readouterr().err
    assert err == "reclight: warning: something odd happened\n"


def test_relative_change_says_better_or_worse() -> None:
    assert _change(0.9, 1.0, lower_is_better=True) == "10.0% better"
    assert _change(1.1, 1.0, lower_is_better=True) == "10.0% worse"
    assert _change(0.2, 0.1, lower_is_better=False) == "100.0% better"
    assert _change(1.0, 1.0, lower_is_better=True) == "no change"
    line = headline("mf", "explicit", {"test_rmse": 0.9, "test_mae": 0.7, "fit_seconds": 1.5},
                    {"test_rmse": 1.0, "test_mae": 0.8}, (10,))
    assert line == ("mf: test RMSE 0.9000 (baseline 1.0000, 10.0% better), "
                    "MAE 0.7000 (baseline 0.8000, 12.5% better); fit 1.50 s")


def test_baseline_metrics_are_mean_plus_damped_biases_on_the_test_split() -> None:
    dm = RatingDataModule(synthetic_ratings=4000, test_size=0.2, rating_range=(1.0, 5.0))
    model = toy_plugin.ToyMF(dm.training_data)
    got = baseline_metrics(model, dm)
    test, data = dm.test, dm.training_data
    known_u, known_i = test.users >= 0, test.items >= 0
    pred = data.global_mean + torch.where(known_u, data.user_bias[test.users.clamp_min(0)], 0.0) \
        + torch.where(known_i, data.item_bias[test.items.clamp_min(0)], 0.0)
    err = pred.clamp(1.0, 5.0) - test.ratings
    assert got["test_rmse"] == pytest.approx(float(err.pow(2).mean().sqrt()), rel=1e-5)
    assert got["test_mae"] == pytest.approx(float(err.abs().mean()), rel=1e-5)
    assert 0.0 < got["test_ndcg@10"] <= 1.0


def test_epoch_lines_replace_the_progress_bar(tmp_path: Path) -> None:
    dm = RatingDataModule(synthetic_ratings=3000, val_size=0.1)
    model = toy_plugin.ToyMF(dm.training_data)
    stream = io.StringIO()
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, callbacks=[EpochLines(stream)],
                        default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue()
    assert lines[0].startswith("epoch 1/3  train_loss ") and " val_rmse " in lines[0]
    assert lines[-1].endswith("s") and lines[-1].startswith("epoch 3/3")


def _reclight(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECLIGHT_LOAD_PLUGINS": "mf"}
    return subprocess.run([RECLIGHT, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


@pytest.mark.skipif(not Path(RECLIGHT).is_file(), reason="the reclight console script is not installed")
def test_a_fit_into_a_log_is_one_line_per_epoch_and_a_summary(tmp_path: Path) -> None:
    done = _reclight("fit", "--model", "mf", "--data.synthetic_ratings", "3000",
                     "--trainer.max_epochs", "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for noise in NOISE:
        assert noise not in done.stdout + done.stderr, noise
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [["epoch", f"{e}/4"] for e in range(1, 5)]
    assert any(line.startswith("mf: test RMSE ") and "baseline" in line and "fit " in line
               for line in lines)
    ckpt = "runs/mf/version_0/checkpoints/last.ckpt"
    assert f"checkpoint: {ckpt}" in lines and (tmp_path / ckpt).is_file()
    assert f"  {RECLIGHT} test --ckpt {ckpt}" in lines
    assert any(line.startswith(f"  {RECLIGHT} recommend --ckpt {ckpt} --users ") for line in lines)
    record = json.loads((tmp_path / "runs/mf/version_0/metrics.json").read_text())
    assert set(record["baseline"]) >= {"test_rmse", "test_mae", "test_ndcg@10"}
    assert [line for line in done.stderr.splitlines() if not line.startswith("data: ")] == []


@pytest.mark.parametrize("verbose", [False, True])
def test_lightning_info_lines_need_verbose(verbose: bool) -> None:
    import logging

    args = ["--model", "mf"] + (["--verbose"] if verbose else [])
    with console.lightning_noise(console.wants_verbose(args)):
        for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed"):
            assert logging.getLogger(name).isEnabledFor(logging.INFO) is verbose


def test_verbose_turns_the_model_summary_on() -> None:
    from reclight.lightning_cli import trainer_overrides

    dm = RatingDataModule(synthetic_ratings=3000)
    model = toy_plugin.ToyMF(dm.training_data)
    config = {"logger": False, "enable_model_summary": None}
    assert trainer_overrides(config, model, "toy", False)["enable_model_summary"] is False
    assert "enable_model_summary" not in trainer_overrides(config, model, "toy", False, verbose=True)


@pytest.mark.usefixtures("toy_registry")
def test_an_implicit_fit_is_judged_by_ndcg_against_popularity(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reclight.testing import low_rank_ratings

    log = tmp_path / "clicks.csv"
    low_rank_ratings(60, 40, implicit=True)[["user", "item"]].to_csv(log, index=False, header=False)
    with pytest.raises(SystemExit) as done:
        cli.main(["fit", "--model", "toy-itemknn", "--data", str(log), "--eval_k", "5",
                  "--trainer.default_root_dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert done.value.code in (0, None), err
    record = json.loads((Path(out.split("run dir: ")[1].split()[0]) / "metrics.json").read_text())
    base = record["baseline"]
    assert "test_rmse" not in base and 0.0 < base["test_ndcg@5"] <= 1.0
    line = next(line for line in out.splitlines() if line.startswith("toy-itemknn: test "))
    assert line.startswith(f"toy-itemknn: test NDCG@5 {record['metrics']['test_ndcg@5']:.4f} "
                           f"(baseline {base['test_ndcg@5']:.4f}, ")
    assert "baseline: popularity on the same split" in out
