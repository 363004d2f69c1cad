"""A user's own split: --data.train/--data.test files in any supported format, with or without a
header, and fold files X.base/X.test with a header row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reclight import cli
from reclight.data import RatingDataModule
from reclight.testing import low_rank_ratings

pytestmark = pytest.mark.usefixtures("toy_registry")


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    test = frame.sample(frac=0.2, random_state=0)
    return frame.drop(test.index), test


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    renamed = frame.rename(columns={"user": "userId", "item": "movieId", "rating": "stars"})
    if fmt == "csv-header":
        renamed.to_csv(path, index=False)
    elif fmt == "tsv-plain":
        frame.to_csv(path, sep="\t", index=False, header=False)
    elif fmt == "parquet":
        pytest.importorskip("pyarrow")
        renamed.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt, flags", [
    ("csv-header", ["--data.columns", "user=userId,item=movieId,rating=stars"]),
    ("tsv-plain", []),
    ("parquet", ["--data.columns", "user=userId,item=movieId,rating=stars"]),
])
def test_fit_on_own_train_and_test_files(fmt: str, flags: list[str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    train, test = _split(low_rank_ratings(40, 30))
    suffix = ".parquet" if fmt == "parquet" else ".txt"
    train_path = _write(train, tmp_path / f"train{suffix}", fmt)
    test_path = _write(test, tmp_path / f"test{suffix}", fmt)
    with pytest.raises(SystemExit) as done:
        cli.main(["fit", "--model", "toy", "--data.train", str(train_path), "--data.test",
                  str(test_path), "--trainer.default_root_dir", str(tmp_path / "runs"),
                  "--trainer.max_epochs", "2", *flags])
    out, err = capsys.readouterr()
    assert done.value.code in (0, None), err
    run_dir = Path(out.split("run dir: ")[1].split()[0])
    record = json.loads((run_dir / "metrics.json").read_text())
    # Exactly the user's test file was tested, every rating of it.
    assert f"{len(train)} train / 0 val / {len(test)} test ratings (split train/test files)" \
        in record["data"]
    assert record["metrics"]["test_rmse"] > 0 and "test_rmse" in record["baseline"]


def test_own_test_file_is_the_test_set_and_validation_comes_from_train(tmp_path: Path) -> None:
    train, test = _split(low_rank_ratings(40, 30))
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    dm = RatingDataModule(train=str(tmp_path / "train.csv"), test=str(tmp_path / "test.csv"),
                          val_size=0.1)
    assert len(dm.test) == len(test) and len(dm.train) + len(dm.val) == len(train)
    known = dm.test.known()
    got = sorted(zip(dm.test_raw["user"], dm.test_raw["item"], dm.test.ratings.tolist()))
    want = sorted(zip(test["user"].astype(str), test["item"].astype(str),
                      test["rating"].astype(np.float32).tolist()))
    assert got == want and bool(known.any())


def test_train_file_alone_is_split_by_the_split_setting(tmp_path: Path) -> None:
    frame = low_rank_ratings(40, 30)
    frame.to_csv(tmp_path / "train.csv", index=False)
    dm = RatingDataModule(train=str(tmp_path / "train.csv"), split="random", test_size=0.25)
    assert len(dm.test) == round(0.25 * len(frame))


@pytest.mark.parametrize("kwargs, fragment", [
    ({"test": "x.csv"}, "--data.test needs --data.train"),
    ({"train": "nowhere.csv", "test": "x.csv"}, "--data.train 'nowhere.csv' is not a file"),
    ({"train": "T", "test": "T", "source": "ml-100k"}, "not both"),
])
def test_bad_own_file_settings_are_one_line(kwargs: dict, fragment: str, tmp_path: Path) -> None:
    from reclight.errors import DataError

    path = tmp_path / "t.csv"
    path.write_text("user,item,rating\n1,1,5\n")
    kwargs = {k: (str(path) if v == "T" else v) for k, v in kwargs.items()}
    with pytest.raises(DataError, match=fragment.replace("(", r"\(")):
        RatingDataModule(**kwargs)


@pytest.mark.parametrize("header", [True, False])
def test_fold_files_with_or_without_a_header(header: bool, tmp_path: Path) -> None:
    train, test = _split(low_rank_ratings(30, 20))
    (tmp_path / "data").mkdir()
    for frame, name in ((train, "hidden.base"), (test, "hidden.test")):
        frame.to_csv(tmp_path / "data" / name, index=False, header=header)
    train.to_csv(tmp_path / "data" / "ratings.csv", index=False)
    dm = RatingDataModule(source=str(tmp_path / "data"), split="hidden")
    assert len(dm.train) == len(train) and len(dm.test) == len(test)
