"""A toy plugin for the core's tests: user and item biases only, so runs take milliseconds.

Keeps the core's tests independent of any real model plugin.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from reclight import hookimpl
from reclight.losses import masked_mse
from reclight.model import RecModel


class ToyBiases(RecModel):
    """Global mean plus learned user and item biases (a baseline predictor, Koren 2010)."""

    input_kind: ClassVar[str] = "pairs"
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 3}
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 512}

    def __init__(self, num_users: int, num_items: int, global_mean: float = 0.0,
                 rating_range: tuple[float, float] = (1.0, 5.0), lr: float = 0.1) -> None:
        super().__init__(num_users, num_items, global_mean, rating_range)
        self.save_hyperparameters()
        self.user_bias = nn.Parameter(torch.zeros(num_users))
        self.item_bias = nn.Parameter(torch.zeros(num_items))

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        return self.global_mean + self.user_bias[users] + self.item_bias[items]

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        return masked_mse(self.predict_ratings(batch["users"], batch["items"]), batch["ratings"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


@hookimpl
def register_models(register: Any) -> None:
    """Register the toy model as ``toy``."""
    register("toy", ToyBiases, description="toy biases model for the core's tests")
