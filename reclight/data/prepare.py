"""From a standard ratings table to encoded train/validation/test tensors.

One pass, in bulk: check the rating range (an interaction log without ratings counts every
interaction as 1.0), resolve duplicate (user, item) pairs, drop users with too few ratings,
split, carve out validation, build the id maps from the training ratings only and encode
every part (ids unseen in training become -1).
Users and items are factorised once for the whole table; later steps work on int codes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from reclight.data.idmap import IdMap
from reclight.data.ratings import Ratings
from reclight.data.schema import same_number_ids
from reclight.data.splits import split_positions
from reclight.errors import DataError, DataWarning

DUPLICATE_POLICIES = ("last", "error")


@dataclass
class SplitOptions:
    """How to split; see RatingDataModule for the meaning of each field."""

    split: str = "random"
    test_size: float = 0.1
    val_size: float = 0.0
    num_folds: int = 5
    fold: int = 0
    leave_k: int = 1
    time_cut: float | None = None
    seed: int = 0


@dataclass
class Prepared:
    """Everything the DataModule exposes about its data."""

    user_map: IdMap
    item_map: IdMap
    train: Ratings
    val: Ratings | None
    test: Ratings | None
    val_raw: pd.DataFrame | None  # raw user/item ids of val, aligned with ``val``
    test_raw: pd.DataFrame | None
    rating_range: tuple[float, float]
    global_mean: float
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    implicit: bool = False  # the table had no rating column: every rating is 1.0


def check_rating_range(ratings: np.ndarray, rating_range: tuple[float, float] | None,
                       label: str) -> tuple[float, float]:
    """The given range after checking every rating lies in it, or the data's (min, max)."""
    if rating_range is None:
        return float(ratings.min()), float(ratings.max())
    lo, hi = (float(x) for x in rating_range)
    if not lo <= hi:
        raise DataError(f"rating_range=({lo}, {hi}) is empty; give (lowest, highest), e.g. (1, 5)")
    bad = (ratings < lo) | (ratings > hi)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(f"{int(bad.sum())} ratings of {label} are outside rating_range=({lo:g}, "
                        f"{hi:g}); the first is {float(ratings[first]):g} (rating #{first + 1}); "
                        "fix the data or widen rating_range")
    return lo, hi


def warn_same_number_ids(user_uniques: np.ndarray, item_uniques: np.ndarray,
                         label: str) -> None:
    """One counted :class:`DataWarning` per id column where distinct ids spell the same number.

    The policy: ids are text and compared exactly ("007" is not "7", see
    :mod:`reclight.data.schema`), so "1" and "1.0" stay two users; but a file that writes one
    id two ways is almost always an export mistake, so it is said, with the count and an
    example, instead of passing silently.
    """
    for role, uniques in (("user", user_uniques), ("item", item_uniques)):
        count, pair = same_number_ids(uniques)
        if count:
            warnings.warn(f"{count} {role} ids of {label} spell a number that another id spells "
                          f"differently (e.g. '{pair[0]}' and '{pair[1]}'); ids are compared as "
                          f"text, so they count as different {role}s; write each id one way if "
                          "they are the same", DataWarning, stacklevel=3)


def check_policy(policy: str) -> None:
    """DataError unless ``policy`` is a duplicates policy."""
    if policy not in DUPLICATE_POLICIES:
        raise DataError(f"duplicates='{policy}' is not a policy; choose one of "
                        f"{', '.join(DUPLICATE_POLICIES)}")


def duplicate_mask(keys: np.ndarray, policy: str, describe: Callable[[int], str]) -> np.ndarray:
    """bool mask of rows to keep: the last row of every repeated key (``policy="last"``), or
    DataError naming the first repeated pair (``policy="error"``). ``describe(row)`` names a
    row's pair for the message."""
    check_policy(policy)
    # A stable sort keeps equal keys in row order, so each run ends at its last occurrence.
    order = torch.sort(torch.from_numpy(keys), stable=True).indices.numpy()
    sorted_keys = keys[order]
    repeat = sorted_keys[1:] == sorted_keys[:-1]  # row order[j] has a later twin order[j+1]
    if not repeat.any():
        return np.ones(len(keys), dtype=bool)
    if policy == "error":
        first = int(order[:-1][repeat].min())
        times = int((keys == keys[first]).sum())
        raise DataError(f"{int(repeat.sum())} duplicate ratings: the pair {describe(first)} is "
                        f"rated {times} times (first at rating #{first + 1}); remove the repeats "
                        "or pass duplicates=last to keep the last one")
    keep = np.ones(len(keys), dtype=bool)
    keep[order[:-1][repeat]] = False
    return keep


def _ratings(users: np.ndarray, items: np.ndarray, frame_part: dict[str, np.ndarray],
             rows: np.ndarray) -> Ratings:
    ts = frame_part.get("timestamp")
    return Ratings(torch.from_numpy(users[rows]), torch.from_numpy(items[rows]),
                   torch.from_numpy(frame_part["rating"][rows]),
                   None if ts is None else torch.from_numpy(ts[rows]))


def prepare(frame: pd.DataFrame, options: SplitOptions, *, is_test: np.ndarray | None = None,
            rating_range: tuple[float, float] | None = None, duplicates: str = "last",
            min_user_ratings: int = 0, label: str = "the data",
            known_unique: bool = False, implicit_threshold: float | None = None) -> Prepared:
    """Encode and split a standard ratings table.

    ``is_test`` marks rows of a predefined test file (then ``options.split`` only names it);
    duplicates are resolved within each part. ``known_unique`` skips the duplicate check for
    sources that cannot have any (synthetic data). A table without a ``rating`` column is an
    implicit interaction log: every interaction gets rating 1.0, the range is (1.0, 1.0) and
    the result says ``implicit=True``. ``implicit_threshold`` keeps only the ratings at or
    above it as interactions (in every part, after duplicates are resolved); users left with
    none are skipped and counted in ``dropped["threshold_users"]``.
    """
    check_policy(duplicates)
    implicit = "rating" not in frame
    if implicit and rating_range is not None:
        lo, hi = rating_range
        raise DataError(f"rating_range=({lo:g}, {hi:g}) is for ratings but {label} has no rating "
                        "column (implicit interactions); drop rating_range or map a rating "
                        "column (columns='...,rating=NAME')")
    ratings = (np.ones(len(frame), dtype=np.float32) if implicit
               else frame["rating"].to_numpy(dtype=np.float32))
    rating_range = check_rating_range(ratings, rating_range, label)
    user_codes, user_uniques = pd.factorize(frame["user"])
    item_codes, item_uniques = pd.factorize(frame["item"])
    if not known_unique:
        warn_same_number_ids(user_uniques, item_uniques, label)
    columns = {"rating": ratings}
    if "timestamp" in frame:
        columns["timestamp"] = frame["timestamp"].to_numpy(dtype=np.int64)
    part = np.zeros(len(frame), dtype=np.int64) if is_test is None else is_test.astype(np.int64)
    keep = np.ones(len(frame), dtype=bool)
    if not known_unique:
        keys = (user_codes.astype(np.int64) * len(item_uniques) + item_codes) * 2 + part
        keep = duplicate_mask(keys, duplicates, lambda row: (
            f"(user '{frame['user'].iat[row]}', item '{frame['item'].iat[row]}')"))
    dropped = {"duplicates": int((~keep).sum()), "users": 0, "ratings": 0}
    if implicit_threshold is not None:
        keep &= _interactions(ratings, user_codes, keep, implicit_threshold, implicit, label,
                              dropped)
    if min_user_ratings > 0:
        keep &= _active_users(user_codes, keep, min_user_ratings, dropped)
    rows = np.flatnonzero(keep)
    user_codes, item_codes, part = user_codes[rows], item_codes[rows], part[rows]
    columns = {name: values[rows] for name, values in columns.items()}

    if is_test is None:
        train, test = split_positions(
            options.split, user_codes, columns.get("timestamp"), test_size=options.test_size,
            num_folds=options.num_folds, fold=options.fold, leave_k=options.leave_k,
            time_cut=options.time_cut, seed=options.seed)
    else:
        train, test = np.flatnonzero(part == 0), np.flatnonzero(part == 1)
        for name, positions in (("training", train), ("test", test)):
            if len(positions) == 0:
                file = (f"{options.split}.{'base' if name == 'training' else 'test'}"
                        if "/" not in options.split else f"--data.{name[:5]}")
                raise DataError(f"split '{options.split}' leaves the {name} set empty: its "
                                f"{file} file has no usable ratings; fix the file")
    train, val = _carve_validation(train, options)

    used_users = np.bincount(user_codes[train], minlength=len(user_uniques)) > 0
    used_items = np.bincount(item_codes[train], minlength=len(item_uniques)) > 0
    user_map, user_remap = IdMap.from_uniques(np.asarray(user_uniques), used_users)
    item_map, item_remap = IdMap.from_uniques(np.asarray(item_uniques), used_items)
    users, items = user_remap[user_codes], item_remap[item_codes]

    def held_out(positions: np.ndarray | None) -> tuple[Ratings | None, pd.DataFrame | None]:
        if positions is None:
            return None, None
        raw = frame.iloc[rows[positions]][["user", "item"]].reset_index(drop=True)
        return _ratings(users, items, columns, positions), raw

    val_ratings, val_raw = held_out(val)
    test_ratings, test_raw = held_out(test if options.split != "none" else None)
    unseen = {}
    for name, positions in (("val", val), ("test", test)):
        if positions is not None and len(positions):
            u_codes, i_codes = user_codes[positions], item_codes[positions]
            unseen[name] = {
                "ratings": int(((users[positions] < 0) | (items[positions] < 0)).sum()),
                "users": len(np.unique(u_codes[~used_users[u_codes]])),
                "items": len(np.unique(i_codes[~used_items[i_codes]])),
            }
    train_ratings = _ratings(users, items, columns, train)
    return Prepared(
        user_map=user_map, item_map=item_map, train=train_ratings, val=val_ratings,
        test=test_ratings, val_raw=val_raw, test_raw=test_raw, rating_range=rating_range,
        global_mean=float(train_ratings.ratings.double().mean()), unseen=unseen, dropped=dropped,
        implicit=implicit)


def _interactions(ratings: np.ndarray, user_codes: np.ndarray, keep: np.ndarray,
                  threshold: float, implicit: bool, label: str,
                  dropped: dict[str, int]) -> np.ndarray:
    """bool mask of rows rated at or above ``threshold``; counts the users left without any."""
    if implicit:
        raise DataError(f"implicit_threshold={threshold:g} selects ratings but {label} has no "
                        "rating column (every row already is an interaction); drop "
                        "implicit_threshold or map a rating column (columns='...,rating=NAME')")
    passing = ratings >= threshold
    if not (passing & keep).any():
        raise DataError(f"implicit_threshold={threshold:g} leaves no interactions: the highest "
                        f"rating of {label} is {float(ratings[keep].max()):g}; lower the "
                        "threshold or leave it unset so that all ratings count")
    size = int(user_codes.max()) + 1
    before = np.bincount(user_codes[keep], minlength=size) > 0
    after = np.bincount(user_codes[keep & passing], minlength=size) > 0
    dropped["threshold_users"] = int((before & ~after).sum())
    dropped["threshold_ratings"] = int((keep & ~passing).sum())
    return passing


def _active_users(user_codes: np.ndarray, keep: np.ndarray, minimum: int,
                  dropped: dict[str, int]) -> np.ndarray:
    """bool mask of rows whose user has at least ``minimum`` kept ratings; counts the drops."""
    counts = np.bincount(user_codes[keep], minlength=int(user_codes.max()) + 1)
    enough = counts[user_codes] >= minimum
    if not (enough & keep).any():
        raise DataError(f"min_user_ratings={minimum} removes every user (the most active has "
                        f"{int(counts.max())} ratings); lower min_user_ratings")
    dropped["users"] = int(((counts > 0) & (counts < minimum)).sum())
    dropped["ratings"] = int((keep & ~enough).sum())
    return enough


def _carve_validation(train: np.ndarray,
                      options: SplitOptions) -> tuple[np.ndarray, np.ndarray | None]:
    """A seeded random ``val_size`` fraction of the training positions as validation."""
    if options.val_size == 0:
        return train, None
    if not 0.0 < options.val_size < 1.0:
        raise DataError(f"val_size={options.val_size} must be 0 (no validation) or a fraction "
                        "in (0, 1), e.g. 0.05")
    count = round(len(train) * options.val_size)
    if count == 0 or count == len(train):
        raise DataError(f"val_size={options.val_size} leaves the validation set "
                        f"{'empty' if count == 0 else 'with every training rating'} "
                        f"({len(train)} training ratings); choose another val_size")
    # A seed stream of its own, so adding validation never changes the test split.
    chosen = np.zeros(len(train), dtype=bool)
    chosen[np.random.default_rng((options.seed, 1)).permutation(len(train))[:count]] = True
    return train[~chosen], train[chosen]
