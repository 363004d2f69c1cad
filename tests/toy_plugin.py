"""A toy plugin for the core's tests: tiny models of every kind, so runs take milliseconds.

Keeps the core's tests independent of any real model plugin, and proves that the contract fits
each kind:

- ``toy``: user and item biases (gradient, explicit; Koren, "Factor in the Neighbors", 2010),
- ``toy-mf``: biased matrix factorisation (gradient, explicit; Koren, Bell and Volinsky 2009),
- ``toy-solver``: the biases solved in closed form (solver, explicit),
- ``toy-knn``: item neighbours on baseline residuals (solver, explicit; Sarwar et al. 2001),
- ``toy-rows``: a one-layer row autoencoder with dense re-feeding (manual, explicit; Sedhain
  et al. 2015, Kuchaiev and Ginsburg 2017),
- ``toy-logmf``: logistic matrix factorisation (gradient, implicit; Johnson 2014),
- ``toy-itemknn``: item-item cosine neighbours (solver, implicit; Sarwar et al. 2001).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from reclight import hookimpl
from reclight.autoencoder import RowAutoencoderModel
from reclight.data.training import TrainingData
from reclight.losses import masked_mse
from reclight.model import RecModel

Data = TrainingData | Mapping[str, Any]


class ToyBiases(RecModel):
    """Global mean plus learned user and item biases (a baseline predictor, Koren 2010)."""

    input_kind: ClassVar[str] = "pairs"
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 3}
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 512}

    def __init__(self, data: Data, lr: float = 0.1) -> None:
        super().__init__(data)
        self.save_hyperparameters()
        self.user_bias = nn.Parameter(torch.zeros(self.num_users))
        self.item_bias = nn.Parameter(torch.zeros(self.num_items))

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        return self.global_mean + self.user_bias[users] + self.item_bias[items]

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        return masked_mse(self.predict_ratings(batch["users"], batch["items"]), batch["ratings"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class ToyMF(ToyBiases):
    """Biased matrix factorisation: mu + b_u + b_i + p_u . q_i (Koren, Bell and Volinsky 2009)."""

    def __init__(self, data: Data, lr: float = 0.05, dim: int = 4, reg: float = 0.02) -> None:
        super().__init__(data, lr)
        self.save_hyperparameters()
        self.p = nn.Parameter(0.1 * torch.randn(self.num_users, dim))
        self.q = nn.Parameter(0.1 * torch.randn(self.num_items, dim))

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        return super().predict_ratings(users, items) + (self.p[users] * self.q[items]).sum(-1)

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, items = batch["users"], batch["items"]
        penalty = self.p[users].square().sum(-1) + self.q[items].square().sum(-1)
        return super().training_loss(batch) + self.hparams.reg * penalty.mean()


class ToyBiasSolver(RecModel):
    """User and item biases solved in closed form by alternating ridge regressions
    (Koren, "Factor in the Neighbors", TKDD 2010, section 2.1), one sweep per epoch."""

    input_kind: ClassVar[str] = "matrix"
    training_kind: ClassVar[str] = "solver"
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 3}

    def __init__(self, data: Data, reg: float = 5.0) -> None:
        super().__init__(data)
        self.save_hyperparameters()
        self.register_buffer("user_bias", torch.zeros(self.num_users))
        self.register_buffer("item_bias", torch.zeros(self.num_items))

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        return self.global_mean + self.user_bias[users] + self.item_bias[items]

    def solve_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        users, items, ratings = batch["users"], batch["items"], batch["ratings"]
        reg = self.hparams.reg
        resid = ratings - self.global_mean - self.user_bias[users]
        total = torch.zeros(self.num_items, device=resid.device).index_add_(0, items, resid)
        self.item_bias = total / (reg + torch.bincount(items, minlength=self.num_items))
        resid = ratings - self.global_mean - self.item_bias[items]
        total = torch.zeros(self.num_users, device=resid.device).index_add_(0, users, resid)
        self.user_bias = total / (reg + torch.bincount(users, minlength=self.num_users))
        err = ratings - self.predict_ratings(users, items)
        return {"train_rmse": err.square().mean().sqrt()}


class ToyItemNeighbours(ToyBiasSolver):
    """Item-based neighbours on baseline residuals (Sarwar et al., "Item-Based Collaborative
    Filtering Recommendation Algorithms", WWW 2001): biases solved in closed form, then cosine
    similarities of the items' residual columns, all in one solve."""

    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 1}

    def __init__(self, data: Data, reg: float = 5.0, shrink: float = 10.0) -> None:
        super().__init__(data, reg)
        self.save_hyperparameters()
        self.register_buffer("similarity", torch.zeros(self.num_items, self.num_items))
        self.register_buffer("residuals", torch.zeros(self.num_users, self.num_items))

    def solve_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        for _ in range(3):  # a few alternating bias sweeps converge on small data
            metrics = super().solve_step(batch, batch_idx)
        users, items = batch["users"], batch["items"]
        resid = torch.zeros_like(self.residuals)
        resid[users, items] = batch["ratings"] - super().predict_ratings(users, items)
        norms = resid.norm(dim=0)
        self.similarity = (resid.T @ resid) / (norms[:, None] * norms[None, :] + self.hparams.shrink)
        self.similarity.fill_diagonal_(0.0)
        self.residuals = resid
        return metrics

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        sims = self.similarity[items]  # [B, num_items]
        rated = (self.residuals[users] != 0).float()
        weight = (sims.abs() * rated).sum(-1).clamp_min(1e-6)
        offset = (sims * self.residuals[users]).sum(-1) / weight
        return super().predict_ratings(users, items) + offset


class ToyRows(RowAutoencoderModel):
    """A one-layer row autoencoder (AutoRec's shape, Sedhain et al. 2015) that re-feeds its
    output once per batch by default (Kuchaiev and Ginsburg 2017): the manual training kind."""

    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 3}
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 16}

    def __init__(self, data: Data, variant: str = "user", hidden: int = 8,
                 refeed_steps: int = 1, lr: float = 0.01) -> None:
        super().__init__(data, variant=variant, refeed_steps=refeed_steps)
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(self.row_width, hidden), nn.Sigmoid(),
                                 nn.Linear(hidden, self.row_width))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class ToyLogisticMF(RecModel):
    """Logistic matrix factorisation on binary interaction rows (Johnson, "Logistic Matrix
    Factorization for Implicit Feedback Data", 2014), trained with binary cross-entropy."""

    feedback: ClassVar[str] = "implicit"
    input_kind: ClassVar[str] = "implicit_user_rows"

    def __init__(self, data: Data, dim: int = 8, lr: float = 0.05) -> None:
        super().__init__(data)
        self.save_hyperparameters()
        self.users = nn.Parameter(0.1 * torch.randn(self.num_users, dim))
        self.items = nn.Parameter(0.1 * torch.randn(self.num_items, dim))
        self.item_bias = nn.Parameter(torch.zeros(self.num_items))

    def score_items(self, users: Tensor) -> Tensor:
        return self.users[users] @ self.items.T + self.item_bias

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.score_items(batch["rows"]), batch["values"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class ToyItemKNN(RecModel):
    """Item-based neighbours with cosine similarity (Sarwar et al., "Item-Based Collaborative
    Filtering Recommendation Algorithms", WWW 2001), solved once from the interaction matrix."""

    feedback: ClassVar[str] = "implicit"
    input_kind: ClassVar[str] = "matrix"
    training_kind: ClassVar[str] = "solver"
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 1}

    def __init__(self, data: Data) -> None:
        super().__init__(data)
        self.save_hyperparameters()
        self.register_buffer("similarity", torch.zeros(self.num_items, self.num_items))

    def solve_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        x = torch.zeros(self.num_users, self.num_items, device=self.similarity.device)
        x[batch["users"], batch["items"]] = 1.0
        unit = F.normalize(x, dim=0)
        self.similarity = (unit.T @ unit).fill_diagonal_(0.0)

    def score_items(self, users: Tensor) -> Tensor:
        _, seen = self.train_rows.dense(users.cpu())
        return seen.float().to(self.similarity.device) @ self.similarity


MODELS = {"toy": ToyBiases, "toy-mf": ToyMF, "toy-solver": ToyBiasSolver,
          "toy-knn": ToyItemNeighbours, "toy-rows": ToyRows, "toy-logmf": ToyLogisticMF,
          "toy-itemknn": ToyItemKNN}


@hookimpl
def register_models(register: Any) -> None:
    """Register the toy models under the names of ``MODELS``."""
    for name, cls in MODELS.items():
        register(name, cls, description=f"{cls.__name__}: a toy model for the core's tests")
