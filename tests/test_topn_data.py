"""Implicit feedback in the data module: the interaction threshold and the negative sampler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from reclight.data import RatingDataModule
from reclight.data.negatives import NegativeSampler
from reclight.data.sparse import SparseRows
from reclight.data.views import ViewContext, build_view
from reclight.errors import DataError
from reclight.testing import low_rank_ratings


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "user": ["1", "1", "1", "2", "2", "3", "3", "3"],
        "item": ["a", "b", "c", "a", "b", "a", "c", "d"],
        "rating": [5.0, 2.0, 4.0, 1.0, 3.0, 4.0, 5.0, 1.0],
    })


def test_all_ratings_count_by_default(frame) -> None:
    dm = RatingDataModule(frame, split="none")
    assert len(dm.train) == 8 and "implicit_threshold" not in dm.describe()


def test_threshold_keeps_ratings_at_or_above_and_counts_users_left_without(frame) -> None:
    dm = RatingDataModule(frame, split="none", implicit_threshold=4)
    assert len(dm.train) == 4 and dm.num_users == 2  # user 2 rated nothing at or above 4
    assert sorted(dm.user_map.raw.tolist()) == ["1", "3"]
    assert float(dm.train.ratings.min()) >= 4.0
    assert dm.dropped["threshold_users"] == 1 and dm.dropped["threshold_ratings"] == 4
    assert "implicit_threshold=4 skipped 4 ratings and 1 users left without interactions" \
        in dm.describe()


def test_threshold_applies_to_held_out_parts(frame) -> None:
    base = low_rank_ratings(num_users=30, num_items=20, seed=1)
    dm = RatingDataModule(base, split="random", test_size=0.3, implicit_threshold=4)
    assert float(dm.test.ratings.min()) >= 4.0 and float(dm.train.ratings.min()) >= 4.0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"implicit_threshold": 6}, r"implicit_threshold=6 leaves no interactions: the highest rating "
                                r"of DataFrame .* is 5; lower the threshold"),
])
def test_threshold_that_leaves_nothing_is_one_line(frame, kwargs, match) -> None:
    with pytest.raises(DataError, match=match) as info:
        RatingDataModule(frame, split="none", **kwargs)
    assert "\n" not in str(info.value)


def test_threshold_needs_ratings(frame) -> None:
    with pytest.raises(DataError, match=r"implicit_threshold=4 selects ratings but .* no rating "
                                        r"column"):
        RatingDataModule(frame.drop(columns="rating"), split="none", implicit_threshold=4)


# ---- the negative sampler ----------------------------------------------------------------------
def _matrix(num_users: int = 50, num_items: int = 40, density: float = 0.5,
            seed: int = 0) -> SparseRows:
    rng = np.random.default_rng(seed)
    dense = rng.random((num_users, num_items)) < density
    dense[0, :-1], dense[0, -1] = True, False  # user 0 has exactly one unobserved item
    users, items = np.nonzero(dense)
    return SparseRows.from_coo(torch.from_numpy(users), torch.from_numpy(items),
                               torch.ones(len(users)), (num_users, num_items))


@pytest.mark.parametrize("sampling", ["uniform", "popularity"])
def test_sampler_never_returns_a_training_positive(sampling) -> None:
    matrix = _matrix()
    _, seen = matrix.dense(torch.arange(matrix.shape[0]))
    sampler = NegativeSampler(matrix, sampling)
    users = torch.arange(matrix.shape[0]).repeat(40)
    gen = torch.Generator().manual_seed(3)
    negatives = sampler.sample(users, 5, gen)
    assert negatives.shape == (len(users), 5)
    assert not seen[users[:, None].expand(-1, 5), negatives].any()
    assert bool((negatives[users == 0] == matrix.shape[1] - 1).all())  # its only choice
    # ... and every unobserved item of a user does come up.
    drawn = torch.zeros_like(seen)
    drawn[users[:, None].expand(-1, 5), negatives] = True
    assert bool(drawn[1:].sum() > 0.9 * (~seen[1:]).sum())


def test_popularity_sampling_follows_the_counts() -> None:
    # Item 0 interacted by 30 users, item 1 by 3, items 2..9 by one each; user 99 by none.
    users = [u for u in range(30)] + [30, 31, 32] + list(range(40, 48))
    items = [0] * 30 + [1] * 3 + list(range(2, 10))
    matrix = SparseRows.from_coo(torch.tensor(users), torch.tensor(items),
                                 torch.ones(len(users)), (100, 10))
    gen = torch.Generator().manual_seed(0)
    pop = NegativeSampler(matrix, "popularity").sample(torch.full((20000,), 99), 1, gen)
    uni = NegativeSampler(matrix, "uniform").sample(torch.full((20000,), 99), 1, gen)
    share_pop, share_uni = float((pop == 0).float().mean()), float((uni == 0).float().mean())
    assert share_pop == pytest.approx(30 / 41, abs=0.02) and share_uni == pytest.approx(0.1, abs=0.01)


def test_view_batches_carry_negatives_and_skip_users_without_any() -> None:
    frame = low_rank_ratings(num_users=20, num_items=15, implicit=True).drop(columns="timestamp")
    full = pd.DataFrame({"user": ["full"] * 15, "item": [str(i) for i in range(15)]})
    dm = RatingDataModule(pd.concat([frame, full]), split="none", batch_size=32)
    ctx = ViewContext(data=dm.training_data, train=dm.train, batch_size=32, seed=0,
                      options={"num_negatives": 3})
    batches = list(build_view("negative_pairs", ctx))
    full_index = int(dm.user_map.to_index(["full"])[0])
    users = torch.cat([b["users"] for b in batches])
    assert len(users) == len(dm.train) - 15 and not bool((users == full_index).any())
    negatives = torch.cat([b["negatives"] for b in batches])
    assert negatives.shape == (len(users), 3) and negatives.dtype == torch.int64
    _, seen = dm.train_rows.dense(users)
    assert not seen.gather(1, negatives).any()
    again = list(build_view("negative_pairs", ctx))  # same seed and epoch: the same draws
    assert torch.equal(torch.cat([b["negatives"] for b in again]), negatives)


@pytest.mark.parametrize(("options", "match"), [
    ({"num_negatives": 0}, r"num_negatives=0 must be an integer >= 1"),
    ({"num_negatives": 1.5}, r"num_negatives=1\.5 must be an integer >= 1"),
    ({"negative_sampling": "zipf"}, r"negative sampling 'zipf' is unknown; choose one of "
                                    r"uniform, popularity"),
])
def test_bad_sampler_options_are_one_line(options, match) -> None:
    dm = RatingDataModule(low_rank_ratings(implicit=True), split="none")
    ctx = ViewContext(data=dm.training_data, train=dm.train, batch_size=8, options=options)
    with pytest.raises(DataError, match=match):
        build_view("negative_pairs", ctx)
