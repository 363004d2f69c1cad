"""The ``mf`` model: biased matrix factorisation trained on (user, item, rating) batches.

Koren, Bell and Volinsky, "Matrix Factorization Techniques for Recommender Systems",
IEEE Computer 42(8), 2009. Loss: squared error on observed ratings plus L2 penalties on the
factors and biases each example touches (eq. 5), minimised with Adam, SGD or sparse Adam.

With ``loss="bpr"`` the same factors are trained for ranking instead: Bayesian Personalized
Ranking (Rendle, Freudenthaler, Gantner and Schmidt-Thieme, UAI 2009), the mean of
-ln sigmoid(x_ui - x_uj) over each training interaction (u, i) and sampled unobserved items j
(the ``negative_pairs`` view) plus L2 penalties on p_u, q_i, q_j and the item biases; the model
then declares implicit feedback (scores, top-N evaluation).
The defaults were chosen on validation splits carved from the MovieLens 100K training folds
(see the plugin README and ``benchmarks/tune_mf.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from reclight.data.negatives import check_negative_options
from reclight.data.training import TrainingData
from reclight.errors import ConfigError, DataError
from reclight.losses import masked_mse
from reclight.model import RecModel
from reclight_mf.network import BiasedMF, frequency_weights

OPTIMIZERS = ("adam", "sgd", "sparse_adam")
LOSSES = ("squared", "bpr")
LR_SCHEDULES = ("cosine", "exponential", "constant")
# Per-loss defaults of reg and bias_reg (benchmarks/tune_mf.py for squared; the BPR ones on a
# 20% validation carve of MovieLens 100K u1.base, benchmarks/topn.py tune; lr 0.05 won there too).
LOSS_DEFAULTS: dict[str, dict[str, float]] = {
    "squared": {"reg": 0.15, "bias_reg": 0.1},
    "bpr": {"reg": 0.01, "bias_reg": 0.01},
}


class MatrixFactorization(RecModel):
    """Biased matrix factorisation (Koren et al. 2009).

    Args:
        data: the training data (filled in by the CLI; mu in the prediction rule is its mean).
        dim: number of latent factors.
        reg: L2 weight on the factors of each example's user and item (unset: 0.15 for the
            squared loss, 0.01 for ``loss="bpr"``; ``LOSS_DEFAULTS``).
        bias_reg: L2 weight on each example's user and item biases (unset: 0.1 for squared,
            0.01 for bpr).
        lr: (initial) learning rate.
        optimizer: "adam" (dense), "sgd" (sparse gradients, plain SGD as in Funk/Koren),
            or "sparse_adam" (sparse embeddings with torch.optim.SparseAdam: cost per step grows
            with the batch, not with the table size).
        init_std: standard deviation of the initial factors.
        lr_schedule: "cosine" (anneal from ``lr`` towards 0 over the Trainer's max_epochs),
            "exponential" (multiply by ``lr_decay`` after every epoch) or "constant".
        lr_decay: per-epoch factor of the "exponential" schedule.
        frequency_exponent: a row's total penalty grows like (its number of training
            ratings)^exponent: 1 is the per-example (SGD-style) penalty of Koren et al.,
            smaller values regularise frequent users and items relatively less.
        loss: "squared" (rating prediction, explicit feedback) or "bpr" (pairwise ranking on
            sampled negatives, implicit feedback: every training rating is an interaction).
        num_negatives: unobserved items sampled per interaction under ``loss="bpr"`` (>= 1).
        negative_sampling: "uniform" or "popularity" (by training counts), for ``bpr``.
    """

    input_kind: ClassVar[str] = "pairs"
    # Full-batch epochs: each step is a sparse-pattern product over all training ratings
    # (about 10 ms for MovieLens 100K), so 50 epochs cost about as much as 5 epochs of
    # 4096-rating steps and reach the same validation error (see the README).
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 50}
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 1 << 20}
    # A step is a few sparse products of about a millisecond: on 2 cores a u1 fit took 0.59 s
    # on one thread and 0.80 s on two (thread wake-ups cost more than they save).
    cpu_threads: ClassVar[int | None] = 1
    # The name in error messages and the optimisers offered (subclasses with dense networks
    # on top of the tables cannot use SparseAdam, which takes sparse gradients only).
    label: ClassVar[str] = "mf"
    optimizers: ClassVar[tuple[str, ...]] = OPTIMIZERS

    def __init__(self, data: TrainingData | Mapping[str, Any], dim: int = 64,
                 reg: float | None = None, bias_reg: float | None = None,
                 lr: float = 0.05, optimizer: str = "adam",
                 init_std: float = 0.1, lr_schedule: str = "constant", lr_decay: float = 1.0,
                 frequency_exponent: float = 0.5, loss: str = "squared", num_negatives: int = 1,
                 negative_sampling: str = "uniform") -> None:
        super().__init__(data)
        name = self.label
        if loss not in LOSSES:
            raise ConfigError(f"unknown loss '{loss}' for {name}; choose one of {', '.join(LOSSES)} "
                              "(--model.loss)")
        # Unset reg/bias_reg take the defaults of the chosen loss: the squared-loss ones were
        # chosen for rating error, the BPR ones on a validation carve for NDCG@10 (README).
        chosen = LOSS_DEFAULTS[loss]
        reg = chosen["reg"] if reg is None else reg
        bias_reg = chosen["bias_reg"] if bias_reg is None else bias_reg
        if loss == "bpr":
            try:
                check_negative_options(num_negatives, negative_sampling)
            except DataError as exc:
                raise ConfigError(f"{exc} (--model.num_negatives, --model.negative_sampling)") \
                    from None
            # Trained to rank: scores, not ratings, on interactions with sampled negatives.
            self.feedback = "implicit"  # type: ignore[misc]
            self.input_kind = "negative_pairs"  # type: ignore[misc]
            self.view_options = {"num_negatives": num_negatives,
                                 "negative_sampling": negative_sampling}
        if optimizer not in self.optimizers:
            raise ConfigError(f"unknown optimizer '{optimizer}' for {name}; choose one of "
                              f"{', '.join(self.optimizers)} (--model.optimizer)")
        if lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"unknown lr_schedule '{lr_schedule}' for {name}; choose one of "
                              f"{', '.join(LR_SCHEDULES)} (--model.lr_schedule)")
        if dim < 1:
            raise ConfigError(f"{name} needs dim >= 1, got dim={dim} (--model.dim)")
        if reg < 0 or bias_reg < 0 or lr <= 0:
            raise ConfigError(f"{name} needs reg >= 0, bias_reg >= 0 and lr > 0; got reg={reg}, "
                              f"bias_reg={bias_reg}, lr={lr}")
        if not 0 < lr_decay <= 1 or not 0 <= frequency_exponent <= 1:
            raise ConfigError(f"{name} needs 0 < lr_decay <= 1 and 0 <= frequency_exponent <= 1; "
                              f"got lr_decay={lr_decay}, frequency_exponent={frequency_exponent}")
        self.save_hyperparameters()
        self.hparams.update(reg=reg, bias_reg=bias_reg)  # the values in use, saved
        self.net = self.build_network(dim, init_std, sparse=optimizer != "adam")
        # Per-row penalty weights n^(exponent - 1), derived from the training counts (which the
        # checkpoint's data holds, so they are not saved again).
        self.register_buffer("user_reg_weight", frequency_weights(
            self.data.user_counts, frequency_exponent), persistent=False)
        self.register_buffer("item_reg_weight", frequency_weights(
            self.data.item_counts, frequency_exponent), persistent=False)

    def build_network(self, dim: int, init_std: float, sparse: bool) -> BiasedMF:
        """The network; subclasses add towers (``self.hparams`` holds every argument)."""
        return BiasedMF(self.num_users, self.num_items, dim, init_std, sparse=sparse)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; subclasses give their towers a weight decay."""
        return [{"params": list(self.net.parameters())}]

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        if self.hparams.loss == "bpr":
            return self._bpr_loss(batch)
        users, items, ratings = batch["users"], batch["items"], batch["ratings"]
        hp = self.hparams
        pred, penalty = self.net.forward_with_penalty(
            users, items, self.global_mean, hp.reg * self.user_reg_weight,
            hp.reg * self.item_reg_weight, hp.bias_reg)
        return masked_mse(pred, ratings) + penalty

    def _bpr_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """BPR-Opt (Rendle et al. 2009, eq. 4) as a mean over the batch's (u, i, j) triples."""
        users, items, negatives = batch["users"], batch["items"], batch["negatives"]
        hp, d = self.hparams, self.net.dim
        p = self.net.users(users)[:, :d]
        q_i, q_j = self.net.items(items), self.net.items(negatives)  # [B, d+1], [B, n, d+1]
        x_ui = (p * q_i[:, :d]).sum(-1) + q_i[:, d]
        x_uj = (p[:, None, :] * q_j[..., :d]).sum(-1) + q_j[..., d]
        ranking = -F.logsigmoid(x_ui[:, None] - x_uj).mean()
        penalty = (hp.reg * (p.square().sum(-1) + q_i[:, :d].square().sum(-1)
                             + q_j[..., :d].square().sum(-1).mean(-1))
                   + hp.bias_reg * (q_i[:, d].square() + q_j[..., d].square().mean(-1)))
        return ranking + penalty.mean()

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        return self.net(users, items, self.global_mean)

    def score_items(self, users: Tensor) -> Tensor:
        return self.net.score_all(users, self.global_mean)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups = self.parameter_groups()
        if hp.optimizer == "adam":
            # The fused kernel is one pass over the tables (about half the time of foreach).
            fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
            opt: torch.optim.Optimizer = torch.optim.Adam(groups, lr=hp.lr, fused=fused or None)
        elif hp.optimizer == "sparse_adam":
            opt = torch.optim.SparseAdam(groups, lr=hp.lr)
        else:
            opt = torch.optim.SGD(groups, lr=hp.lr)
        epochs = self.trainer.max_epochs if self._trainer is not None else None
        if hp.lr_schedule == "cosine" and epochs and epochs > 0:
            # Stepped after every epoch by RecModel: epoch e trains at lr (1 + cos(pi e / E)) / 2.
            factor = lambda e: 0.5 * (1.0 + math.cos(math.pi * min(e, epochs) / epochs))  # noqa: E731
            sched: Any = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        elif hp.lr_schedule == "exponential" and hp.lr_decay != 1.0:
            sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=hp.lr_decay)
        else:
            return opt
        return {"optimizer": opt, "lr_scheduler": sched}
