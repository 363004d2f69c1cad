"""RatingDataModule: ratings in, batches of the view a model asks for out.

All loading, id mapping and splitting happens in the constructor, so the sizes, the rating
range and the global mean are known before any model exists (the CLI builds the model from
them). ``setup`` only reads the trainer's rank and world size for sharding.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader

from reclight.data.idmap import IdMap
from reclight.data.prepare import Prepared, SplitOptions, check_policy, prepare
from reclight.data.ratings import Ratings
from reclight.data.sources import resolve_source
from reclight.data.sparse import SparseRows
from reclight.data.synthetic import SyntheticSpec
from reclight.data.views import VIEWS, MatrixBatches, PairBatches, RowBatches, TopNBatches
from reclight.errors import DataError

# Top-N batches hold at most this many user x item cells, so the model's score matrix for a
# batch stays around 64 MiB however many items there are.
TOPN_CELLS = 1 << 24


class RatingDataModule(L.LightningDataModule):
    """Explicit ratings from a file, a folder, a DataFrame or a built-in data set.

    After construction: ``num_users``, ``num_items``, ``rating_range``, ``global_mean``,
    ``user_map``/``item_map`` (built from the training ratings only), ``train``/``val``/``test``
    (:class:`Ratings`; held-out ids unseen in training are -1), ``train_rows`` (users x items
    :class:`SparseRows`), ``num_unseen_test``/``num_unseen_val`` (``{"ratings", "users",
    "items"}`` counts), ``test_raw`` (raw ids of the test ratings), ``source_name`` and
    ``split_name``.
    """

    def __init__(self, source: str = "synthetic", split: str = "random",
                 test_size: float = 0.1, val_size: float = 0.0, num_folds: int = 5,
                 fold: int = 0, leave_k: int = 1, time_cut: float | None = None, seed: int = 0,
                 batch_size: int = 1024, eval_batch_size: int = 65536,
                 columns: str | None = None, sep: str | None = None,
                 rating_range: tuple[float, float] | None = None, duplicates: str = "last",
                 min_user_ratings: int = 0, synthetic_ratings: int = 100_000,
                 synthetic_users: int | None = None, synthetic_items: int | None = None,
                 synthetic_rank: int = 8, synthetic_noise: float = 0.5,
                 view: str = "pairs") -> None:
        """Load, clean, map and split the ratings now.

        Args:
            source: a ratings file (MovieLens u.data, ratings.dat, ratings.csv, any CSV/TSV,
                Parquet), a folder holding u.data/ratings.dat/ratings.csv, a built-in data set
                (synthetic, ml-100k, ml-1m), or, from Python, a pandas DataFrame.
            split: random, kfold, leave_k_out, temporal, none (everything trains, no test),
                or a predefined fold X whose X.base/X.test lie beside the ratings (u1..u5, ua,
                ub for MovieLens 100K: train on X.base, test on X.test).
            test_size: fraction held out by split=random (and the default quantile 1 -
                test_size of split=temporal).
            val_size: fraction of the training ratings held out, at random, for validation
                (0: no validation).
            num_folds: number of folds of split=kfold.
            fold: 0-based fold used as test set by split=kfold.
            leave_k: ratings held out per user by split=leave_k_out (the latest ones when
                there are timestamps, else random ones).
            time_cut: split=temporal cut: a quantile in (0, 1) of the timestamps, or an
                absolute timestamp (>= 1). Default: 1 - test_size.
            seed: seed of every random split, of the shuffling and of the synthetic data.
            batch_size: training batch size (ratings for pairs, rows for the row views).
            eval_batch_size: evaluation batch size (ratings; users for top-N, capped so a
                batch holds at most 16M user x item cells).
            columns: column mapping for files and DataFrames, e.g.
                "user=userId,item=movieId,rating=stars,timestamp=ts" or "user=0,item=1,rating=2".
            sep: field separator of a text file (",", "\\t", "::", "space"); sniffed if unset.
            rating_range: (lowest, highest) valid rating; ratings outside are an error. Default:
                the (min, max) of the data.
            duplicates: repeated (user, item) pairs: "last" keeps the last one in file order,
                "error" refuses the data.
            min_user_ratings: drop users with fewer ratings than this (before splitting).
            synthetic_ratings: number of ratings of the synthetic data set.
            synthetic_users: users of the synthetic data (default synthetic_ratings / 50).
            synthetic_items: items of the synthetic data (default synthetic_ratings / 100).
            synthetic_rank: rank of the synthetic low-rank structure.
            synthetic_noise: standard deviation of the synthetic rating noise.
            view: batches for training: pairs, user_rows, item_rows, implicit_user_rows or
                matrix (models set it from their input_kind).
        """
        super().__init__()
        self._check_view(view)
        check_policy(duplicates)
        if batch_size < 1 or eval_batch_size < 1:
            raise DataError(f"batch_size={batch_size} and eval_batch_size={eval_batch_size} "
                            "must be >= 1")
        if min_user_ratings < 0:
            raise DataError(f"min_user_ratings={min_user_ratings} must be >= 0")
        self.view = view
        self.seed = seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.split_name = split
        self.rank, self.world_size = 0, 1
        options = SplitOptions(split=split, test_size=test_size, val_size=val_size,
                               num_folds=num_folds, fold=fold, leave_k=leave_k,
                               time_cut=time_cut, seed=seed)
        src = resolve_source(source, columns=columns, sep=sep, synthetic=SyntheticSpec(
            num_ratings=synthetic_ratings, num_users=synthetic_users, num_items=synthetic_items,
            rank=synthetic_rank, noise=synthetic_noise, seed=seed))
        table = src.load(split)
        data = prepare(table.frame, options, is_test=table.is_test, rating_range=rating_range,
                       duplicates=duplicates, min_user_ratings=min_user_ratings,
                       label=table.label, known_unique=table.known_unique)
        self.source_name = table.label
        self.implicit: bool = data.implicit  # no rating column: every rating is 1.0
        self._adopt(data)

    # ---- construction helpers ------------------------------------------------------------
    @staticmethod
    def _check_view(kind: str) -> None:
        if kind not in VIEWS:
            raise DataError(f"unknown data view '{kind}'; choose one of {', '.join(VIEWS)}")

    def _adopt(self, data: Prepared) -> None:
        self.user_map: IdMap = data.user_map
        self.item_map: IdMap = data.item_map
        self.num_users: int = len(data.user_map)
        self.num_items: int = len(data.item_map)
        self.train: Ratings = data.train
        self.val: Ratings | None = data.val
        self.test: Ratings | None = data.test
        self.val_raw: pd.DataFrame | None = data.val_raw
        self.test_raw: pd.DataFrame | None = data.test_raw
        self.rating_range: tuple[float, float] = data.rating_range
        self.global_mean: float = data.global_mean
        empty = {"ratings": 0, "users": 0, "items": 0}
        self.num_unseen_test: dict[str, int] = data.unseen.get("test", dict(empty))
        self.num_unseen_val: dict[str, int] = data.unseen.get("val", dict(empty))
        self.dropped: dict[str, int] = data.dropped
        self.train_rows: SparseRows = SparseRows.from_coo(
            self.train.users, self.train.items, self.train.ratings,
            (self.num_users, self.num_items))
        self._item_rows: SparseRows | None = None

    # ---- Lightning hooks -----------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Read the rank and world size used for sharding (cheap and idempotent)."""
        trainer = self.trainer
        if trainer is not None:
            self.rank, self.world_size = int(trainer.global_rank), int(trainer.world_size)

    def set_view(self, kind: str) -> None:
        """Choose the training batches: one of :data:`VIEWS`."""
        self._check_view(kind)
        self.view = kind

    @property
    def item_rows(self) -> SparseRows:
        """Items x users training matrix (the transpose of ``train_rows``), built on first use."""
        if self._item_rows is None:
            self._item_rows = self.train_rows.transpose()
        return self._item_rows

    def _epoch(self) -> int:
        # A reloaded or resumed loader continues with the trainer's epoch's permutation.
        return int(self.trainer.current_epoch) if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches of the current view (see :mod:`reclight.data.views`)."""
        shard: dict[str, Any] = {"seed": self.seed, "rank": self.rank,
                                 "world_size": self.world_size}
        if self.view == "pairs":
            ds: Any = PairBatches(self.train, self.batch_size, shuffle=True, **shard)
        elif self.view in ("user_rows", "implicit_user_rows"):
            ds = RowBatches(self.train_rows, torch.arange(self.num_users), self.batch_size,
                            shuffle=True, implicit=self.view == "implicit_user_rows", **shard)
        elif self.view == "item_rows":
            ds = RowBatches(self.item_rows, torch.arange(self.num_items), self.batch_size,
                            shuffle=True, **shard)
        else:
            ds = MatrixBatches(self.train_rows, rank=self.rank, world_size=self.world_size)
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(self._epoch())
        return DataLoader(ds, batch_size=None, num_workers=0)

    def _pairs(self, ratings: Ratings) -> DataLoader:
        return DataLoader(PairBatches(ratings, self.eval_batch_size, shuffle=False,
                                      rank=self.rank, world_size=self.world_size),
                          batch_size=None, num_workers=0)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """Validation pairs in order, or ``[]`` without a validation set."""
        return [] if self.val is None else self._pairs(self.val)

    def topn_dataloader(self) -> DataLoader:
        """Top-N batches ``{"users", "targets"}`` over test users known in training that have
        at least one held-out item known in training."""
        test = self.test if self.test is not None else Ratings.empty()
        known = test.known()
        targets = SparseRows.from_coo(test.users[known], test.items[known],
                                      torch.ones(int(known.sum())),
                                      (self.num_users, self.num_items))
        users = torch.unique(test.users[known])
        per_batch = max(1, min(self.eval_batch_size, TOPN_CELLS // max(self.num_items, 1)))
        ds = TopNBatches(targets, users, per_batch, rank=self.rank, world_size=self.world_size)
        return DataLoader(ds, batch_size=None, num_workers=0)

    def test_dataloader(self) -> list[DataLoader]:
        """``[pairs over the test ratings, top-N users]``, or ``[]`` with split=none."""
        if self.test is None:
            return []
        return [self._pairs(self.test), self.topn_dataloader()]

    def predict_dataloader(self) -> DataLoader | list[DataLoader]:
        """The test pairs in file order (as ``test_raw``), or ``[]`` with split=none."""
        return [] if self.test is None else self._pairs(self.test)

    # ---- reporting -----------------------------------------------------------------------
    def describe(self) -> str:
        """One line: sizes of the id maps and of each part, and the unseen counts."""
        n_val = len(self.val) if self.val is not None else 0
        n_test = len(self.test) if self.test is not None else 0
        line = (f"{self.source_name}: {self.num_users} users, {self.num_items} items; "
                f"{len(self.train)} train / {n_val} val / {n_test} test ratings "
                f"(split {self.split_name})")
        unseen = self.num_unseen_test
        if n_test:
            line += (f"; unseen in test: {unseen['users']} users, {unseen['items']} items "
                     f"({unseen['ratings']} ratings)")
        if self.dropped.get("duplicates"):
            line += f"; {self.dropped['duplicates']} duplicate ratings dropped"
        if self.dropped.get("users"):
            line += (f"; {self.dropped['users']} users with too few ratings dropped "
                     f"({self.dropped['ratings']} ratings)")
        return line
