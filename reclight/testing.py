"""The contract test mixin every model plugin's tests reuse.

Usage in a plugin's tests::

    from reclight.testing import RecModelContract

    class TestMF(RecModelContract):
        model_name = "mf"
        model_kwargs = {"dim": 8}

Each check runs on a tiny rank-2 rating matrix with a known structure, so it takes seconds,
and none of them knows which model it tests (after implicit's checkerboard test mixin).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from reclight.checkpoints import load_model
from reclight.data import VIEWS, RatingDataModule
from reclight.model import RecModel
from reclight.registry import get_registry


def low_rank_ratings(num_users: int = 40, num_items: int = 30, rank: int = 2, density: float = 0.6,
                     seed: int = 0) -> pd.DataFrame:
    """Integer ratings 1..5 from a rank-``rank`` matrix, ``density`` of the cells observed."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(num_users, rank))
    v = rng.normal(size=(num_items, rank))
    full = u @ v.T
    full = 1 + 4 * (full - full.min()) / (full.max() - full.min())
    users, items = np.nonzero(rng.random((num_users, num_items)) < density)
    return pd.DataFrame({"user": users.astype(str), "item": items.astype(str),
                         "rating": np.rint(full[users, items]).astype("float32"),
                         "timestamp": np.arange(len(users), dtype="int64")})


def quiet_trainer(**overrides: Any) -> L.Trainer:
    """A CPU Trainer with nothing written to disk and no progress output."""
    settings: dict[str, Any] = {"accelerator": "cpu", "devices": 1, "logger": False,
                                "enable_checkpointing": False, "enable_progress_bar": False,
                                "enable_model_summary": False, "use_distributed_sampler": False,
                                "num_sanity_val_steps": 0, "max_epochs": 5}
    settings.update(overrides)
    return L.Trainer(**settings)


class RecModelContract:
    """Checks every RecModel must pass. Set ``model_name``; tune ``model_kwargs`` to keep it fast."""

    model_name: ClassVar[str]
    model_kwargs: ClassVar[dict[str, Any]] = {}
    fit_epochs: ClassVar[int] = 30
    batch_size: ClassVar[int] = 64

    # ---- helpers ------------------------------------------------------------------------
    def model_class(self) -> type[RecModel]:
        return get_registry().get(self.model_name).load()

    def make_data(self, **overrides: Any) -> RatingDataModule:
        settings: dict[str, Any] = {"source": low_rank_ratings(), "split": "random", "test_size": 0.2,
                                    "seed": 0, "batch_size": self.batch_size}
        settings.update(overrides)
        return RatingDataModule(**settings)

    def make_model(self, dm: RatingDataModule, **overrides: Any) -> RecModel:
        """A seeded model for ``dm`` built from ``model_kwargs`` updated by ``overrides``."""
        torch.manual_seed(0)
        model = self.model_class()(num_users=dm.num_users, num_items=dm.num_items,
                                   global_mean=dm.global_mean, rating_range=dm.rating_range,
                                   **{**self.model_kwargs, **overrides})
        dm.set_view(model.input_kind)  # the instance decides: a hyper-parameter may choose the view
        model.attach_data(dm)
        model.reclight_meta = {"model": self.model_name}
        return model

    def fit_small(self, epochs: int, **overrides: Any) -> tuple[RecModel, L.Trainer, float, float]:
        """Fit a fresh model (``model_kwargs`` updated by ``overrides``) on the contract's data.

        Returns the model, its trainer and the training RMSE before and after the fit, for a
        plugin's own tests of its options.
        """
        dm = self.make_data()
        model = self.make_model(dm, **overrides)
        before = self.train_rmse(model, dm)
        trainer = quiet_trainer(max_epochs=epochs)
        trainer.fit(model, datamodule=dm)
        return model, trainer, before, self.train_rmse(model, dm)

    def first_batch(self, dm: RatingDataModule) -> dict[str, torch.Tensor]:
        return next(iter(dm.train_dataloader()))

    def train_rmse(self, model: RecModel, dm: RatingDataModule) -> float:
        model.eval()
        with torch.no_grad():
            pred, _ = model.predict_with_fallback(dm.train.users, dm.train.items)
        model.train()
        return float(torch.sqrt(torch.mean((pred - dm.train.ratings) ** 2)))

    # ---- the contract -------------------------------------------------------------------
    def test_declares_its_needs(self) -> None:
        cls = self.model_class()
        assert cls.input_kind in VIEWS, f"input_kind {cls.input_kind!r} is not one of {VIEWS}"
        trainer_args = set(inspect.signature(L.Trainer.__init__).parameters)
        unknown = set(cls.trainer_defaults) - trainer_args
        assert not unknown, f"trainer_defaults has keys the Trainer does not take: {unknown}"
        data_args = set(inspect.signature(RatingDataModule.__init__).parameters)
        assert not set(cls.data_defaults) - data_args
        assert (cls.__doc__ or "").strip(), "a model class needs a docstring"
        assert (inspect.getmodule(cls).__doc__ or "").strip(), "the model module needs a docstring citing its paper"

    def test_loss_is_finite(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        loss = model.training_loss(self.first_batch(dm))
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, "the loss must reach the model's parameters"

    def test_masked_loss_ignores_unobserved_entries(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        batch = self.first_batch(dm)
        if "mask" not in batch:
            pytest.skip(f"the '{model.input_kind}' view holds observed ratings only")
        noisy = dict(batch)
        noisy["values"] = torch.where(batch["mask"], batch["values"], torch.full_like(batch["values"], 4.0))
        torch.manual_seed(1)
        clean_loss = model.training_loss(batch)
        torch.manual_seed(1)
        noisy_loss = model.training_loss(noisy)
        assert torch.allclose(clean_loss, noisy_loss), "unobserved entries changed the loss"

    def test_training_reduces_error_on_low_rank_data(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        before = self.train_rmse(model, dm)
        quiet_trainer(max_epochs=self.fit_epochs).fit(model, datamodule=dm)
        after = self.train_rmse(model, dm)
        assert after < 0.8 * before, f"training RMSE went from {before:.3f} to {after:.3f}"

    def test_checkpoint_round_trip_gives_identical_predictions(self, tmp_path: Path) -> None:
        dm = self.make_data()
        model = self.make_model(dm)
        trainer = quiet_trainer(max_epochs=2)
        trainer.fit(model, datamodule=dm)
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
        torch.testing.assert_close(got, expected)
        assert list(loaded.user_map.raw) == list(dm.user_map.raw)

    def test_unseen_ids_fall_back(self) -> None:
        dm = self.make_data()
        model = self.make_model(dm).eval()
        users = torch.tensor([-1, 0, -1, 0])
        items = torch.tensor([0, -1, -1, 0])
        with torch.no_grad():
            pred, unseen = model.predict_with_fallback(users, items)
        assert unseen == 3
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
