"""Train/test splits as pure functions returning sorted row positions.

Every function returns ``(train_positions, test_positions)``: int64 numpy arrays of row
positions, each sorted, disjoint and together covering the rows they split. Randomness comes
from ``numpy.random.default_rng(seed)`` only, so a split is reproducible from its arguments.
No file system here: predefined folds (X.base/X.test) are read by :mod:`reclight.data.sources`,
which marks their test rows itself.
"""

from __future__ import annotations

import numpy as np

from reclight.errors import DataError

STRATEGIES = ("random", "kfold", "leave_k_out", "temporal", "none")
Positions = tuple[np.ndarray, np.ndarray]


def _complement(n: int, test: np.ndarray) -> Positions:
    in_test = np.zeros(n, dtype=bool)
    in_test[test] = True
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def random_split(n: int, test_size: float, seed: int) -> Positions:
    """Hold out ``round(n * test_size)`` random rows."""
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size={test_size} must be a fraction in (0, 1), e.g. 0.1")
    test = np.random.default_rng(seed).permutation(n)[:round(n * test_size)]
    return _complement(n, test)


def kfold_split(n: int, num_folds: int, fold: int, seed: int) -> Positions:
    """Fold ``fold`` (0-based) of ``num_folds`` over one seeded shuffle: each row is in exactly
    one test fold, and fold sizes differ by at most one."""
    if num_folds < 2:
        raise DataError(f"num_folds={num_folds} must be >= 2")
    if not 0 <= fold < num_folds:
        raise DataError(f"fold={fold} is out of range for num_folds={num_folds}; "
                        f"use 0..{num_folds - 1}")
    perm = np.random.default_rng(seed).permutation(n)
    return _complement(n, perm[n * fold // num_folds:n * (fold + 1) // num_folds])


def leave_k_out_split(users: np.ndarray, timestamps: np.ndarray | None, leave_k: int,
                      seed: int) -> Positions:
    """Hold out ``leave_k`` ratings of every user with more than ``leave_k`` ratings.

    ``users`` are integer user codes per row. The held-out ratings are each user's latest by
    timestamp (ties: the later row), or random ones (seeded) without timestamps. Users with
    at most ``leave_k`` ratings keep them all in training.
    """
    if leave_k < 1:
        raise DataError(f"leave_k={leave_k} must be >= 1")
    n = len(users)
    if timestamps is None:
        when = np.random.default_rng(seed).permutation(n)
        order = np.lexsort((when, users))
    else:
        order = np.lexsort((np.arange(n), timestamps, users))
    counts = np.bincount(users)
    sorted_users = users[order]
    group_start = np.cumsum(counts) - counts
    rank_from_end = counts[sorted_users] - 1 - (np.arange(n) - group_start[sorted_users])
    held = (rank_from_end < leave_k) & (counts[sorted_users] > leave_k)
    return _complement(n, order[held])


def temporal_split(timestamps: np.ndarray, time_cut: float) -> Positions:
    """Train on ratings before the cut, test on those at or after it.

    ``time_cut`` in (0, 1) is a quantile of the timestamps (0.9: the last 10% of the time
    line); ``time_cut`` >= 1 is an absolute timestamp in the data's unit.
    """
    if not time_cut > 0.0:
        raise DataError(f"time_cut={time_cut} must be a quantile in (0, 1) or an absolute "
                        "timestamp >= 1")
    cut = float(np.quantile(timestamps, time_cut)) if time_cut < 1.0 else float(time_cut)
    return np.flatnonzero(timestamps < cut), np.flatnonzero(timestamps >= cut)


def split_positions(name: str, users: np.ndarray, timestamps: np.ndarray | None, *,
                    test_size: float = 0.1, num_folds: int = 5, fold: int = 0,
                    leave_k: int = 1, time_cut: float | None = None, seed: int = 0) -> Positions:
    """Dispatch a split strategy by name over rows with user codes ``users``.

    Raises DataError for an unknown name, a temporal split without timestamps, bad
    parameters, and a split that leaves the train or (except ``none``) the test set empty.
    """
    n = len(users)
    if name == "none":
        return np.arange(n), np.zeros(0, dtype=np.int64)
    if name == "random":
        train, test = random_split(n, test_size, seed)
        hint = "raise test_size"
    elif name == "kfold":
        train, test = kfold_split(n, num_folds, fold, seed)
        hint = "use fewer folds or more data"
    elif name == "leave_k_out":
        train, test = leave_k_out_split(users, timestamps, leave_k, seed)
        hint = f"no user has more than leave_k={leave_k} ratings; lower leave_k"
    elif name == "temporal":
        if timestamps is None:
            raise DataError("split 'temporal' needs timestamps but the data has none; map a "
                            "timestamp column (columns='...,timestamp=NAME') or use split=random")
        cut = 1.0 - test_size if time_cut is None else time_cut
        train, test = temporal_split(timestamps, cut)
        hint = f"time_cut={cut} is after the last rating; choose an earlier cut"
        if len(train) == 0:
            raise DataError(f"split 'temporal' leaves the training set empty: time_cut={cut} is "
                            "at or before the first rating; choose a later cut")
    else:  # predefined folds never get here: their source marks the test rows itself
        raise DataError(f"unknown split strategy '{name}'; choose one of {', '.join(STRATEGIES)}")
    if len(test) == 0:
        raise DataError(f"split '{name}' leaves the test set empty ({n} ratings); {hint}")
    if len(train) == 0:
        raise DataError(f"split '{name}' leaves the training set empty ({n} ratings); "
                        "use a smaller test portion")
    return train, test
