"""Seeded synthetic explicit ratings: the built-in ``synthetic`` data set.

Ratings follow the biased matrix-factorisation model (Koren, Bell and Volinsky, "Matrix
Factorization Techniques for Recommender Systems", IEEE Computer 2009):
``r = mu + b_u + b_i + p_u . q_i + noise``, rounded and clipped to the stars 1..5 (or, with
``step``, to multiples of ``step`` from ``step`` to 5: 0.5 gives MovieLens' half stars 0.5..5). Users and
items are drawn with power-law (Zipf-like) popularity, as in real rating logs. Everything is
vectorised numpy in int32/float32, so 25 million ratings take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reclight.data.schema import ids_from_codes
from reclight.errors import DataError

# Popularity exponents: weight of the k-th most popular user/item is k ** -exponent. Items are
# more skewed than users, as in MovieLens (top 10% of items hold about half the ratings).
USER_EXPONENT = 0.6
ITEM_EXPONENT = 0.8
MEAN = 3.6  # before rounding/clipping; the realised mean is about 3.5
USER_BIAS_STD = 0.35
ITEM_BIAS_STD = 0.45
INTERACTION_STD = 0.8  # standard deviation of p_u . q_i
START_TIME = 874_724_710  # 1997-09-20, the start of MovieLens 100K
TIME_SPAN = 3 * 365 * 86_400
MAX_DENSITY = 0.3
CHUNK = 1 << 22  # ratings scored per chunk, bounds the [chunk, rank] factor gathers


def default_sizes(num_ratings: int) -> tuple[int, int]:
    """Users and items for ``num_ratings`` ratings: about 50 ratings per user, 100 per item."""
    return max(num_ratings // 50, 200), max(num_ratings // 100, 100)


def _power_law(rng: np.random.Generator, size: int, n: int, exponent: float) -> np.ndarray:
    """``size`` draws from 0..n-1 with P(k) roughly proportional to (k+1) ** -exponent.

    Inverse CDF of the continuous power law on [1, n+1): one vectorised expression instead of
    a searchsorted over n cumulative weights.
    """
    y = rng.random(size)
    g = 1.0 - exponent
    k = ((np.power(n + 1.0, g) - 1.0) * y + 1.0) ** (1.0 / g)
    return np.minimum(k.astype(np.int64) - 1, n - 1)


def _draw_keys(rng: np.random.Generator, size: int, num_users: int, num_items: int,
               user_perm: np.ndarray, item_perm: np.ndarray) -> np.ndarray:
    """``size`` random (user, item) pairs encoded as user * num_items + item (int64)."""
    users = user_perm[_power_law(rng, size, num_users, USER_EXPONENT)].astype(np.int64)
    items = item_perm[_power_law(rng, size, num_items, ITEM_EXPONENT)]
    return users * num_items + items


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    # np.sort + neighbour comparison is an order of magnitude faster than np.unique here.
    keys = np.sort(keys)
    keep = np.empty(len(keys), dtype=bool)
    keep[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _distinct_pairs(rng: np.random.Generator, num_ratings: int, num_users: int,
                    num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``num_ratings`` distinct (user, item) pairs in random order."""
    user_perm = rng.permutation(num_users).astype(np.int32)
    item_perm = rng.permutation(num_items).astype(np.int32)
    # Every user and item first gets one pair, so (nearly) all of them appear in the data.
    cover_u = np.arange(num_users, dtype=np.int64) * num_items + item_perm[
        _power_law(rng, num_users, num_items, ITEM_EXPONENT)]
    cover_i = user_perm[_power_law(rng, num_items, num_users, USER_EXPONENT)].astype(
        np.int64) * num_items + np.arange(num_items)
    extra = max(num_ratings - num_users - num_items, 0)
    keys = np.concatenate([cover_u, cover_i, _draw_keys(
        rng, int(extra * 1.08) + 1000, num_users, num_items, user_perm, item_perm)])
    keys = _sorted_unique(keys)
    for _ in range(40):  # top up what the deduplication removed
        deficit = num_ratings - len(keys)
        if deficit <= 0:
            break
        more = _draw_keys(rng, 2 * deficit + 1000, num_users, num_items, user_perm, item_perm)
        keys = _sorted_unique(np.concatenate([keys, more]))
    if len(keys) < num_ratings:
        raise DataError(f"cannot draw {num_ratings} distinct ratings from {num_users} users x "
                        f"{num_items} items; lower synthetic_ratings or raise synthetic_users "
                        "or synthetic_items")
    keys = keys[rng.permutation(len(keys))[:num_ratings]]
    return (keys // num_items).astype(np.int32), (keys % num_items).astype(np.int32)


def _score(rng: np.random.Generator, users: np.ndarray, items: np.ndarray, num_users: int,
           num_items: int, rank: int, noise: float, step: float = 1.0) -> np.ndarray:
    """Stars ``step, 2 step, ..., 5`` (float32; integers 1..5 for step 1) from the biased
    low-rank model plus Gaussian noise."""
    b_u = rng.normal(0.0, USER_BIAS_STD, num_users).astype(np.float32)
    b_i = rng.normal(0.0, ITEM_BIAS_STD, num_items).astype(np.float32)
    # Entries with std s give dot products with std sqrt(rank) * s**2 = INTERACTION_STD.
    s = (INTERACTION_STD ** 2 / max(rank, 1)) ** 0.25
    p = rng.normal(0.0, s, (num_users, rank)).astype(np.float32)
    q = rng.normal(0.0, s, (num_items, rank)).astype(np.float32)
    out = np.empty(len(users), dtype=np.float32)
    for start in range(0, len(users), CHUNK):  # chunks of millions, bounding memory
        u, i = users[start:start + CHUNK], items[start:start + CHUNK]
        r = MEAN + b_u[u] + b_i[i] + noise * rng.standard_normal(len(u), dtype=np.float32)
        if rank:
            r += np.einsum("ij,ij->i", p[u], q[i])
        out[start:start + CHUNK] = r
    return np.clip(np.rint(out / step) * step, step, 5.0).astype(np.float32)


def make_synthetic(num_ratings: int = 20_000, num_users: int | None = None,
                   num_items: int | None = None, rank: int = 8, noise: float = 0.5,
                   seed: int = 0, step: float = 1.0) -> pd.DataFrame:
    """Generate a seeded synthetic rating log.

    Args:
        num_ratings: number of distinct (user, item) ratings (exact).
        num_users: size of the user pool; default ``max(num_ratings // 50, 200)``. Nearly all
            of them appear; a few of the least active may not.
        num_items: size of the item pool; default ``max(num_ratings // 100, 100)``.
        rank: rank of the latent user/item factors (0 = biases only).
        noise: standard deviation of the Gaussian noise added before rounding.
        seed: seed of the generator; the same arguments give the same data.
        step: rating resolution: ratings are multiples of ``step`` from ``step`` to 5 (1: the
            stars 1..5; 0.5: half stars 0.5..5).

    Returns:
        Columns ``user``/``item`` (str ids "1", "2", ...), ``rating`` (float32 integer stars
        1..5, mean about 3.5) and ``timestamp`` (int64 seconds, increasing with small jitter
        along the rows), in random (user, item) order, without duplicate pairs.
    """
    if num_ratings < 1:
        raise DataError(f"synthetic_ratings={num_ratings} must be >= 1")
    if rank < 0 or noise < 0:
        raise DataError(f"synthetic_rank={rank} and synthetic_noise={noise} must be >= 0")
    if not 0 < step <= 1 or abs(5.0 / step - round(5.0 / step)) > 1e-9:
        raise DataError(f"synthetic_step={step} must divide 5 and lie in (0, 1], e.g. 1 (stars "
                        "1..5) or 0.5 (half stars 0.5..5)")
    d_users, d_items = default_sizes(num_ratings)
    num_users = d_users if num_users is None else int(num_users)
    num_items = d_items if num_items is None else int(num_items)
    if num_users < 1 or num_items < 1:
        raise DataError(f"synthetic_users={num_users} and synthetic_items={num_items} must be >= 1")
    if num_ratings > MAX_DENSITY * num_users * num_items:
        raise DataError(
            f"synthetic_ratings={num_ratings} would fill more than {MAX_DENSITY:.0%} of "
            f"{num_users} users x {num_items} items; lower synthetic_ratings or raise "
            "synthetic_users/synthetic_items")
    rng = np.random.default_rng(seed)
    users, items = _distinct_pairs(rng, num_ratings, num_users, num_items)
    ratings = _score(rng, users, items, num_users, num_items, rank, noise, step)
    step = TIME_SPAN / num_ratings
    timestamps = (START_TIME + np.arange(num_ratings) * step).astype(np.int64)
    timestamps += rng.integers(0, max(int(step * 20), 1), num_ratings)
    return pd.DataFrame({
        "user": ids_from_codes(users, num_users),
        "item": ids_from_codes(items, num_items),
        "rating": ratings,
        "timestamp": timestamps,
    })


@dataclass(frozen=True)
class SyntheticSpec:
    """The arguments of :func:`make_synthetic`, held by the ``synthetic`` source until it
    loads (so resolving the source costs nothing and bad sizes fail where the data is made)."""

    num_ratings: int = 20_000
    num_users: int | None = None
    num_items: int | None = None
    rank: int = 8
    noise: float = 0.5
    seed: int = 0
    step: float = 1.0

    def generate(self) -> pd.DataFrame:
        """The rating log these arguments describe."""
        return make_synthetic(self.num_ratings, self.num_users, self.num_items, self.rank,
                              self.noise, self.seed, self.step)
