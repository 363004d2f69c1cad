"""The `reclight` command end to end, in-process, on a toy model registered by a fake plugin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from reclight.plugins import PluginSet, reset_plugins
from tests.cli_helpers import run_cli

from . import toy_plugin

SMALL = ["--data.synthetic_ratings", "3000", "--trainer.enable_progress_bar", "false"]


pytestmark = pytest.mark.usefixtures("toy_registry")


run = run_cli


def fit(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[Path, dict]:
    code, out, err = run(["fit", "--model", "toy", "--trainer.default_root_dir", str(tmp_path), *SMALL,
                          *extra], capsys)
    assert code == 0, err
    run_dir = Path(out.split("run dir: ")[1].split()[0])
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("reclight: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_fit_on_default_synthetic_data_writes_metrics_config_and_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["fit", "--model", "toy", "--trainer.default_root_dir", str(tmp_path), *SMALL], capsys)
    assert code == 0, err
    assert "synthetic" in err and "embedded default" in err
    assert "RMSE" in out and "run dir:" in out
    run_dir = Path(out.split("run dir: ")[1].split()[0])
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["metrics"]["test_rmse"] > 0 and "test_ndcg@10" in record["metrics"]
    assert Path(record["checkpoint"]).is_file()
    assert (run_dir / "metrics.csv").is_file()  # Lightning's CSV logger
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["name"] == "toy" and config["data"]["source"] == "synthetic"


def test_model_defaults_apply_under_user_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, _ = fit(tmp_path / "a", capsys)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == toy_plugin.ToyBiases.trainer_defaults["max_epochs"]
    assert config["data"]["batch_size"] == toy_plugin.ToyBiases.data_defaults["batch_size"]
    run_dir, _ = fit(tmp_path / "b", capsys, "--trainer.max_epochs", "1", "--data.batch_size", "100",
                     "--model.lr", "0.5")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (config["trainer"]["max_epochs"], config["data"]["batch_size"], config["model"]["lr"]) == (1, 100, 0.5)


def test_saved_config_reproduces_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, first = fit(tmp_path / "a", capsys)
    code, out, err = run(["fit", "--config", str(run_dir / "config.yaml"),
                          "--trainer.default_root_dir", str(tmp_path / "b")], capsys)
    assert code == 0, err
    second = json.loads((Path(out.split("run dir: ")[1].split()[0]) / "metrics.json").read_text())
    assert second["metrics"]["test_rmse"] == pytest.approx(first["metrics"]["test_rmse"], abs=1e-6)


def test_test_predict_recommend_from_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, record = fit(tmp_path, capsys)
    ckpt = record["checkpoint"]
    code, out, err = run(["test", "--ckpt", ckpt, "--trainer.default_root_dir", str(tmp_path / "t")], capsys)
    assert code == 0, err
    test_dir = Path(out.split("run dir: ")[1].split()[0])
    again = json.loads((test_dir / "metrics.json").read_text())
    assert again["metrics"]["test_rmse"] == pytest.approx(record["metrics"]["test_rmse"], abs=1e-6)

    from reclight.checkpoints import load_model

    model = load_model(ckpt)
    (u0, u1), (i0, i1) = model.user_map.to_raw([0, 1]), model.item_map.to_raw([0, 1])
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"user,item\n{u0},{i0}\n{u1},{i1}\nnobody,{i0}\n")
    preds = tmp_path / "preds.csv"
    code, out, err = run(["predict", "--ckpt", ckpt, "--input", str(pairs), "--output", str(preds)], capsys)
    assert code == 0, err
    table = pd.read_csv(preds, dtype=str)
    assert list(table.columns) == ["user", "item", "prediction"] and list(table["user"]) == [u0, u1, "nobody"]
    assert "1 of 3 pairs" in err  # the unseen user is counted, not a crash

    recs = tmp_path / "recs.csv"
    code, out, err = run(["recommend", "--ckpt", ckpt, "--users", f"{u0},{u1},nobody", "-k", "5",
                          "--output", str(recs)], capsys)
    assert code == 0, err
    table = pd.read_csv(recs, dtype=str)
    assert len(table) == 15 and set(table["user"]) == {u0, u1, "nobody"}
    seen = set(model.item_map.to_raw(torch.nonzero(model.seen_mask(torch.tensor([0]))[0]).flatten().numpy()))
    raw_user0 = model.user_map.to_raw([0])[0]
    code, out, err = run(["recommend", "--ckpt", ckpt, "--users", raw_user0, "-k", "5"], capsys)
    assert code == 0 and not seen & set(pd.read_csv(__import__("io").StringIO(out), dtype=str)["item"])

    code, out, err = run(["recommend", "--ckpt", ckpt, "--users", "0", "--output", str(recs)], capsys)
    assert_one_line_error(code, err, str(recs), "already exists", "--overwrite")
    assert len(pd.read_csv(recs)) == 15  # nothing overwritten
    code, out, err = run(["recommend", "--ckpt", ckpt, "--users", "0", "--output", str(recs),
                          "--overwrite"], capsys)
    assert code == 0 and len(pd.read_csv(recs)) == 10


def test_models_lists_plugins_quickly_and_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["models", "--json"], capsys)
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and rows["toy"]["plugin"] == "reclight-toy-tests"
    code, out, _ = run(["models"], capsys)
    assert "toy" in out and "reclight-toy-tests" in out


def test_models_does_not_import_torch() -> None:
    import subprocess
    import sys

    probe = "import sys; from reclight.cli import main\ntry:\n    main(['models'])\nexcept SystemExit: pass\n" \
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("NO-TORCH")


@pytest.mark.parametrize("args, fragments", [
    (["fit", "--model", "nosuchmodel"], ["unknown model 'nosuchmodel'", "toy"]),
    (["fit"], ["no model chosen", "--model"]),
    (["fit", "--model", "toy", "--data", "/no/such/file.csv"], ["/no/such/file.csv"]),
    (["fit", "--model", "toy", "--data.split", "sideways"], ["sideways", "random"]),
    (["fit", "--model", "toy", "--trainer.max_epochz", "3"], ["max_epochz"]),
    (["fit", "--model", "toy", "--model.lr", "fast"], ["lr"]),
    (["test", "--ckpt", "/no/such.ckpt"], ["/no/such.ckpt", "does not exist"]),
    (["fit", "--config", "/no/such.yaml"], ["/no/such.yaml"]),
])
def test_user_errors_are_one_line(args: list[str], fragments: list[str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, *fragments)


def test_foreign_checkpoints_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    code, _, err = run(["test", "--ckpt", str(text)], capsys)
    assert_one_line_error(code, err, "not a readable checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    code, _, err = run(["predict", "--ckpt", str(foreign), "--input", str(text), "--output",
                        str(tmp_path / "o.csv")], capsys)
    assert code == 2 and "reclight: error:" in err and "Traceback" not in err


def test_real_movielens_fold(ml100k_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["fit", "--model", "toy", "--data", str(ml100k_dir), "--data.split", "u1",
                          "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "2",
                          "--trainer.enable_progress_bar", "false"], capsys)
    assert code == 0, err
    record = json.loads((Path(out.split("run dir: ")[1].split()[0]) / "metrics.json").read_text())
    assert 0.85 < record["metrics"]["test_rmse"] < 1.2  # biases alone: about 0.95-1.0 on u1
    assert "20000" in record["data"] or "20,000" in record["data"]


def ratings_file(tmp_path: Path, lines: list[str], name: str = "ratings.tsv") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


@pytest.mark.parametrize("split_flags", [
    ["--data.split", "random", "--data.test_size", "0.1", "--data.seed", "0"],
    ["--data.split", "kfold", "--data.num_folds", "4", "--data.fold", "2"],
    ["--data.split", "leave_k_out", "--data.leave_k", "2"],
    ["--data.split", "temporal", "--data.time_cut", "0.8"],
])
def test_every_split_through_the_command(split_flags: list[str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from reclight.testing import low_rank_ratings

    frame = low_rank_ratings(50, 40)
    path = tmp_path / "ratings.csv"
    frame.rename(columns={"user": "userId", "item": "movieId"}).to_csv(path, index=False)
    _, record = fit(tmp_path / "runs", capsys, "--data", str(path), *split_flags)
    assert record["metrics"]["test_rmse"] > 0
    assert split_flags[1] in record["data"]


def test_builtin_name_reads_reclight_data(ml100k_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RECLIGHT_DATA", str(ml100k_dir.parent))
    _, record = fit(tmp_path, capsys, "--data", "ml-100k", "--data.split", "u2", "--trainer.max_epochs", "1")
    assert "20000 test" in record["data"]


@pytest.mark.parametrize("lines, flags, fragments", [
    ([], [], ["empty"]),
    (["1\t1\t5\t0", "1\t2\t4"], [], ["line 2"]),
    (["1\t1\t5\t0", "1\t2\tfive\t0"], [], ["line 2", "five"]),
    (["1\t1\t5\t0", "1\t2\tnan\t0"], [], ["line 2"]),
    (["1\t1\t5\t0", "1\t2\t9\t0"], ["--data.rating_range", "[1,5]"], ["9"]),
    (["1\t1\t5\t0", "1\t1\t4\t1", "2\t1\t3\t2"], ["--data.duplicates", "error"], ["duplicate"]),
])
def test_bad_ratings_files_are_one_line_errors(lines: list[str], flags: list[str], fragments: list[str],
                                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ratings_file(tmp_path, lines)
    code, _, err = run(["fit", "--model", "toy", "--data", str(path), *flags], capsys)
    assert_one_line_error(code, err, *fragments)


def test_split_leaving_test_set_empty_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ratings_file(tmp_path, ["1\t1\t5\t0", "1\t2\t4\t1", "2\t1\t3\t2"])
    code, _, err = run(["fit", "--model", "toy", "--data", str(path), "--data.split", "temporal",
                        "--data.time_cut", "99"], capsys)
    assert_one_line_error(code, err, "empty")


def test_a_broken_plugin_is_reported_and_the_others_work(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import EntryPoint

    from reclight import plugins

    monkeypatch.setattr(plugins, "entry_points", lambda group: [
        EntryPoint("broken", "reclight_no_such_module_xyz", "reclight")])
    plugin_set = PluginSet()
    plugin_set.load_entry_points()
    plugin_set.add(toy_plugin, "toy", "reclight-toy-tests", "0.0")
    reset_plugins(plugin_set)
    code, out, err = run(["models"], capsys)
    assert code == 0 and "toy" in out
    assert "plugin 'broken'" in err and "ModuleNotFoundError" in err and "skipped" in err


def test_fit_help_without_a_model_lists_data_trainer_flags_and_the_models(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["fit", "--help"], capsys)
    assert code == 0
    assert "--trainer.max_epochs" in out and "--data.split" in out and "toy" in out
    assert "--model.lr" not in out  # no other model's flags in disguise
    assert "--model NAME --help" in " ".join(out.split())


def test_model_name_with_equals_sign(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["fit", "--model.name=toy", "--trainer.default_root_dir", str(tmp_path),
                          *SMALL], capsys)
    assert code == 0, err
    assert yaml.safe_load((Path(out.split("run dir: ")[1].split()[0]) / "config.yaml").read_text())[
        "model"]["name"] == "toy"


def test_lightnings_gradient_clipping_and_accumulation_through_the_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, record = fit(tmp_path, capsys, "--trainer.gradient_clip_val", "1",
                    "--trainer.accumulate_grad_batches", "2")
    assert record["metrics"]["test_rmse"] > 0


@pytest.mark.parametrize("args, fragments", [
    (["--trainer.max_epochs", "-2"], ["bad trainer settings", "max_epochs", "-2"]),
    (["--trainer.limit_train_batches", "-1"], ["bad trainer settings", "limit_train_batches"]),
])
def test_trainer_misconfigurations_are_one_line(args: list[str], fragments: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["fit", "--model", "toy", *SMALL, *args], capsys)
    assert_one_line_error(code, err, *fragments)


def test_clipping_a_manual_model_is_one_line_naming_the_cause(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["fit", "--model", "toy-rows", "--trainer.default_root_dir", str(tmp_path),
                        *SMALL, "--trainer.gradient_clip_val", "1"], capsys)
    assert_one_line_error(code, err, "manual optimization", "gradient_clip_val")


def test_a_solver_through_the_command_checkpoints_every_epoch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["fit", "--model", "toy-solver", "--trainer.default_root_dir",
                          str(tmp_path), "--data.val_size", "0.1", *SMALL], capsys)
    assert code == 0, err
    record = json.loads((Path(out.split("run dir: ")[1].split()[0]) / "metrics.json").read_text())
    assert Path(record["checkpoint"]).name == "last.ckpt" and Path(record["checkpoint"]).is_file()
    assert {"train_rmse", "val_rmse", "test_rmse"} <= set(record["metrics"])
    best = [p.name for p in Path(record["checkpoint"]).parent.iterdir() if p.name != "last.ckpt"]
    assert len(best) == 1  # the best epoch by val_rmse, besides the last


def test_an_interaction_log_trains_an_implicit_model_and_refuses_an_explicit_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reclight.testing import low_rank_ratings

    log = tmp_path / "clicks.csv"
    low_rank_ratings(60, 40, implicit=True)[["user", "item"]].to_csv(log, index=False, header=False)
    code, _, err = run(["fit", "--model", "toy", "--data", str(log)], capsys)
    assert_one_line_error(code, err, "predicts ratings but the data has none", "--data.columns")
    code, out, err = run(["fit", "--model", "toy-itemknn", "--data", str(log),
                          "--trainer.default_root_dir", str(tmp_path), "--eval_k", "5,10",
                          "--data.val_size", "0.1", "--trainer.enable_progress_bar", "false"],
                         capsys)
    assert code == 0, err
    assert "interactions" in err
    record = json.loads((Path(out.split("run dir: ")[1].split()[0]) / "metrics.json").read_text())
    assert {"test_ndcg@5", "val_ndcg@5"} <= set(record["metrics"])
    assert "test_rmse" not in record["metrics"]
    assert Path(record["checkpoint"]).name == "last.ckpt"  # and the best epoch by val_ndcg@5
    users = ",".join(pd.read_csv(log, header=None, dtype=str)[0].unique()[:2])
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"user,item\n{users.split(',')[0]},1\nnobody,1\n")
    preds = tmp_path / "scores.csv"
    code, _, err = run(["predict", "--ckpt", record["checkpoint"], "--input", str(pairs),
                        "--output", str(preds)], capsys)
    assert code == 0, err
    table = pd.read_csv(preds)
    assert list(table.columns) == ["user", "item", "score"] and table["score"].isna().tolist() == [False, True]
    code, out, err = run(["recommend", "--ckpt", record["checkpoint"], "--users", users, "-k", "3"],
                         capsys)
    assert code == 0 and len(pd.read_csv(__import__("io").StringIO(out))) == 6


def test_a_solver_runs_on_two_processes_when_ddp_is_asked_for(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["fit", "--model", "toy-solver", "--trainer.default_root_dir", str(tmp_path),
                          "--trainer.devices", "2", "--trainer.strategy", "ddp_fork",
                          "--trainer.accelerator", "cpu", *SMALL], capsys)
    assert code == 0, err
    assert "test_rmse" in json.loads((Path(out.split("run dir: ")[1].split()[0]) /
                                      "metrics.json").read_text())["metrics"]


def test_fit_help_lists_trainer_data_and_model_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["fit", "--model", "toy", "--help"], capsys)
    assert code == 0
    for flag in ("--trainer.max_epochs", "--trainer.devices", "--data.split", "--data.columns",
                 "--model.lr", "--config"):
        assert flag in out


def test_compare_follows_the_cut_off_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "cmp"
    code, out, err = run(["compare", "--models", "toy,toy-solver", "--output", str(out_dir),
                          "--eval_k", "5", *SMALL], capsys)
    assert code == 0, err
    rows = pd.read_csv(out_dir / "summary.csv")
    assert "test_ndcg@5_mean" in rows.columns and "NDCG@5" in out
    assert rows[["test_rmse_mean", "test_ndcg@5_mean"]].notna().all().all()


def test_compare_prints_one_row_per_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["compare", "--models", "toy,toy-solver", "--trainer.default_root_dir",
                          str(tmp_path), *SMALL], capsys)
    assert code == 0, err
    rows = [line.split()[0] for line in out.splitlines()[1:]]
    assert rows == ["toy", "toy-solver"] and "test RMSE" in out


def test_compare_output_names_a_folder_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["compare", "--models", "toy", "--output", str(tmp_path / "table.csv"),
                        *SMALL], capsys)
    assert_one_line_error(code, err, "names a folder now", "--output runs/compare")


def test_datasets_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["datasets"], capsys)
    assert code == 0 and all(name in out for name in ("synthetic", "ml-100k", "ml-1m"))
