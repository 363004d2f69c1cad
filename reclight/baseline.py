"""The baseline every fit is judged against, on the same split and by the same evaluation.

For explicit models: the baseline predictor of Koren ("Factor in the Neighbors", TKDD 2010,
section 2.1), global mean + damped user and item biases, the same estimates the fallback for
unseen ids uses (:mod:`reclight.fallback`), clipped to the rating range; its rankings are by
mean + item bias. For implicit models: item popularity (training interactions). A model that
does not beat it has learnt nothing the data's averages do not already say.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from reclight.data.training import TrainingData
from reclight.model import RecModel


class BiasBaseline(RecModel):
    """Global mean + damped biases (Koren 2010), or item popularity for implicit feedback.

    Args:
        data: the training data of the model it stands beside.
        feedback: that model's feedback kind, which decides what is measured.
    """

    training_kind = "solver"

    def __init__(self, data: TrainingData, feedback: str = "explicit") -> None:
        super().__init__(data)
        self.feedback = feedback

    def solve_step(self, batch: Any, batch_idx: int) -> None:
        """Nothing to solve: the biases come with the training data."""

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        return self.global_mean + self.fallback_user_bias[users] + self.fallback_item_bias[items]

    def score_items(self, users: Tensor) -> Tensor:
        if self.feedback == "implicit":
            return self.fallback_item_popularity.expand(len(users), -1)
        return (self.global_mean + self.fallback_user_bias[users.clamp_min(0)][:, None]
                + self.fallback_item_bias[None, :])


@torch.no_grad()
def baseline_metrics(model: RecModel, datamodule: Any) -> dict[str, float]:
    """The baseline's test metrics (``test_rmse``, ``test_ndcg@10``, ...) on ``datamodule``'s
    test set, evaluated as ``model`` was (its feedback kind and cut-offs), in this process."""
    base = BiasBaseline(model.data, model.feedback)
    base.set_eval_k(model.evaluation.ks)
    # The whole test set here: under DDP the Trainer's loaders are this rank's shard.
    saved = datamodule.rank, datamodule.world_size, datamodule.feedback
    datamodule.rank, datamodule.world_size, datamodule.feedback = 0, 1, model.feedback
    try:
        loaders = datamodule.test_dataloader()
    finally:
        datamodule.rank, datamodule.world_size, datamodule.feedback = saved
    for loader in loaders:
        for batch in loader:
            base.evaluation.update("test", base, batch)
    return {k: float(v) for k, v in base.evaluation.results("test").items()}
