"""RatingDataModule: sources, id maps, cleaning policies, attributes and Lightning wiring."""

from __future__ import annotations

import pickle

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from reclight.data import IdMap, RatingDataModule, make_synthetic


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "user": ["10", "2", "2", "10", "7", "7", "2", "10"],
        "item": ["b", "a", "b", "c", "a", "c", "c", "a"],
        "rating": [4.0, 3.0, 5.0, 2.0, 1.0, 4.5, 3.5, 2.5],
        "timestamp": [1, 2, 3, 4, 5, 6, 7, 8],
    })


def test_dataframe_source_attributes(frame) -> None:
    dm = RatingDataModule(source=frame, split="none")
    assert dm.source_name == "DataFrame (8 rows)" and dm.split_name == "none"
    assert (dm.num_users, dm.num_items) == (3, 3)
    assert dm.user_map.raw.tolist() == ["2", "7", "10"]  # numeric order of integer ids
    assert dm.item_map.raw.tolist() == ["a", "b", "c"]
    assert dm.rating_range == (1.0, 5.0)
    assert dm.global_mean == pytest.approx(frame["rating"].mean())
    assert dm.train.users.dtype == torch.int64 and dm.train.ratings.dtype == torch.float32
    assert dm.train.timestamps.dtype == torch.int64 and len(dm.train) == 8
    assert dm.user_map.to_raw(dm.train.users).tolist() == frame["user"].tolist()
    assert dm.train_rows.shape == (3, 3) and dm.train_rows.nnz == 8
    assert dm.describe().startswith(
        "DataFrame (8 rows): 3 users, 3 items; 8 train / 0 val / 0 test")
    assert dm.implicit is False  # the frame has a rating column


def test_implicit_log_counts_each_interaction_as_one(write) -> None:
    path = write("plays.csv", "user,item,timestamp\n"
                              "u1,a,10\nu1,b,20\nu2,a,30\nu1,a,35\nu2,c,40\nu3,b,50\n")
    dm = RatingDataModule(str(path), split="temporal", time_cut=50.0)
    assert dm.implicit is True and dm.source_name == str(path)
    assert dm.rating_range == (1.0, 1.0) and dm.global_mean == 1.0
    assert dm.dropped["duplicates"] == 1  # (u1, a) again at 35: the last one is kept
    assert torch.equal(dm.train.ratings, torch.ones(4))
    assert dm.train.timestamps.tolist() == [20, 30, 35, 40]  # the timestamp column is kept
    assert dm.test.timestamps.tolist() == [50] and dm.test.ratings.tolist() == [1.0]
    assert dm.train_rows.nnz == 4 and (dm.num_users, dm.num_items) == (2, 3)


def test_implicit_dataframe_source() -> None:
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"]})
    dm = RatingDataModule(df, split="none")
    assert dm.implicit and dm.train.ratings.tolist() == [1.0, 1.0, 1.0]
    assert dm.train.timestamps is None


def test_ratings_mapped_away_load_a_fold_as_implicit(ml100k_dir) -> None:
    dm = RatingDataModule(str(ml100k_dir), split="u1", columns="user=0,item=1,timestamp=3")
    assert dm.implicit and (len(dm.train), len(dm.test)) == (80_000, 20_000)
    assert dm.rating_range == (1.0, 1.0) and bool((dm.test.ratings == 1.0).all())
    assert dm.train.timestamps is not None


def test_dataframe_with_other_column_names() -> None:
    df = pd.DataFrame({"who": [1, 2, 3, 1], "what": [5, 5, 6, 6], "stars": [1, 2, 3, 4]})
    dm = RatingDataModule(df, columns="user=who,item=what,rating=stars", split="none")
    assert dm.user_map.raw.tolist() == ["1", "2", "3"] and dm.item_map.raw.tolist() == ["5", "6"]


def test_global_mean_and_range_use_the_right_parts(frame) -> None:
    dm = RatingDataModule(frame, split="temporal", time_cut=7.0)
    assert dm.global_mean == pytest.approx(frame["rating"][:6].mean())
    assert dm.rating_range == (1.0, 5.0)
    fixed = RatingDataModule(frame, split="none", rating_range=(0.5, 5.0))
    assert fixed.rating_range == (0.5, 5.0)


def test_duplicates_last_keeps_the_last_occurrence() -> None:
    df = pd.DataFrame({"user": ["u", "u", "v", "u"], "item": ["i", "j", "i", "i"],
                       "rating": [1.0, 2.0, 3.0, 5.0]})
    dm = RatingDataModule(df, split="none", duplicates="last")
    assert len(dm.train) == 3 and dm.dropped["duplicates"] == 1
    values, _ = dm.train_rows.dense(torch.tensor([0]))
    assert values[0].tolist() == [5.0, 2.0]  # (u, i) -> the later 5.0, not 1.0
    assert "1 duplicate ratings dropped" in dm.describe()


def test_min_user_ratings_drops_light_users(frame) -> None:
    extra = pd.concat([frame, pd.DataFrame({"user": ["99"], "item": ["a"], "rating": [3.0],
                                            "timestamp": [9]})])
    dm = RatingDataModule(extra, split="none", min_user_ratings=2)
    assert "99" not in dm.user_map.raw.tolist() and dm.dropped["users"] == 1


def test_idmap_lookup_and_state() -> None:
    ids, codes = IdMap.fit(pd.Series(["b", "a", "c", "a"]))
    assert ids.raw.tolist() == ["a", "b", "c"] and codes.tolist() == [1, 0, 2, 0]
    assert ids.to_index(["c", "zz", "a", None]).tolist() == [2, -1, 0, -1]
    assert ids.to_index(np.array([], dtype=str)).tolist() == []
    assert ids.to_raw([2, 0]).tolist() == ["c", "a"]
    state = ids.state_dict()
    assert state == {"raw": ["a", "b", "c"]}
    assert IdMap.from_state(pickle.loads(pickle.dumps(state))) == ids
    numeric = IdMap.from_values([10, 9, 100, 9])
    assert numeric.raw.tolist() == ["9", "10", "100"] and len(numeric) == 3
    assert numeric.to_index([100, "9"]).tolist() == [2, 0]  # ints and strings look alike


def test_idmap_rejects_out_of_range_indices() -> None:
    from reclight.errors import DataError

    with pytest.raises(DataError, match="index -1 is not in the id map"):
        IdMap.from_values(["a"]).to_raw([-1])


def test_set_view_and_item_rows(frame) -> None:
    dm = RatingDataModule(frame, split="none")
    assert dm.view == "pairs" and dm.item_rows.shape == (3, 3)
    assert torch.equal(dm.item_rows.dense(torch.arange(3))[0], dm.train_rows.dense(torch.arange(3))[0].T)
    dm.set_view("user_rows", {"fixed_shards": True})
    assert dm.view == "user_rows" and dm.view_options == {"fixed_shards": True}


class _Probe(L.LightningModule):
    """A model-free LightningModule that records what the loaders deliver."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = {"train": 0, "val": 0, "test": [0, 0]}

    def training_step(self, batch, batch_idx):
        self.seen["train"] += len(batch["users"])
        return (self.w * batch["ratings"]).sum()

    def validation_step(self, batch, batch_idx):
        self.seen["val"] += len(batch["users"])

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        self.seen["test"][dataloader_idx] += len(batch["users"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*")
@pytest.mark.filterwarnings("ignore:Total length of .list. across ranks is zero")
@pytest.mark.parametrize("val_size", [0.0, 0.1])
def test_runs_under_a_lightning_trainer(val_size) -> None:
    dm = RatingDataModule(make_synthetic(3000, seed=2), val_size=val_size, batch_size=500)
    probe = _Probe()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(probe, datamodule=dm)
    trainer.test(probe, datamodule=dm, verbose=False)
    assert probe.seen["train"] == len(dm.train)
    assert probe.seen["val"] == (len(dm.val) if dm.val is not None else 0)
    topn_users = len(torch.unique(dm.test.users[dm.test.known()]))
    assert probe.seen["test"] == [len(dm.test), topn_users]


def test_constructor_is_a_cli_signature() -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(RatingDataModule, "data")
    args = parser.parse_args(["--data.source", "ml-100k", "--data.split", "u1",
                              "--data.rating_range", "[1, 5]", "--data.time_cut", "0.8"])
    assert args.data.source == "ml-100k" and args.data.rating_range == (1.0, 5.0)
    assert args.data.time_cut == 0.8 and "view" not in args.data  # the model chooses the view


def test_sources_import_without_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, reclight.data.sources, reclight.data.readers; "
            "assert 'torch' not in sys.modules and 'lightning' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_min_user_ratings_after_duplicates() -> None:
    # User c's two ratings are one duplicated pair: after dropping the repeat it has one.
    df = pd.DataFrame({"user": ["a", "a", "b", "b", "c", "c"],
                       "item": ["x", "y", "x", "y", "x", "x"],
                       "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 4.0]})
    dm = RatingDataModule(df, split="none", min_user_ratings=2)
    assert dm.user_map.raw.tolist() == ["a", "b"] and dm.dropped == {
        "duplicates": 1, "users": 1, "ratings": 1}
