"""make_synthetic: seeded, realistic and duplicate-free."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclight.data import RatingDataModule, make_synthetic
from reclight.errors import DataError


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_synthetic(50_000, seed=11)


def test_schema_exact_count_and_distinct_pairs(data) -> None:
    assert list(data.columns) == ["user", "item", "rating", "timestamp"]
    assert data["user"].dtype == "str" and data["item"].dtype == "str"
    assert data["rating"].dtype == np.float32 and data["timestamp"].dtype == np.int64
    assert len(data) == 50_000
    assert not data.duplicated(["user", "item"]).any()


def test_deterministic_per_seed(data) -> None:
    pd.testing.assert_frame_equal(make_synthetic(50_000, seed=11), data)
    other = make_synthetic(50_000, seed=12)
    assert not other["rating"].equals(data["rating"])


def test_integer_ratings_in_range_with_realistic_mean(data) -> None:
    ratings = data["rating"].to_numpy()
    assert set(np.unique(ratings)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.3 < ratings.mean() < 3.8
    assert 0.8 < ratings.std() < 1.4


def test_power_law_popularity(data) -> None:
    for column, share in (("item", 0.3), ("user", 0.2)):
        counts = np.sort(data[column].value_counts().to_numpy())[::-1]
        top = counts[: max(len(counts) // 10, 1)].sum() / counts.sum()
        assert top > share, f"top 10% of {column}s hold only {top:.0%}"
        assert counts[0] > 5 * np.median(counts)


def test_default_sizes_and_density() -> None:
    for n in (1000, 20_000):
        df = make_synthetic(n)
        users, items = df["user"].nunique(), df["item"].nunique()
        assert len(df) == n and n / (users * items) < 0.3
    small = make_synthetic(1000)
    assert 150 <= small["user"].nunique() <= 200 and small["item"].nunique() <= 100


def test_explicit_sizes_bound_the_ids() -> None:
    df = make_synthetic(3000, num_users=100, num_items=200, rank=2, noise=0.0, seed=1)
    assert df["user"].astype(int).max() <= 100 and df["item"].astype(int).max() <= 200
    assert len(df) == 3000


def test_timestamps_increase_along_rows(data) -> None:
    ts = data["timestamp"].to_numpy()
    assert np.corrcoef(ts, np.arange(len(ts)))[0, 1] > 0.99
    assert (np.diff(ts) >= 0).mean() > 0.5


def test_low_rank_signal_is_learnable(data) -> None:
    # Item means carry real signal: they vary much more than noise of the per-item average.
    means = data.groupby("item")["rating"].agg(["mean", "count"])
    means = means[means["count"] >= 30]["mean"]
    assert means.std() > 0.3


def test_datamodule_synthetic_source() -> None:
    dm = RatingDataModule("synthetic", synthetic_ratings=4000, synthetic_users=200,
                          synthetic_items=100, seed=2)
    assert dm.source_name == "synthetic (4000 ratings)"
    assert len(dm.train) + len(dm.test) == 4000
    assert dm.num_users <= 200 and dm.num_items <= 100
    assert dm.rating_range == (1.0, 5.0)


def test_one_million_distinct_ratings_in_stars() -> None:
    # At this size the deduplication tops up thousands of repeated draws: the count must
    # still be exact, every pair distinct, ids within the default pools.
    df = make_synthetic(1_000_000, seed=0)
    assert len(df) == 1_000_000
    (user_codes, users), (item_codes, items) = (pd.factorize(df[c]) for c in ("user", "item"))
    keys = pd.Series(user_codes.astype(np.int64) * len(items) + item_codes)
    assert not keys.duplicated().any()
    assert users.astype(int).min() >= 1 and users.astype(int).max() <= 20_000  # default_sizes
    assert items.astype(int).min() >= 1 and items.astype(int).max() <= 10_000
    assert set(np.unique(df["rating"])) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_half_star_step() -> None:
    df = make_synthetic(5000, num_users=100, num_items=200, seed=3, step=0.5)
    stars = sorted(df["rating"].unique())
    assert stars[0] == 0.5 and stars[-1] == 5.0 and np.allclose(np.array(stars) * 2 % 1, 0)
    assert (df["rating"] * 2 % 2 == 1).mean() > 0.3  # half stars are common, not an edge case
    pd.testing.assert_frame_equal(make_synthetic(5000, num_users=100, num_items=200, seed=3),
                                  make_synthetic(5000, num_users=100, num_items=200, seed=3, step=1.0))
    dm = RatingDataModule("synthetic", synthetic_ratings=4000, synthetic_users=200,
                          synthetic_items=100, synthetic_step=0.5)
    assert dm.rating_range == (0.5, 5.0)
    with pytest.raises(DataError, match="synthetic_step=0.3"):
        make_synthetic(1000, step=0.3)
