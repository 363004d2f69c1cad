"""`reclight compare`: learning curves, summary, picture, failures and bad input, on toy models."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from reclight import hookimpl
from reclight.curves import LearningCurve, PeakMemory
from reclight.data import RatingDataModule
from reclight.plugins import PluginSet, reset_plugins
from reclight.testing import low_rank_ratings, quiet_trainer
from tests.cli_helpers import run_cli

from . import toy_plugin

SMALL = ["--data.synthetic_ratings", "2000", "--trainer.max_epochs", "3"]


class ToyFailsLater(toy_plugin.ToyBiases):
    """Biases that raise in the second epoch: a model failing mid-run (Koren 2010)."""

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.current_epoch >= 1:
            raise RuntimeError("the toy blew up in epoch 2")
        return super().training_loss(batch)


class FailingPlugin:
    @hookimpl
    def register_models(self, register: Any) -> None:
        register("toy-fails", ToyFailsLater, description="fails in its second epoch")


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    plugin_set = PluginSet()
    plugin_set.load_entry_points()
    plugin_set.add(toy_plugin, "toy", "reclight-toy-tests", "0.0")
    plugin_set.add(FailingPlugin(), "toy-fails", "reclight-toy-fails", "0.0")
    reset_plugins(plugin_set)
    yield
    reset_plugins(None)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli(["compare", *args], capsys)


def assert_refused(code: int, err: str, out_dir: Path, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("reclight: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not (out_dir / "runs").exists(), "something trained before the input was checked"


def test_compare_writes_curves_summary_and_a_picture(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "cmp"
    code, out, err = run(["--models", "toy,toy-mf", "--folds", "random,kfold", "--output",
                          str(out_dir), *SMALL, "--data.val_size", "0.1"], capsys)
    assert code == 0, err
    curves = pd.read_csv(out_dir / "results.csv")
    assert list(curves.columns) == ["model", "fold", "epoch", "seconds", "train_rmse",
                                    "val_rmse", "test_rmse"]
    assert len(curves) == 2 * 2 * 3  # models x folds x epochs
    assert curves[["train_rmse", "val_rmse", "test_rmse"]].notna().all().all()
    for _, run_curve in curves.groupby(["model", "fold"]):
        assert run_curve["seconds"].is_monotonic_increasing
    summary = pd.read_csv(out_dir / "summary.csv")
    assert list(summary["model"]) == ["toy", "toy-mf"] and (summary["folds"] == 2).all()
    for column in ("test_rmse_mean", "test_rmse_std", "test_mae_mean", "test_ndcg@10_mean",
                   "fit_seconds_mean", "peak_memory_mb"):
        assert summary[column].notna().all(), column
    # The last point of each curve is the model the core then tests: the same RMSE.
    runs = pd.read_csv(out_dir / "runs.csv")
    last = curves.groupby(["model", "fold"]).tail(1).set_index(["model", "fold"])["test_rmse"]
    for _, row in runs.iterrows():
        assert last[(row["model"], row["fold"])] == pytest.approx(row["test_rmse"], abs=1e-5)
    assert "toy-mf" in out and "±" in out and "test RMSE" in out
    import matplotlib.image

    image = matplotlib.image.imread(out_dir / "rmse_vs_time.png")
    assert image.shape[:2] == (720, 1200)
    assert (out_dir / "rmse_vs_time.svg").read_text().lstrip().startswith("<?xml")
    meta = json.loads((out_dir / "compare.json").read_text())
    assert meta["models"] == ["toy", "toy-mf"] and meta["folds"] == ["random", "kfold"]


def test_a_top_n_model_is_compared_by_its_ndcg(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "cmp"
    code, out, err = run(["--models", "toy,toy-itemknn", "--output", str(out_dir), *SMALL],
                         capsys)
    assert code == 0, err
    summary = pd.read_csv(out_dir / "summary.csv").set_index("model")
    assert summary.loc["toy-itemknn", "test_ndcg@10_mean"] > 0
    assert pd.isna(summary.loc["toy-itemknn", "test_rmse_mean"])
    assert "toy-itemknn: NDCG@10 0." in err + out and "toy: test RMSE" in err + out


def test_a_failing_model_is_reported_and_the_others_finish(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "cmp"
    code, out, err = run(["--models", "toy-fails,toy", "--output", str(out_dir), *SMALL], capsys)
    assert code == 0, err
    summary = pd.read_csv(out_dir / "summary.csv", keep_default_na=False)
    failed = summary.set_index("model").loc["toy-fails"]
    assert "the toy blew up in epoch 2" in failed["error"] and failed["folds"] == 0
    assert summary.set_index("model").loc["toy", "error"] == ""
    assert "blew up" in out  # in the terminal table
    curves = pd.read_csv(out_dir / "results.csv")
    assert list(curves.loc[curves["model"] == "toy-fails", "epoch"]) == [1]  # what it did
    assert len(curves[curves["model"] == "toy"]) == 3


def test_overrides_apply_to_their_model_only(tmp_path: Path, write: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    overrides = write("compare.yaml", "toy-mf:\n  trainer.max_epochs: 2\n  model:\n    dim: 3\n")
    out_dir = tmp_path / "cmp"
    code, _, err = run(["--models", "toy,toy-mf", "--overrides", str(overrides), "--output",
                        str(out_dir), *SMALL], capsys)
    assert code == 0, err
    epochs = pd.read_csv(out_dir / "results.csv").groupby("model")["epoch"].max()
    assert epochs.to_dict() == {"toy": 3, "toy-mf": 2}


def test_without_matplotlib_the_tables_are_written_and_one_line_says_how(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "reclight.compare_plot", None)  # import raises ImportError
    out_dir = tmp_path / "cmp"
    code, out, err = run(["--models", "toy", "--output", str(out_dir), *SMALL], capsys)
    assert code == 0, err
    assert (out_dir / "results.csv").is_file() and (out_dir / "summary.csv").is_file()
    assert not (out_dir / "rmse_vs_time.png").exists()
    notes = [line for line in out.splitlines() if "matplotlib" in line and "wrote" not in line]
    assert len(notes) == 1 and "reclight[plot]" in notes[0] and "--replot" in notes[0]


def test_replot_redraws_from_the_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "cmp"
    assert run(["--models", "toy", "--output", str(out_dir), *SMALL], capsys)[0] == 0
    (out_dir / "rmse_vs_time.png").unlink()
    code, out, err = run(["--replot", str(out_dir)], capsys)
    assert code == 0, err
    assert (out_dir / "rmse_vs_time.png").is_file()


@pytest.mark.parametrize("args, fragments", [
    (["--models", "toy,nosuch"], ["nosuch", "toy-mf"]),           # lists the installed ones
    (["--models", "toy", "--folds", "u1,u9"], ["u1"]),            # synthetic data: no fold files
    (["--models", "toy", "--folds", "random", "--data.split", "random"], ["--data.split"]),
])
def test_bad_input_is_one_line_before_anything_trains(
        args: list[str], fragments: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "cmp"
    code, _, err = run([*args, "--output", str(out_dir), *SMALL], capsys)
    assert_refused(code, err, out_dir, *fragments)


def test_an_unknown_fold_of_a_fold_folder_is_named(tmp_path: Path, write: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("u.data", "u1.base", "u1.test"):
        write(f"data/{name}", "1\t1\t5\t0\n2\t1\t3\t1\n")
    out_dir = tmp_path / "cmp"
    code, _, err = run(["--models", "toy", "--folds", "u1,u7", "--data", str(tmp_path / "data"),
                        "--output", str(out_dir)], capsys)
    assert_refused(code, err, out_dir, "u7.base", "its folds are u1,")


def test_an_output_folder_with_results_is_refused_unless_overwrite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "cmp"
    out_dir.mkdir()
    (out_dir / "summary.csv").write_text("mine\n")
    code, _, err = run(["--models", "toy", "--output", str(out_dir), *SMALL], capsys)
    assert_refused(code, err, out_dir, "already holds results", "--overwrite")
    assert (out_dir / "summary.csv").read_text() == "mine\n"
    code, _, err = run(["--models", "toy", "--output", str(out_dir), "--overwrite", *SMALL], capsys)
    assert code == 0, err
    assert "toy" in (out_dir / "summary.csv").read_text()


def test_an_overrides_section_for_a_model_not_compared_is_refused(
        tmp_path: Path, write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = write("compare.yaml", "toy-mf:\n  model.dim: 3\n")
    out_dir = tmp_path / "cmp"
    code, _, err = run(["--models", "toy", "--overrides", str(overrides), "--output", str(out_dir),
                        *SMALL], capsys)
    assert_refused(code, err, out_dir, "'toy-mf'", "not in --models (toy)")


@pytest.mark.parametrize("text, fragment", [(None, "does not exist"),
                                             ("toy: [unclosed\n", "is not valid YAML")])
def test_a_missing_or_broken_overrides_file_is_one_line(
        text: str | None, fragment: str, tmp_path: Path, write: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    overrides = tmp_path / "compare.yaml" if text is None else write("compare.yaml", text)
    out_dir = tmp_path / "cmp"
    code, _, err = run(["--models", "toy", "--overrides", str(overrides), "--output", str(out_dir),
                        *SMALL], capsys)
    assert_refused(code, err, out_dir, "--overrides file", fragment)


def test_config_and_overrides_files_are_read_by_the_same_helper(tmp_path: Path) -> None:
    """``--config`` (the fit CLI) and ``--overrides`` (compare) share one reader and its
    messages."""
    from reclight.errors import ConfigError
    from reclight.lightning_cli import model_name_from

    broken = tmp_path / "c.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="config file .* is not valid YAML"):
        model_name_from(["--config", str(broken)])
    with pytest.raises(ConfigError, match="config file .* does not exist; pass the path"):
        model_name_from(["--config", str(tmp_path / "none.yaml")])
    good = tmp_path / "g.yaml"
    good.write_text("model:\n  name: toy\n")
    assert model_name_from(["--config", str(good)]) == "toy"


def test_learning_curve_records_each_epoch_with_the_cores_rmse() -> None:
    dm = RatingDataModule(low_rank_ratings(), split="random", test_size=0.2, val_size=0.1, seed=0,
                          batch_size=64)
    model = toy_plugin.ToyMF(dm.training_data)
    curve = LearningCurve()
    trainer = quiet_trainer(max_epochs=4, callbacks=[curve])
    trainer.fit(model, datamodule=dm)
    assert [row["epoch"] for row in curve.rows] == [1, 2, 3, 4]
    assert all(b["seconds"] > a["seconds"] for a, b in zip(curve.rows, curve.rows[1:]))
    trainer.validate(model, datamodule=dm, verbose=False)
    assert curve.rows[-1]["val_rmse"] == pytest.approx(float(trainer.callback_metrics["val_rmse"]),
                                                       abs=1e-5)
    assert curve.rows[-1]["train_rmse"] < curve.rows[0]["train_rmse"]


def test_peak_memory_sees_a_large_allocation() -> None:
    with PeakMemory() as peak:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        block += 1
        import time

        time.sleep(0.1)
        del block
    if torch.cuda.is_available():
        pytest.skip("measured on the CPU")
    assert peak.megabytes > 50


def test_overrides_may_run_a_slow_model_on_some_folds_only(tmp_path: Path, write: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    overrides = write("compare.yaml", "toy-mf:\n  folds: [kfold]\n")
    out_dir = tmp_path / "cmp"
    code, out, err = run(["--models", "toy,toy-mf", "--folds", "random,kfold", "--overrides",
                          str(overrides), "--output", str(out_dir), *SMALL], capsys)
    assert code == 0, err
    runs = pd.read_csv(out_dir / "runs.csv")
    assert runs[["model", "fold"]].values.tolist() == [["toy", "random"], ["toy", "kfold"],
                                                      ["toy-mf", "kfold"]]
    bad = write("bad.yaml", "toy-mf:\n  folds: u3\n")
    code, _, err = run(["--models", "toy,toy-mf", "--folds", "random,kfold", "--overrides",
                        str(bad), "--output", str(tmp_path / "other"), *SMALL], capsys)
    assert_refused(code, err, tmp_path / "other", "must be some of --folds (random, kfold)", "u3")
