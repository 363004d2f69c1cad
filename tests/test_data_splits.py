"""Splits: predefined folds on real MovieLens 100K, and every strategy's guarantees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from reclight.data import SPLITS, RatingDataModule, make_synthetic
from reclight.data.sources import fold_files
from reclight.data.splits import (
    STRATEGIES,
    kfold_split,
    leave_k_out_split,
    random_split,
    split_positions,
    temporal_split,
)
from reclight.errors import DataError


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_synthetic(5000, seed=3)


def _raw_pairs(dm: RatingDataModule, part: str) -> set[tuple[str, str]]:
    ratings = getattr(dm, part)
    return set(zip(dm.user_map.to_raw(ratings.users).tolist(),
                   dm.item_map.to_raw(ratings.items).tolist()))


def test_every_split_name_is_accepted(ml100k_dir) -> None:
    # Each advertised name is a strategy the dispatch runs or a fold MovieLens 100K ships.
    users = np.repeat(np.arange(10), 4)
    for name in SPLITS:
        if name in STRATEGIES:
            train, test = split_positions(name, users, np.arange(len(users)))
            assert len(train) + len(test) == len(users)
        else:
            assert fold_files(ml100k_dir, name) is not None, name
    with pytest.raises(DataError, match="unknown split strategy 'u1'; choose one of random"):
        split_positions("u1", users, None)  # folds are the sources' job, not the dispatch's
    assert fold_files(ml100k_dir, "random") is None


def test_u1_on_movielens(ml100k_dir) -> None:
    dm = RatingDataModule(str(ml100k_dir), split="u1")
    assert (len(dm.train), len(dm.test), dm.num_users) == (80_000, 20_000, 943)
    assert dm.val is None and dm.split_name == "u1"
    base = pd.read_csv(ml100k_dir / "u1.base", sep="\t", header=None, dtype=str)
    assert dm.num_items == base[1].nunique()  # the id maps come from u1.base only
    assert _raw_pairs(dm, "train") == set(zip(base[0], base[1]))
    test = pd.read_csv(ml100k_dir / "u1.test", sep="\t", header=None, dtype=str)
    unseen_items = set(test[1]) - set(base[1])
    assert dm.num_unseen_test["items"] == len(unseen_items) > 0
    assert dm.num_unseen_test["ratings"] == int(test[1].isin(unseen_items).sum())
    assert int((dm.test.items == -1).sum()) == dm.num_unseen_test["ratings"]
    assert dm.rating_range == (1.0, 5.0)
    assert dm.global_mean == pytest.approx(base[2].astype(float).mean(), abs=1e-6)


def test_ua_fold_from_a_file_source(ml100k_dir) -> None:
    dm = RatingDataModule(str(ml100k_dir / "u.data"), split="ua", val_size=0.1)
    assert len(dm.train) + len(dm.val) == 90_570 and len(dm.test) == 9_430


def test_random_split_fraction_and_seed() -> None:
    train, test = random_split(1000, 0.2, seed=1)
    assert len(test) == 200 and len(train) == 800
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1000))
    assert np.array_equal(random_split(1000, 0.2, seed=1)[1], test)
    assert not np.array_equal(random_split(1000, 0.2, seed=2)[1], test)


def test_kfold_covers_every_rating_once() -> None:
    tests = [kfold_split(103, 5, f, seed=4)[1] for f in range(5)]
    joined = np.concatenate(tests)
    assert len(joined) == 103 and len(np.unique(joined)) == 103
    assert {len(t) for t in tests} <= {20, 21}
    train, test = kfold_split(103, 5, 2, seed=4)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 103


def test_leave_k_out_holds_latest_per_user() -> None:
    users = np.array([0, 0, 0, 1, 1, 2, 0, 1])
    stamps = np.array([5, 1, 9, 3, 4, 7, 2, 8])
    train, test = leave_k_out_split(users, stamps, 2, seed=0)
    # user 0 (4 ratings): its 2 latest (ts 9, 5); user 1 (3): ts 8, 4; user 2 (1): kept.
    assert test.tolist() == [0, 2, 4, 7]
    assert train.tolist() == [1, 3, 5, 6]


def test_leave_k_out_counts_on_data(frame) -> None:
    codes = pd.factorize(frame["user"])[0]
    counts = np.bincount(codes)
    train, test = leave_k_out_split(codes, frame["timestamp"].to_numpy(), 3, seed=0)
    held = np.bincount(codes[test], minlength=len(counts))
    assert np.array_equal(held, np.where(counts > 3, 3, 0))
    ts = frame["timestamp"].to_numpy()
    for user in np.flatnonzero(counts > 3)[:50]:  # held-out ones are the user's latest
        mine_train, mine_test = train[codes[train] == user], test[codes[test] == user]
        assert ts[mine_train].max() <= ts[mine_test].min()


def test_leave_k_out_without_timestamps_is_seeded() -> None:
    users = np.repeat(np.arange(50), 6)
    a = leave_k_out_split(users, None, 2, seed=5)[1]
    assert np.array_equal(a, leave_k_out_split(users, None, 2, seed=5)[1])
    assert not np.array_equal(a, leave_k_out_split(users, None, 2, seed=6)[1])
    assert np.array_equal(np.bincount(users[a]), np.full(50, 2))


def test_temporal_split_orders_time(frame) -> None:
    ts = frame["timestamp"].to_numpy()
    train, test = temporal_split(ts, 0.8)
    assert ts[train].max() < ts[test].min()
    assert len(test) / len(ts) == pytest.approx(0.2, abs=0.01)
    cut = int(np.median(ts))
    train, test = temporal_split(ts, float(cut))
    assert (ts[train] < cut).all() and (ts[test] >= cut).all()


def test_temporal_default_cut_uses_test_size(frame) -> None:
    dm = RatingDataModule(frame, split="temporal", test_size=0.25)
    assert len(dm.test) / len(frame) == pytest.approx(0.25, abs=0.01)
    assert int(dm.train.timestamps.max()) < int(dm.test.timestamps.min())


def test_split_none_trains_on_everything(frame) -> None:
    dm = RatingDataModule(frame, split="none")
    assert dm.test is None and len(dm.train) == len(frame)
    assert dm.test_dataloader() == [] and dm.predict_dataloader() == []


def test_datamodule_splits_are_reproducible(frame) -> None:
    for split in ("random", "kfold", "leave_k_out", "temporal"):
        a = RatingDataModule(frame, split=split, seed=7, val_size=0.1)
        b = RatingDataModule(frame, split=split, seed=7, val_size=0.1)
        assert _raw_pairs(a, "test") == _raw_pairs(b, "test")
        assert _raw_pairs(a, "val") == _raw_pairs(b, "val")
        assert len(a.train) + len(a.val) + len(a.test) == len(frame)
        assert not _raw_pairs(a, "train") & _raw_pairs(a, "test")


def test_validation_does_not_change_the_test_set(frame) -> None:
    plain = RatingDataModule(frame, split="random", seed=1)
    carved = RatingDataModule(frame, split="random", seed=1, val_size=0.2)
    assert _raw_pairs(plain, "test") == _raw_pairs(carved, "test")
    assert len(carved.val) == round(len(plain.train) * 0.2)
    assert _raw_pairs(carved, "train") | _raw_pairs(carved, "val") == _raw_pairs(plain, "train")


def test_split_positions_dispatch(frame) -> None:
    codes = pd.factorize(frame["user"])[0]
    ts = frame["timestamp"].to_numpy()
    for name in ("random", "kfold", "leave_k_out", "temporal", "none"):
        train, test = split_positions(name, codes, ts)
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
        assert len(train) + len(test) == len(frame)
        assert len(np.intersect1d(train, test)) == 0


def test_held_out_indices_use_training_maps() -> None:
    frame = pd.DataFrame({"user": ["a", "a", "b", "b", "c"], "item": ["x", "y", "x", "z", "w"],
                          "rating": [1.0, 2.0, 3.0, 4.0, 5.0], "timestamp": [1, 2, 3, 4, 5]})
    dm = RatingDataModule(frame, split="temporal", time_cut=4.0)
    assert dm.user_map.raw.tolist() == ["a", "b"] and dm.item_map.raw.tolist() == ["x", "y"]
    assert dm.test.users.tolist() == [1, -1] and dm.test.items.tolist() == [-1, -1]
    assert dm.num_unseen_test == {"ratings": 2, "users": 1, "items": 2}
    assert torch.equal(dm.test.ratings, torch.tensor([4.0, 5.0]))
    assert dm.test_raw.values.tolist() == [["b", "z"], ["c", "w"]]
