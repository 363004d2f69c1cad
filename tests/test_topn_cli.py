"""Top-N through the command: streamed `recommend --users all`, `--eval_users`, bad input."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from reclight import cli
from reclight.checkpoints import load_model
from reclight.streaming import TopKWriter, stream_recommendations

from .test_cli import SMALL, assert_one_line_error, fit, run

pytestmark = pytest.mark.usefixtures("toy_registry")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One toy checkpoint shared by the module's read-only recommend tests (each test writes
    its own outputs): fitting once instead of once per test keeps the default suite cheap."""
    from reclight.plugins import PluginSet, reset_plugins

    from . import toy_plugin

    plugin_set = PluginSet()
    plugin_set.load_entry_points()
    plugin_set.add(toy_plugin, "toy", "reclight-toy-tests", "0.0")
    reset_plugins(plugin_set)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                pytest.raises(SystemExit) as exit_info:
            cli.main(["fit", "--model", "toy", "--trainer.default_root_dir",
                      str(tmp_path_factory.mktemp("fit")), *SMALL])
    finally:
        reset_plugins(None)
    assert not exit_info.value.code, err.getvalue()
    run_dir = Path(out.getvalue().split("run dir: ")[1].split()[0])
    return json.loads((run_dir / "metrics.json").read_text())["checkpoint"]


@pytest.mark.parametrize("name", ["recs.csv", "recs.parquet"])
def test_recommend_all_streams_every_user_with_raw_ids(ckpt: str, tmp_path: Path, name: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / name
    code, out, err = run(["recommend", "--ckpt", ckpt, "--users", "all", "-k", "4",
                          "--output", str(out_path)], capsys)
    assert code == 0, err
    table = (pd.read_parquet(out_path) if name.endswith("parquet")
             else pd.read_csv(out_path, dtype={"user": str, "item": str}))
    model = load_model(ckpt)
    assert list(table.columns) == ["user", "rank", "item", "score"]
    assert len(table) == 4 * model.num_users and f"wrote {len(table)}" in out
    assert set(table["user"]) == set(model.user_map.raw.tolist())
    # the same rows as ranking every user at once, in raw ids
    top, _ = model.eval().recommend(torch.arange(model.num_users), 4)
    expected = model.item_map.to_raw(top.reshape(-1).numpy())
    assert table["item"].astype(str).tolist() == [str(x) for x in expected]
    assert table["rank"].tolist() == [1, 2, 3, 4] * model.num_users
    assert not list(tmp_path.glob(".recs*"))  # no temporary file left


def test_streaming_batches_give_the_same_rows_as_one_batch(ckpt: str, tmp_path: Path) -> None:
    model = load_model(ckpt).eval()
    index = torch.arange(model.num_users)
    frames = []
    for cells, name in ((model.num_items * 7, "small.csv"), (1 << 30, "one.csv")):
        writer = TopKWriter(tmp_path / name)
        stream_recommendations(model, model.user_map.raw, index, 5, writer, cells=cells)
        writer.commit(pd.DataFrame(columns=["user", "rank", "item", "score"]))
        frames.append(pd.read_csv(tmp_path / name, dtype=str))
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_unknown_users_are_listed_in_a_warning_and_the_rest_written(
        ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = load_model(ckpt)
    known = model.user_map.to_raw([0, 1])
    out_path = tmp_path / "some.csv"
    code, out, err = run(["recommend", "--ckpt", ckpt, "--users", f"{known[0]},nobody,{known[1]},ghost",
                          "-k", "3", "--output", str(out_path)], capsys)
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("reclight: warning:")]
    assert len(warning) == 1 and "2 of 4 users are unknown to the model" in warning[0]
    assert "nobody, ghost" in warning[0]
    table = pd.read_csv(out_path, dtype=str)
    assert {known[0], known[1]} <= set(table["user"])


@pytest.mark.parametrize(("args", "fragments"), [
    (["-k", "0"], ["k=0", ">= 1"]),
    (["--output", "recs.txt"], ["recs.txt", "extension", ".csv", ".parquet"]),
    ([], ["--users all writes a file", "--output"]),
])
def test_bad_recommend_input_is_one_line(ckpt: str, tmp_path: Path, args: list[str],
                                         fragments: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(tmp_path / a) if a.endswith(".txt") else a for a in args]
    code, _, err = run(["recommend", "--ckpt", ckpt, "--users", "all", *args], capsys)
    assert_one_line_error(code, err, *fragments)


def test_eval_users_ranks_a_seeded_sample_recorded_in_metrics(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, full = fit(tmp_path / "a", capsys)
    _, sampled = fit(tmp_path / "b", capsys, "--eval_users", "10")
    _, again = fit(tmp_path / "c", capsys, "--eval_users", "10")
    eligible = int(full["metrics"]["test_users"])
    assert eligible > 10 and "eval_users" not in full
    assert sampled["eval_users"] == {"sampled": 10, "eligible": eligible, "seed": 0}
    assert sampled["metrics"]["test_users"] == 10
    assert sampled["metrics"]["test_ndcg@10"] == again["metrics"]["test_ndcg@10"]  # seeded
    assert sampled["metrics"]["test_rmse"] == full["metrics"]["test_rmse"]  # ratings: all of them


@pytest.mark.parametrize(("flag", "value", "fragments"), [
    ("--eval_users", "0", ["eval_users=0", "integer >= 1"]),
    ("--eval_k", "0", ["cut-offs", ">= 1"]),
    ("--eval_k", "5,x", ["5,x", "integers separated by commas"]),
    ("--data.implicit_threshold", "9", ["implicit_threshold=9 leaves no interactions"]),
    ("--data.implicit_threshold", "9", ["lower the threshold"]),
])
def test_bad_top_n_settings_are_one_line(tmp_path: Path, flag: str, value: str,
                                         fragments: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["fit", "--model", "toy", "--trainer.default_root_dir", str(tmp_path),
                        *SMALL, flag, value], capsys)
    assert_one_line_error(code, err, *fragments)


def test_metrics_json_holds_every_cut_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, record = fit(tmp_path, capsys, "--eval_k", "5,10")
    names = {f"test_{m}@{k}" for m in ("ndcg", "recall", "precision", "hit", "map", "mrr")
             for k in (5, 10)}
    assert names <= set(record["metrics"])
    assert json.loads((run_dir / "metrics.json").read_text())["eval_k"] == [5, 10]
