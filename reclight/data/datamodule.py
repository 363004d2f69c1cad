"""RatingDataModule: ratings (or interactions) in, batches of the view a model asks for out.

All loading, id mapping and splitting happens in the constructor, so the training data
(:class:`~reclight.data.TrainingData`: id maps, matrix, sizes, range, mean, fallback biases) is
one value known before any model exists; the model is built from it. ``setup`` reads the rank
and world size for sharding and, from the Trainer's model, what it declares: the view it trains
on (``input_kind``, ``view_options``) and its feedback kind, which decides the evaluation
batches (pairs for rating errors, users for rankings). The DataModule never knows a model by
name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch

from reclight.data.idmap import IdMap
from reclight.data.prepare import Prepared, SplitOptions, check_policy, prepare
from reclight.data.ratings import Ratings
from reclight.data.sources import resolve_source, resolve_train_test
from reclight.data.sparse import SparseRows
from reclight.data.synthetic import SyntheticSpec
from reclight.data.training import TrainingData
from reclight.data.views import ORDERED, PairBatches, TopNBatches, ViewContext, build_view, check_view
from reclight.errors import DataError

# Top-N batches hold at most this many user x item cells, so the model's score matrix for a
# batch stays around 64 MiB however many items there are.
TOPN_CELLS = 1 << 24
OWN_FILES = "train/test files"  # the split name when --data.train and --data.test are given


class RatingDataModule(L.LightningDataModule):
    """Ratings or interactions from a file, a folder, a DataFrame or a built-in data set.

    After construction: ``training_data`` (the :class:`TrainingData` a model is built from),
    ``num_users``, ``num_items``, ``rating_range``, ``global_mean``, ``user_map``/``item_map``
    (built from the training part only), ``implicit`` (the source had no ratings),
    ``train``/``val``/``test`` (:class:`Ratings`; held-out ids unseen in training are -1),
    ``train_rows``/``item_rows`` (the training matrix, users x items and items x users),
    ``num_unseen_test``/``num_unseen_val`` (``{"ratings", "users", "items"}`` counts),
    ``test_raw`` (raw ids of the test ratings), ``source_name`` and ``split_name``. Its
    constructor arguments are saved with ``save_hyperparameters`` (a DataFrame source excepted),
    so a checkpoint knows how to rebuild the data.
    """

    def __init__(self, source: str = "synthetic", train: str | None = None,
                 test: str | None = None, split: str = "random",
                 test_size: float = 0.1, val_size: float = 0.0, num_folds: int = 5,
                 fold: int = 0, leave_k: int = 1, time_cut: float | None = None, seed: int = 0,
                 batch_size: int = 1024, eval_batch_size: int = 65536,
                 columns: str | None = None, sep: str | None = None,
                 rating_range: tuple[float, float] | None = None, duplicates: str = "last",
                 min_user_ratings: int = 0, synthetic_ratings: int = 20_000,
                 synthetic_users: int | None = None, synthetic_items: int | None = None,
                 synthetic_rank: int = 8, synthetic_noise: float = 0.5,
                 implicit_threshold: float | None = None,
                 synthetic_step: float = 1.0) -> None:
        """Load, clean, map and split the ratings now.

        Args:
            source: a ratings file (MovieLens u.data, ratings.dat, ratings.csv, any CSV/TSV,
                Parquet), a folder holding u.data/ratings.dat/ratings.csv, a built-in data set
                (synthetic, ml-100k, ml-1m), or, from Python, a pandas DataFrame.
            train: the user's own training file (instead of ``source``); with ``test`` the
                two files are the split, else ``split`` divides it.
            test: the user's own test file, beside ``train`` (same formats and columns).
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
            implicit_threshold: which ratings count as interactions: all of them (None, the
                default) or those at or above this value, in training and held-out parts
                alike; users left without interactions are skipped and counted in
                ``describe()``. Models keep seeing the kept rows' ratings.
            synthetic_step: resolution of the synthetic ratings: multiples of it from it to 5
                (1: stars 1..5; 0.5: half stars 0.5..5).
        """
        super().__init__()
        if isinstance(source, Path):
            source = str(source)  # saved as a plain string (checkpoints load weights_only)
        # What Lightning stores in checkpoints as datamodule_hyper_parameters; `reclight test`
        # rebuilds the data from it. A DataFrame is the user's object, not a setting.
        self.save_hyperparameters(ignore=["source"] if isinstance(source, pd.DataFrame) else None)
        check_policy(duplicates)
        if batch_size < 1 or eval_batch_size < 1:
            raise DataError(f"batch_size={batch_size} and eval_batch_size={eval_batch_size} "
                            "must be >= 1")
        if min_user_ratings < 0:
            raise DataError(f"min_user_ratings={min_user_ratings} must be >= 0")
        self.view, self.view_options, self.feedback = "pairs", {}, "explicit"
        self.eval_users: int | None = None
        self.ranking_sample: dict[str, int] | None = None
        self.seed = seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        if train is not None or test is not None:
            if train is None:
                raise DataError("--data.test needs --data.train (the training file) too")
            if not (isinstance(source, str) and source == "synthetic"):
                raise DataError("pass either a data source (--data) or your own files "
                                "(--data.train, --data.test), not both")
            src = resolve_train_test(train, test, columns=columns, sep=sep)
            if test is not None:
                split = OWN_FILES
        else:
            src = resolve_source(source, columns=columns, sep=sep, synthetic=SyntheticSpec(
                num_ratings=synthetic_ratings, num_users=synthetic_users,
                num_items=synthetic_items, rank=synthetic_rank, noise=synthetic_noise, seed=seed,
                step=synthetic_step))
        self.split_name = split
        self.rank, self.world_size = 0, 1
        options = SplitOptions(split=split, test_size=test_size, val_size=val_size,
                               num_folds=num_folds, fold=fold, leave_k=leave_k,
                               time_cut=time_cut, seed=seed)
        table = src.load(split)
        data = prepare(table.frame, options, is_test=table.is_test, rating_range=rating_range,
                       duplicates=duplicates, min_user_ratings=min_user_ratings,
                       label=table.label, known_unique=table.known_unique,
                       implicit_threshold=implicit_threshold)
        self.source_name = table.label
        self.implicit: bool = data.implicit  # no rating column: every rating is 1.0
        self._adopt(data)

    # ---- construction helpers ------------------------------------------------------------
    def _adopt(self, data: Prepared) -> None:
        self.training_data = TrainingData.from_ratings(data.train, data.user_map, data.item_map,
                                                       data.rating_range, data.implicit)
        self.train: Ratings = data.train
        self.val: Ratings | None = data.val
        self.test: Ratings | None = data.test
        self.val_raw: pd.DataFrame | None = data.val_raw
        self.test_raw: pd.DataFrame | None = data.test_raw
        empty = {"ratings": 0, "users": 0, "items": 0}
        self.num_unseen_test: dict[str, int] = data.unseen.get("test", dict(empty))
        self.num_unseen_val: dict[str, int] = data.unseen.get("val", dict(empty))
        self.dropped: dict[str, int] = data.dropped

    @property
    def user_map(self) -> IdMap:
        return self.training_data.user_map

    @property
    def item_map(self) -> IdMap:
        return self.training_data.item_map

    @property
    def num_users(self) -> int:
        return self.training_data.num_users

    @property
    def num_items(self) -> int:
        return self.training_data.num_items

    @property
    def rating_range(self) -> tuple[float, float]:
        return self.training_data.rating_range

    @property
    def global_mean(self) -> float:
        return self.training_data.global_mean

    @property
    def train_rows(self) -> SparseRows:
        """The users x items training matrix."""
        return self.training_data.matrix

    @property
    def item_rows(self) -> SparseRows:
        """The items x users training matrix (the transpose of ``train_rows``)."""
        return self.training_data.item_major

    # ---- Lightning hooks -----------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Read the rank and world size for sharding and the Trainer's model's declarations
        (cheap and idempotent)."""
        trainer = self.trainer
        if trainer is None:
            return
        self.rank, self.world_size = int(trainer.global_rank), int(trainer.world_size)
        model = getattr(trainer, "lightning_module", None)
        if model is not None and hasattr(model, "input_kind"):
            self.configure_for(model)
        # Not a reclight model: it gets the view chosen with set_view (default: pairs).

    def configure_for(self, model: Any) -> None:
        """Batches for ``model``: the view and options it declares (``input_kind``,
        ``view_options``) and evaluation batches for its ``feedback``; DataError when it was
        built for other training data. ``setup`` calls this for the Trainer's model."""
        data = getattr(model, "data", None)
        if isinstance(data, TrainingData) and data is not self.training_data and \
                not data.same_ids(self.training_data):
            raise DataError(f"the model was built for {data.num_users} users x {data.num_items} "
                            f"items, but the data has {self.num_users} x {self.num_items} with "
                            "other ids; build the model from this DataModule's training_data")
        self.set_view(model.input_kind, getattr(model, "view_options", None))
        self.feedback = getattr(model, "feedback", "explicit")

    def set_view(self, kind: str, options: Mapping[str, Any] | None = None) -> None:
        """Choose the training batches: a registered view (see :mod:`reclight.data.views`)
        and its options."""
        check_view(kind)
        self.view, self.view_options = kind, dict(options or {})

    def set_eval_users(self, count: int | None) -> None:
        """Rank a seeded sample of ``count`` test users (None: all of them); the sample is
        drawn from ``seed`` and recorded in ``ranking_sample``."""
        if count is not None and (isinstance(count, bool) or int(count) != count or count < 1):
            raise DataError(f"eval_users={count!r} must be an integer >= 1 (test users ranked), "
                            "or unset to rank every test user")
        self.eval_users = None if count is None else int(count)

    def _epoch(self) -> int:
        # A reloaded or resumed loader continues with the trainer's epoch's permutation. The
        # counter is the one Lightning gives samplers' set_epoch: on resuming from an epoch-end
        # checkpoint current_epoch is still one short when the loader is built (the resumed
        # run would repeat the killed epoch's order and end with other metrics).
        if self.trainer is None:
            return 0
        loop = getattr(self.trainer, "fit_loop", None)
        if loop is not None:
            return int(loop.epoch_progress.current.processed)
        return int(self.trainer.current_epoch)

    def train_dataloader(self) -> Iterable[dict[str, Any]]:
        """Training batches of the chosen view, sharded for this rank."""
        return build_view(self.view, ViewContext(
            data=self.training_data, train=self.train, batch_size=self.batch_size, seed=self.seed,
            rank=self.rank, world_size=self.world_size, epoch=self._epoch(),
            options=self.view_options))

    def _pairs(self, ratings: Ratings) -> PairBatches:
        return PairBatches(ratings, self.eval_batch_size, sharding=ORDERED, rank=self.rank,
                           world_size=self.world_size)

    def _ranking(self, ratings: Ratings, sample: bool = False) -> TopNBatches:
        """Top-N batches ``{"users", "targets"}`` over the users known in training that have at
        least one held-out item known in training (with ``sample`` and ``eval_users``: a
        seeded sample of them, the same on every rank)."""
        known = ratings.known()
        targets = SparseRows.from_coo(ratings.users[known], ratings.items[known],
                                      torch.ones(int(known.sum())),
                                      (self.num_users, self.num_items))
        users = torch.unique(ratings.users[known])
        if sample and self.eval_users is not None and self.eval_users < len(users):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + 2)
            chosen = torch.randperm(len(users), generator=gen)[:self.eval_users]
            self.ranking_sample = {"sampled": self.eval_users, "eligible": len(users),
                                   "seed": self.seed}
            users = torch.sort(users[chosen]).values
        per_batch = max(1, min(self.eval_batch_size, TOPN_CELLS // max(self.num_items, 1)))
        return TopNBatches(targets, users, per_batch, rank=self.rank, world_size=self.world_size)

    def _evaluation(self, ratings: Ratings | None, rankings: bool,
                    sample: bool = False) -> list[Any]:
        if ratings is None or len(ratings) == 0:
            return []
        loaders: list[Any] = [self._pairs(ratings)] if self.feedback == "explicit" else []
        if rankings:
            ranking = self._ranking(ratings, sample)
            if ranking.n:
                loaders.append(ranking)
        return loaders

    def val_dataloader(self) -> list[Any]:
        """Validation pairs (explicit models) or validation rankings (implicit models)."""
        return self._evaluation(self.val, rankings=self.feedback == "implicit")

    def test_dataloader(self) -> list[Any]:
        """Test pairs (explicit models) and test rankings, or ``[]`` with split=none."""
        return self._evaluation(self.test, rankings=True, sample=True)

    def predict_dataloader(self) -> list[Any]:
        """The test pairs in file order (as ``test_raw``), or ``[]`` with split=none."""
        return [] if self.test is None else [self._pairs(self.test)]

    # ---- reporting -----------------------------------------------------------------------
    def describe(self) -> str:
        """One line: sizes of the id maps and of each part, and the unseen counts."""
        n_val = len(self.val) if self.val is not None else 0
        n_test = len(self.test) if self.test is not None else 0
        kind = "interactions" if self.implicit else "ratings"
        line = (f"{self.source_name}: {self.num_users} users, {self.num_items} items; "
                f"{len(self.train)} train / {n_val} val / {n_test} test {kind} "
                f"(split {self.split_name})")
        unseen = self.num_unseen_test
        if n_test:
            line += (f"; unseen in test: {unseen['users']} users, {unseen['items']} items "
                     f"({unseen['ratings']} ratings)")
        if self.dropped.get("duplicates"):
            line += f"; {self.dropped['duplicates']} duplicate ratings dropped"
        if self.dropped.get("threshold_ratings"):
            line += (f"; implicit_threshold={self.hparams.implicit_threshold:g} skipped "
                     f"{self.dropped['threshold_ratings']} ratings and "
                     f"{self.dropped['threshold_users']} users left without interactions")
        if self.dropped.get("users"):
            line += (f"; {self.dropped['users']} users with too few ratings dropped "
                     f"({self.dropped['ratings']} ratings)")
        return line
