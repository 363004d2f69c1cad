"""The plugin author's contract kit on the tests' own toy models, one of each kind, and proof
that it fails a model that learns nothing or ranks training items."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from reclight.testing import RecModelContract

from .toy_plugin import ToyBiases

pytestmark = pytest.mark.usefixtures("toy_registry")


class TestGradientExplicitContract(RecModelContract):
    model_name = "toy-mf"


class TestSolverExplicitContract(RecModelContract):
    """A gradient-free model: closed-form solves, no optimiser."""

    model_name = "toy-knn"
    fit_epochs = 1


class TestManualExplicitContract(RecModelContract):
    """A model that takes extra optimiser steps (dense re-feeding) through the step hook point."""

    model_name = "toy-rows"
    model_kwargs = {"hidden": 16, "lr": 0.03}
    fit_epochs = 40
    batch_size = 4


class TestGradientImplicitContract(RecModelContract):
    model_name = "toy-logmf"
    fit_epochs = 60
    batch_size = 16


class TestSolverImplicitContract(RecModelContract):
    model_name = "toy-itemknn"
    fit_epochs = 1


class Forgetful(ToyBiases):
    """Biases that never move: it 'trains' but learns nothing beyond the global mean."""

    def __init__(self, data: Any, lr: float = 0.1) -> None:
        super().__init__(data, lr)
        self.user_bias.requires_grad_(False)
        self.frozen = nn.Parameter(torch.zeros(1))

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return super().training_loss(batch) + 0.0 * self.frozen.sum()

    def predict_ratings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.full(users.shape, self.global_mean) + 0.0 * self.frozen


class SeenFirst(ToyBiases):
    """Ranks the items a user already rated first, whatever the core excludes."""

    def score_items(self, users: torch.Tensor) -> torch.Tensor:
        seen = self.train_rows.dense(users)[1]
        return seen.float()


class Kit(RecModelContract):
    model_cls: ClassVar[type]

    def model_class(self) -> type:
        return self.model_cls


def test_the_kit_fails_a_model_that_learns_nothing() -> None:
    kit = type("ForgetfulKit", (Kit,), {"model_cls": Forgetful, "model_name": "forgetful"})()
    with pytest.raises(AssertionError, match="not below"):
        kit.test_learns_better_than_the_trivial_baseline()


def test_the_kit_fails_a_model_without_class_structure_on_the_checkerboard() -> None:
    kit = type("ForgetfulKit", (Kit,), {"model_cls": Forgetful, "model_name": "forgetful"})()
    with pytest.raises(AssertionError, match="held-out item did not rank first"):
        kit.test_checkerboard_held_out_item_ranks_first()


def test_exclusion_of_training_items_holds_whatever_a_model_scores() -> None:
    kit = type("SeenFirstKit", (Kit,), {"model_cls": SeenFirst, "model_name": "seen-first"})()
    kit.test_recommend_excludes_training_items()  # the core masks them, the model cannot undo it
