"""Data shapes for checking that a model's defaults hold on data they were not tuned on.

Defaults are tuned on MovieLens 100K (943 users, 1,682 items, stars 1..5). A model whose
defaults lose to the simple baseline (global mean plus damped user and item biases, see
:mod:`reclight.fallback`) on data of another shape is a bug. :data:`SHAPES` are seeded
synthetic data sets (:mod:`reclight.data.synthetic`) of the shapes that broke defaults before:
like MovieLens 100K, ten times more items than users, ten times more users than items, and
half-star ratings; ``scale`` shrinks them for a fast test. :func:`fit_defaults` fits a registered
model exactly as ``reclight fit --model NAME`` does (its ``data_defaults`` and
``trainer_defaults``, seed 0) and returns its test RMSE next to the baseline's on the same split.
``benchmarks/default_shapes.py`` prints the full-size table; ``tests/test_default_shapes.py``
runs the small one for every registered explicit-feedback model.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch

from reclight.data.training import TrainingData


@dataclass(frozen=True)
class Shape:
    """A seeded synthetic data set: ``ratings`` over ``users`` x ``items``, stars in ``step``."""

    name: str
    ratings: int
    users: int
    items: int
    step: float = 1.0

    def scaled(self, factor: float) -> Shape:
        """The same shape with ``factor`` times the ratings and ``factor ** (2/3)`` times the
        users and items: the ratio of users to items is kept, and the ratings per user and per
        item shrink only by ``factor ** (1/3)``. Keeping the density instead (``factor ** 0.5``)
        leaves a tenth of the ratings with under half the ratings per row, where no model
        beats the baseline by much."""
        side = factor ** (2 / 3)
        return Shape(self.name, max(int(self.ratings * factor), 1),
                     max(int(self.users * side), 1), max(int(self.items * side), 1), self.step)

    def data_args(self) -> dict[str, Any]:
        """``RatingDataModule`` arguments: this data set, a seeded 90/10 random split."""
        return {"source": "synthetic", "synthetic_ratings": self.ratings,
                "synthetic_users": self.users, "synthetic_items": self.items,
                "synthetic_step": self.step, "split": "random", "test_size": 0.1, "seed": 0}


SHAPES: tuple[Shape, ...] = (
    Shape("like MovieLens 100K", 100_000, 943, 1682),
    Shape("10x more items than users", 100_000, 600, 6000),
    Shape("10x more users than items", 100_000, 6000, 600),
    Shape("half-star ratings (0.5..5)", 100_000, 943, 1682, step=0.5),
)


def baseline_rmse(data: TrainingData, users: torch.Tensor, items: torch.Tensor,
                  ratings: torch.Tensor) -> float:
    """Test RMSE of the baseline (global mean + damped biases, clipped to the rating range),
    the core's fallback for unseen ids, on held-out pairs (-1: unseen id)."""
    pred = data.global_mean + torch.where(users >= 0, data.user_bias[users.clamp_min(0)], 0.0)
    pred = pred + torch.where(items >= 0, data.item_bias[items.clamp_min(0)], 0.0)
    lo, hi = data.rating_range
    return float(((pred.clamp(lo, hi) - ratings) ** 2).mean().sqrt())


@dataclass(frozen=True)
class DefaultsResult:
    """One model's defaults on one data set, beside the baseline on the same test ratings."""

    model: str
    rmse: float
    baseline: float
    fit_seconds: float

    @property
    def gain(self) -> float:
        """Relative RMSE improvement over the baseline (positive: the model is better)."""
        return 1.0 - self.rmse / self.baseline


def fit_defaults(name: str, data_args: dict[str, Any]) -> DefaultsResult:
    """Fit registered model ``name`` with its defaults on ``RatingDataModule(**data_args)``,
    as ``reclight fit`` does (seed 0; no logger, checkpoints or progress bar), and measure its
    test RMSE and the baseline's."""
    import lightning as L

    from reclight.console import lightning_noise
    from reclight.data import RatingDataModule
    from reclight.lightning_cli import trainer_defaults_for
    from reclight.registry import get_registry

    cls = get_registry().get(name).load()
    L.seed_everything(0, verbose=False)
    dm = RatingDataModule(**{**data_args, **cls.data_defaults})
    model = cls(dm.training_data)
    with tempfile.TemporaryDirectory(prefix="reclight-shapes-") as root, lightning_noise(False):
        trainer = L.Trainer(**{**trainer_defaults_for(cls), "default_root_dir": root,
                               "logger": False, "enable_checkpointing": False,
                               "enable_progress_bar": False, "enable_model_summary": False})
        start = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        seconds = time.perf_counter() - start
        trainer.test(model, datamodule=dm, verbose=False)
    rmse = float(trainer.callback_metrics["test_rmse"])
    test = dm.test
    return DefaultsResult(name, rmse, baseline_rmse(dm.training_data, test.users, test.items,
                                                    test.ratings), seconds)


def explicit_models() -> list[str]:
    """Every registered model that predicts ratings (``feedback == "explicit"``)."""
    from reclight.registry import get_registry

    registry = get_registry()
    return [n for n in registry.names() if getattr(registry.get(n).load(), "feedback",
                                                      "explicit") == "explicit"]
