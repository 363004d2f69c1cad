"""Ids are normalised the same way everywhere: training, `predict`, `recommend --users` and
the IdMap lookups strip surrounding spaces and tabs, so a user known in training is never
served as unseen; a pairs header is recognised; repeated users are ranked once; ids that spell
one number two ways are counted in a warning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reclight import cli
from reclight.data import RatingDataModule
from reclight.data.idmap import IdMap
from reclight.data.readers import read_pairs, read_ratings
from reclight.data.schema import normalise_id
from reclight.errors import DataError, DataWarning
from reclight.serving import predict_pairs, recommend_users
from reclight.tables import parse_user_list
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.usefixtures("toy_registry")


run = run_cli


def _spaced_ratings(path: Path) -> Path:
    """Users written ' 1', '2 ', '\\t3' ... and items ' 10' ...: every id has spaces around it."""
    rng = np.random.default_rng(0)
    lines = []
    for row in range(400):
        user, item = row % 20 + 1, int(rng.integers(1, 30))
        pad = ("  ", " ", "\t", "")[row % 4]
        lines.append(f"{pad}{user} ,  {item}{pad},{int(rng.integers(1, 6))}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def spaced_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    from reclight.plugins import PluginSet, reset_plugins

    from . import toy_plugin

    plugin_set = PluginSet()
    plugin_set.load_entry_points()
    plugin_set.add(toy_plugin, "toy", "reclight-toy-tests", "0.0")
    reset_plugins(plugin_set)
    root = tmp_path_factory.mktemp("ids")
    data = _spaced_ratings(root / "spaced.csv")
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["fit", "--model", "toy", "--data", str(data), "--data.split", "none",
                      "--trainer.default_root_dir", str(root / "run"), "--trainer.max_epochs", "1",
                      "--trainer.enable_progress_bar", "false"])
        assert exit_info.value.code in (0, None)
    finally:
        reset_plugins(None)
    record = next((root / "run").rglob("metrics.json"))
    return json.loads(record.read_text())["checkpoint"]


def test_training_ids_lose_surrounding_spaces(tmp_path: Path) -> None:
    frame = read_ratings(_spaced_ratings(tmp_path / "s.csv"))
    assert set(frame["user"]) == {str(u) for u in range(1, 21)}
    assert not frame["item"].str.contains(r"^\s|\s$").any()
    module = RatingDataModule(source=frame.assign(user=" " + frame["user"]), split="none")
    assert " 1" not in module.user_map.raw and "1" in module.user_map.raw


def test_id_map_lookups_normalise_like_training() -> None:
    ids = IdMap.from_values(["1", "2", "10"])
    assert ids.to_index([" 1", "2\t", "10 ", "3"]).tolist() == [0, 1, 2, -1]
    assert normalise_id(" \t7 \r\n") == "7"
    assert normalise_id("\x1f7") == "\x1f7"  # only ASCII whitespace: one rule for pandas and Python


def test_predict_and_recommend_know_every_training_user(spaced_ckpt: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("u,i\n1,10\n 2 , 11\n3\t,12\n")
    frame, unseen = predict_pairs(spaced_ckpt, pairs)
    assert unseen == 0 and frame["user"].tolist() == ["1", "2", "3"]
    rows, unknown = recommend_users(spaced_ckpt, ["1", " 2", "3 "], 3)
    assert unknown == [] and rows["user"].unique().tolist() == ["1", "2", "3"]
    out = tmp_path / "preds.csv"
    code, _, err = run(["predict", "--ckpt", spaced_ckpt, "--input", str(pairs), "--output",
                        str(out)], capsys)
    assert code == 0 and "unseen" not in err, err
    assert len(pd.read_csv(out)) == 3  # the header `u,i` is no pair
    code, output, err = run(["recommend", "--ckpt", spaced_ckpt, "--users", " 1, 2 ,3", "-k", "2"],
                            capsys)
    assert code == 0 and "unknown" not in err, err


def test_recommend_ranks_a_repeated_user_once(spaced_ckpt: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_user_list("1,1,2, 1 ,,2") == ["1", "2"]
    code, out, err = run(["recommend", "--ckpt", spaced_ckpt, "--users", "1,1,2", "-k", "3"], capsys)
    assert code == 0, err
    rows = pd.read_csv(__import__("io").StringIO(out), dtype=str)
    assert len(rows) == 6 and not rows.duplicated().any()
    target = tmp_path / "recs.csv"
    code, _, err = run(["recommend", "--ckpt", spaced_ckpt, "--users", "2,1,2", "-k", "3",
                        "--output", str(target)], capsys)
    assert code == 0, err
    written = pd.read_csv(target, dtype=str)
    assert written["user"].drop_duplicates().tolist() == ["2", "1"] and len(written) == 6
    rows, _ = recommend_users(spaced_ckpt, ["1", "1 ", "1"], 2)  # the Python API too
    assert len(rows) == 2


@pytest.mark.parametrize("header", ["u,i", "user,item", "userId,movieId", "USER_ID , Item_Id",
                                    "who,what"])
def test_pairs_header_is_recognised(tmp_path: Path, header: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"{header}\n1,10\n2,20\n")
    frame = read_pairs(path)
    assert frame[["user", "item"]].values.tolist() == [["1", "10"], ["2", "20"]]


def test_pairs_without_header_and_with_text_ids(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("alice\tmatrix\tx\nbob\talien\ty\n")
    frame = read_pairs(path)
    assert frame["user"].tolist() == ["alice", "bob"] and frame["col2"].tolist() == ["x", "y"]
    path.write_text("1,10\n\n2,\n")
    with pytest.raises(DataError, match=r"line 3: missing user or item id"):
        read_pairs(path)
    path.write_text("user,item,user\n1,2,3\n")  # a repeated extra name keeps its column
    assert read_pairs(path).shape == (1, 3)


def test_ids_spelling_one_number_twice_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("1,10,4\n1.0,10,3\n2,20,5\n02,21,1\n3,10,2\n")
    with pytest.warns(DataWarning, match=r"4 user ids of .* \(e\.g\. '1' and '1\.0'\).*different "
                                         r"users"):
        module = RatingDataModule(source=str(path), split="none")
    assert module.num_users == 5  # the documented policy: text ids, counted, not merged
    path.write_text("1,10,4\n2,20,3\n10,10,5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        RatingDataModule(source=str(path), split="none")


def test_same_number_warning_is_one_cli_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.csv"
    rows = [f"{u},{i},{(u + i) % 5 + 1}" for u in range(1, 9) for i in range(1, 9)]
    path.write_text("\n".join(rows + ["1.0,3,4"]) + "\n")
    code, _, err = run(["fit", "--model", "toy", "--data", str(path), "--trainer.max_epochs", "1",
                        "--trainer.default_root_dir", str(tmp_path / "run"),
                        "--trainer.enable_progress_bar", "false"], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "spell a number" in line]
    assert len(lines) == 1 and lines[0].startswith("reclight: warning: 2 user ids"), err
