"""The plugin author's test kit: one contract every reclight model passes.

Usage in a plugin's tests::

    from reclight.testing import RecModelContract

    class TestMF(RecModelContract):
        model_name = "mf"                 # the registered name
        model_kwargs = {"dim": 8}         # small settings that keep the checks fast

Every check runs on a tiny data set with a known answer, takes seconds, and reads only what
the model declares (its feedback kind, training kind and view, taken from the instance), never
its name. What it enforces:

- declarations: ``feedback``, ``training_kind`` and ``input_kind`` are valid (the view is
  registered), ``trainer_defaults``/``data_defaults`` name real Trainer/DataModule arguments,
  the class has a docstring and its module's docstring cites the paper (a year);
- one training step is finite and reaches the parameters (a solver's step leaves finite state);
  unobserved entries of a masked row batch do not change an explicit model's loss;
- training beats the trivial baseline on held-out data: the global mean's RMSE (explicit), item
  popularity's NDCG@10 (implicit);
- on a checkerboard (two groups of users who like the items of their own group) each user's
  held-out item ranks first once training items are excluded;
- ``recommend`` never returns a training item and copes with more items asked than exist;
- a checkpoint round trip gives identical predictions and scores, and keeps the id maps;
- unseen ids fall back without a crash; every item is scored;
- degenerate data (one user, one item, an almost empty matrix) train and predict finitely.

``fit_small(epochs, **overrides)`` fits a fresh model on the contract's data for a plugin's own
tests of its options. Lightning's start-up messages are off in every Trainer the kit builds.
"""

from __future__ import annotations

import math

import inspect
import re
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from reclight.checkpoints import load_model
from reclight.data import RatingDataModule
from reclight.data.views import VIEWS
from reclight.evaluation import FEEDBACK
from reclight.metrics import topn_per_user
from reclight.model import TRAINING_KINDS, RecModel
from reclight.registry import get_registry

YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")


def low_rank_ratings(num_users: int = 40, num_items: int = 30, rank: int = 2, density: float = 0.6,
                     seed: int = 0, implicit: bool = False) -> pd.DataFrame:
    """Integer ratings 1..5 from a rank-``rank`` matrix (standardised to mean 3 and spread 1.25,
    so that most of the variance is the low-rank signal, not the global mean), ``density`` of
    the cells observed; with ``implicit`` the interactions are the observed cells rated 4 or 5,
    without a rating column."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(num_users, rank))
    v = rng.normal(size=(num_items, rank))
    full = u @ v.T
    full = np.clip(3 + 1.25 * (full - full.mean()) / full.std(), 1, 5)
    users, items = np.nonzero(rng.random((num_users, num_items)) < density)
    ratings = np.rint(full[users, items]).astype("float32")
    frame = pd.DataFrame({"user": users.astype(str), "item": items.astype(str), "rating": ratings,
                          "timestamp": np.arange(len(users), dtype="int64")})
    if implicit:
        frame = frame[frame["rating"] >= 4].drop(columns="rating").reset_index(drop=True)
    return frame


def checkerboard(num_users: int = 24, num_items: int = 24, implicit: bool = False,
                 seed: int = 0) -> pd.DataFrame:
    """Users and items in two groups (by index parity); each user rated every item of its own
    group 5, except one that is its latest rating (held out by ``split="leave_k_out"``), and half
    of the other group's items 1. The implicit version keeps the own-group interactions only.
    With training items excluded, each user's held-out item is the one right answer."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(num_users):
        own = [i for i in range(num_items) if i % 2 == u % 2]
        held = own[(u // 2) % len(own)]
        other = [i for i in range(num_items) if i % 2 != u % 2]
        cells = [(i, 5.0) for i in own if i != held]
        if not implicit:
            cells += [(i, 1.0) for i in rng.permutation(other)[:len(other) // 2]]
        cells.append((held, 5.0))  # last: the latest timestamp of this user
        rows += [(str(u), str(i), r, t) for t, (i, r) in enumerate(cells)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    return frame.drop(columns="rating") if implicit else frame


def degenerate_ratings(shape: str) -> pd.DataFrame:
    """Tiny data sets at the edges: ``one_user``, ``one_item`` or ``almost_empty``."""
    if shape == "one_user":
        users, items = ["1"] * 6, [str(i) for i in range(6)]
    elif shape == "one_item":
        users, items = [str(u) for u in range(6)], ["1"] * 6
    else:
        users, items = ["1", "2", "3", "4", "4"], ["1", "2", "3", "4", "1"]
    ratings = [float(1 + (3 * k) % 5) for k in range(len(users))]
    return pd.DataFrame({"user": users, "item": items, "rating": ratings,
                         "timestamp": np.arange(len(users), dtype="int64")})


def quiet_trainer(**overrides: Any) -> L.Trainer:
    """A CPU Trainer with nothing written to disk and no progress output."""
    settings: dict[str, Any] = {"accelerator": "cpu", "devices": 1, "logger": False,
                                "enable_checkpointing": False, "enable_progress_bar": False,
                                "enable_model_summary": False, "use_distributed_sampler": False,
                                "num_sanity_val_steps": 0, "max_epochs": 5}
    settings.update(overrides)
    return L.Trainer(**settings)


def heldout_rmse(model: RecModel, ratings: Any) -> float:
    """RMSE of ``model`` (clipped, with fallback) on a :class:`~reclight.data.Ratings` set, in
    eval mode (the model's mode is restored after)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        pred, _ = model.predict_with_fallback(ratings.users, ratings.items)
    model.train(was_training)
    return float(torch.sqrt(torch.mean((pred.double() - ratings.ratings.double()) ** 2)))


def _topn_targets(dm: RatingDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    """Users with a held-out item known in training, and their held-out items as a mask."""
    test = dm.test
    known = test.known()
    users = torch.unique(test.users[known])
    targets = torch.zeros(dm.num_users, dm.num_items, dtype=torch.bool)
    targets[test.users[known], test.items[known]] = True
    return users, targets[users]


def heldout_ndcg(model: RecModel, dm: RatingDataModule, k: int = 10) -> float:
    """NDCG@k of ``model`` over the held-out items, training items excluded."""
    users, targets = _topn_targets(dm)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        scores = model.score_items(users).float().masked_fill(model.seen_mask(users), float("-inf"))
    model.train(was_training)
    return float(topn_per_user(scores, targets, k)["ndcg"].mean())


def popularity_ndcg(dm: RatingDataModule, k: int = 10) -> float:
    """NDCG@k of ranking every user's unseen items by training popularity."""
    users, targets = _topn_targets(dm)
    data = dm.training_data
    scores = data.item_counts.float().expand(len(users), -1).clone()
    _, seen = data.matrix.dense(users)
    scores = scores.masked_fill(seen, float("-inf"))
    return float(topn_per_user(scores, targets, k)["ndcg"].mean())


class RecModelContract:
    """Checks every RecModel must pass. Set ``model_name``; tune ``model_kwargs`` to keep it fast."""

    model_name: ClassVar[str]
    model_kwargs: ClassVar[dict[str, Any]] = {}
    fit_epochs: ClassVar[int] = 30
    batch_size: ClassVar[int] = 64
    # Held-out error of the fitted model must be below this share of the global mean's.
    baseline_margin: ClassVar[float] = 0.9

    # ---- helpers ------------------------------------------------------------------------
    def model_class(self) -> type[RecModel]:
        return get_registry().get(self.model_name).load()

    def is_implicit(self) -> bool:
        """Whether the model, with ``model_kwargs``, declares implicit feedback (read from an
        instance on explicit ratings, which every model accepts at construction)."""
        dm = RatingDataModule(source=low_rank_ratings(), split="random", test_size=0.2, seed=0)
        return self.make_model(dm).feedback == "implicit"

    def make_data(self, source: pd.DataFrame | None = None, **overrides: Any) -> RatingDataModule:
        """The contract's data: low-rank ratings (interactions for an implicit model)."""
        if source is None:
            source = low_rank_ratings(implicit=self.is_implicit())
        settings: dict[str, Any] = {"source": source, "split": "random", "test_size": 0.2,
                                    "seed": 0, "batch_size": self.batch_size}
        settings.update(overrides)
        return RatingDataModule(**settings)

    def make_model(self, dm: RatingDataModule, **overrides: Any) -> RecModel:
        """A seeded model for ``dm`` built from ``model_kwargs`` updated by ``overrides``."""
        torch.manual_seed(0)
        return self.model_class()(dm.training_data, **{**self.model_kwargs, **overrides})

    def fit(self, model: RecModel, dm: RatingDataModule, epochs: int | None = None) -> L.Trainer:
        trainer = quiet_trainer(max_epochs=self.fit_epochs if epochs is None else epochs)
        trainer.fit(model, datamodule=dm)
        return trainer

    def fit_small(self, epochs: int, **overrides: Any) -> tuple[RecModel, L.Trainer, float, float]:
        """Fit a fresh model (``model_kwargs`` updated by ``overrides``) on the contract's data.

        Returns the model, its trainer and the training RMSE before and after the fit, for a
        plugin's own tests of its options.
        """
        dm = self.make_data()
        model = self.make_model(dm, **overrides)
        before = heldout_rmse(model, dm.train)
        trainer = self.fit(model, dm, epochs)
        return model, trainer, before, heldout_rmse(model, dm.train)

    def first_batch(self, dm: RatingDataModule, model: RecModel) -> dict[str, Any]:
        """The first training batch of the view ``model`` asks for."""
        dm.configure_for(model)
        return next(iter(dm.train_dataloader()))

    # ---- the contract -------------------------------------------------------------------
    def test_declares_its_needs(self) -> None:
        cls = self.model_class()
        model = self.make_model(self.make_data())
        assert model.feedback in FEEDBACK, f"feedback {model.feedback!r} is not one of {FEEDBACK}"
        assert model.training_kind in TRAINING_KINDS, \
            f"training_kind {model.training_kind!r} is not one of {TRAINING_KINDS}"
        assert model.input_kind in VIEWS, \
            f"input_kind {model.input_kind!r} is not a registered view ({sorted(VIEWS)})"
        trainer_args = set(inspect.signature(L.Trainer.__init__).parameters)
        unknown = set(cls.trainer_defaults) - trainer_args
        assert not unknown, f"trainer_defaults has keys the Trainer does not take: {unknown}"
        data_args = set(inspect.signature(RatingDataModule.__init__).parameters)
        unknown = set(cls.data_defaults) - data_args
        assert not unknown, f"data_defaults has keys RatingDataModule does not take: {unknown}"
        assert (cls.__doc__ or "").strip(), "a model class needs a docstring"
        module_doc = inspect.getmodule(cls).__doc__ or ""
        assert YEAR.search(module_doc), \
            "the model module's docstring must cite the paper the model comes from (authors, year)"

    def test_one_training_step_is_finite(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        if model.training_kind == "solver":
            self.fit(model, dm, epochs=1)
            state = [t for t in model.state_dict().values() if t.is_floating_point()]
            assert state and all(torch.isfinite(t).all() for t in state), "a solve left NaN/inf"
            return
        loss = model.training_loss(self.first_batch(dm, model))
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, "the loss must reach the model's parameters"

    def test_masked_loss_ignores_unobserved_entries(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        if model.training_kind == "solver" or model.feedback == "implicit":
            pytest.skip("unobserved entries are data for solvers and implicit models")
        batch = self.first_batch(dm, model)
        if "mask" not in batch:
            pytest.skip(f"the '{model.input_kind}' view holds observed ratings only")
        noisy = dict(batch)
        noisy["values"] = torch.where(batch["mask"], batch["values"],
                                      torch.full_like(batch["values"], 4.0))
        torch.manual_seed(1)
        clean_loss = model.training_loss(batch)
        torch.manual_seed(1)
        noisy_loss = model.training_loss(noisy)
        assert torch.allclose(clean_loss, noisy_loss), "unobserved entries changed the loss"

    def test_learns_better_than_the_trivial_baseline(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        self.fit(model, dm)
        if model.feedback == "implicit":
            got, baseline = heldout_ndcg(model, dm), popularity_ndcg(dm)
            assert got > baseline, f"held-out NDCG@10 {got:.3f} is not above popularity's {baseline:.3f}"
            return
        got = heldout_rmse(model, dm.test)
        baseline = float(torch.sqrt(torch.mean((dm.test.ratings.double() - dm.global_mean) ** 2)))
        assert got < self.baseline_margin * baseline, \
            f"held-out RMSE {got:.3f} is not below {self.baseline_margin} x the global mean's {baseline:.3f}"

    def test_checkerboard_held_out_item_ranks_first(self) -> None:
        implicit = self.is_implicit()
        dm = self.make_data(checkerboard(implicit=implicit), split="leave_k_out", leave_k=1)
        model = self.make_model(dm)
        self.fit(model, dm)
        users, targets = _topn_targets(dm)
        top, _ = model.eval().recommend(users, k=1)
        hits = targets[torch.arange(len(users)), top[:, 0]]
        assert bool(hits.all()), (f"{int((~hits).sum())} of {len(users)} users' held-out item did "
                                  "not rank first")

    def test_recommend_excludes_training_items(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        self.fit(model, dm, epochs=1)
        users = torch.arange(dm.num_users)
        top, scores = model.eval().recommend(users, k=dm.num_items + 3)  # more than exist
        assert top.shape == (dm.num_users, dm.num_items)
        seen = model.seen_mask(users)
        picked_seen = seen.gather(1, top)
        assert torch.all(torch.isinf(scores[picked_seen])), "a training item was recommended"
        k = 3
        top_k, scores_k = model.recommend(users, k=k)
        assert not seen.gather(1, top_k)[torch.isfinite(scores_k)].any()

    def test_checkpoint_round_trip_gives_identical_predictions(self, tmp_path: Path) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        trainer = self.fit(model, dm, epochs=2)
        path = tmp_path / "model.ckpt"
        trainer.save_checkpoint(path)
        loaded = load_model(path)
        model.eval()
        users, items = dm.test.users, dm.test.items
        with torch.no_grad():
            expected, _ = model.predict_with_fallback(users, items)
            got, _ = loaded.predict_with_fallback(users, items)
            known = torch.arange(min(5, dm.num_users))
            torch.testing.assert_close(loaded.score_items(known), model.score_items(known))
        torch.testing.assert_close(got, expected, equal_nan=True)
        assert loaded.user_map == dm.user_map and loaded.item_map == dm.item_map
        assert type(loaded) is type(model) and loaded.hparams == model.hparams

    def test_unseen_ids_fall_back(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm).eval()
        users = torch.tensor([-1, 0, -1, 0])
        items = torch.tensor([0, -1, -1, 0])
        with torch.no_grad():
            pred, unseen = model.predict_with_fallback(users, items)
            top, _ = model.recommend(torch.tensor([-1]), k=3)
        assert unseen == 3
        if model.feedback == "implicit":
            assert torch.isnan(pred[:3]).all() and torch.isfinite(pred[3])
            popular = torch.argsort(dm.training_data.item_counts, descending=True, stable=True)
            counts = dm.training_data.item_counts
            assert torch.equal(counts[top[0]], counts[popular[:3]])
            return
        lo, hi = dm.rating_range
        assert torch.all(torch.isfinite(pred)) and torch.all((pred >= lo) & (pred <= hi))
        assert pred[2].item() == pytest.approx(min(max(dm.global_mean, lo), hi), abs=1e-5)
        expected_item_fallback = dm.global_mean + model.fallback_item_bias[0].item()
        assert pred[0].item() == pytest.approx(min(max(expected_item_fallback, lo), hi), abs=1e-5)

    def test_scores_every_item(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm).eval()
        users = torch.arange(min(4, dm.num_users))
        with torch.no_grad():
            scores = model.score_items(users)
        assert scores.shape == (len(users), dm.num_items)
        assert torch.all(torch.isfinite(scores))

    def test_trains_under_each_declared_true_precision(self) -> None:
        """A "-true" precision in ``precisions`` (the weights themselves cast) is a claim: one
        epoch under each must train and test to finite metrics. Mixed precisions are the core's
        and tests/test_precision.py covers them for every model."""
        declared = [p for p in self.model_class().precisions if p.endswith("-true") and p != "32-true"]
        if not declared:
            pytest.skip("the model declares no low-precision '-true' setting")
        for precision in declared:
            dm = self.make_data()
            model = self.make_model(dm)
            trainer = quiet_trainer(max_epochs=1, precision=precision)
            trainer.fit(model, datamodule=dm)
            metrics = trainer.test(model, datamodule=dm, verbose=False)[0]
            assert metrics and all(math.isfinite(float(v)) for v in metrics.values()), \
                f"{precision}: {metrics}"

    @pytest.mark.parametrize("shape", ["one_user", "one_item", "almost_empty"])
    def test_degenerate_data_train_and_predict_finitely(self, shape: str) -> None:
        frame = degenerate_ratings(shape)
        if self.is_implicit():
            frame = frame.drop(columns="rating")
        dm = self.make_data(frame, split="none")
        model = self.make_model(dm)
        self.fit(model, dm, epochs=2)
        users = torch.arange(dm.num_users)
        model.eval()
        with torch.no_grad():
            scores = model.score_items(users)
            top, _ = model.recommend(users, k=2)
        assert scores.shape == (dm.num_users, dm.num_items) and torch.isfinite(scores).all()
        assert top.shape == (dm.num_users, min(2, dm.num_items))
