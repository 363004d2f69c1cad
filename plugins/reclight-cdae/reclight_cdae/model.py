"""The ``cdae`` model: Collaborative Denoising Auto-Encoders for top-N recommendation.

Wu, DuBois, Zheng and Ester, "Collaborative Denoising Auto-Encoders for Top-N Recommender
Systems", WSDM 2016. Each user's binary interaction vector is corrupted by drop-out noise
(probability q, survivors scaled by 1 / (1 - q)), encoded with a per-user input node into a
sigmoid hidden layer and decoded to a score for every item; the loss compares the
reconstruction with the uncorrupted vector, over every item (the default) or, as the paper's
section 4.3 proposes for large catalogues, over the positives and ``num_negatives`` sampled
unobserved items per positive. The objective is the paper's eq. 4 divided by the number of
users: mean over users of the summed per-item loss + (reg / 2N) |theta|^2.

The defaults were chosen on a validation carve of MovieLens 100K ``u1.base`` shaped like
``u1.test`` (the plugin README, ``benchmarks/cdae_search.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from reclight.autoencoder import activation
from reclight.console import warn
from reclight.data.negatives import SAMPLING, NegativeSampler, check_negative_options
from reclight.data.training import TrainingData
from reclight.errors import ConfigError, DataError
from reclight.model import RecModel
from reclight_cdae.network import CDAENet

LOSSES = ("logistic", "squared")
OUTPUTS = ("sigmoid", "identity")


class CDAE(RecModel):
    """Collaborative Denoising Auto-Encoder (Wu et al. 2016), trained on binary user rows.

    Args:
        data: the training data (filled in by the CLI); every training rating counts as an
            interaction (``--data.implicit_threshold`` chooses which ones do).
        hidden: size of the hidden layer.
        corruption: drop-out probability q of the input entries, in [0, 1) (0: no noise).
        hidden_activation: activation h of the hidden layer (relu by default, as RecBole's
            CDAE; the paper's sigmoid needs a wider layer and twice the epochs for the same
            validation NDCG; any name of ``reclight.autoencoder.ACTIVATIONS``).
        output_activation: f, "sigmoid" or "identity".
        loss: "logistic" (binary cross-entropy on sigmoid outputs) or "squared".
        tied: use the encoder's weights, transposed, as the decoder.
        reg: L2 weight lambda on all parameters (the paper's eq. 4; the objective is divided
            by the number of users N, so Adam's weight decay is reg / N).
        lr: Adam learning rate.
        num_negatives: None for the loss over the full vector (the default); an integer >= 1
            for the loss over each user's positives and ``num_negatives`` sampled unobserved
            items per positive.
        negative_sampling: "uniform" or "popularity" (by training counts), for
            ``num_negatives``.
        init_std: standard deviation of the initial weights.
    """

    feedback: ClassVar[str] = "implicit"
    input_kind: ClassVar[str] = "implicit_user_rows"
    # The schedule is capped in optimiser steps as well as epochs; Lightning stops at whichever
    # comes first. 40 epochs of MovieLens 100K at batch 128 are 320 steps (max_epochs binds;
    # the validation carve holds its plateau to 60 epochs = 480 steps). With ten times more
    # users than items an epoch is 47 steps and 40 of them overfit: 480 steps (10 epochs)
    # beat popularity there, 320 do not (the plugin README). on_train_start says when
    # max_steps cuts max_epochs short.
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 40, "max_steps": 480}
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 128}
    # Small dense steps: a second intra-op thread costs more in synchronisation than it gains
    # (5x slower per epoch on the shared 2-core box, measured in the plugin README).
    cpu_threads: ClassVar[int | None] = 1
    # Every operation has bfloat16 and float64 kernels, and both train to the same ranking
    # (tested). float16 weights are left out: the scores turn NaN within a few epochs.
    precisions: ClassVar[tuple[str, ...]] = (*RecModel.precisions, "bf16-true", "64-true")

    def __init__(self, data: TrainingData | Mapping[str, Any], hidden: int = 64,
                 corruption: float = 0.5, hidden_activation: str = "relu",
                 output_activation: str = "sigmoid", loss: str = "logistic", tied: bool = False,
                 reg: float = 100.0, lr: float = 0.006, num_negatives: int | None = None,
                 negative_sampling: str = "uniform", init_std: float = 0.01) -> None:
        super().__init__(data)
        if not (isinstance(corruption, (int, float)) and 0.0 <= corruption < 1.0):
            raise ConfigError(f"corruption={corruption!r} must be in [0, 1) (--model.corruption; "
                              "0 turns the drop-out noise off)")
        if loss not in LOSSES:
            raise ConfigError(f"unknown loss '{loss}' for cdae; choose one of {', '.join(LOSSES)} "
                              "(--model.loss)")
        if output_activation not in OUTPUTS:
            raise ConfigError(f"unknown output_activation '{output_activation}' for cdae; choose "
                              f"one of {', '.join(OUTPUTS)} (--model.output_activation)")
        if loss == "logistic" and output_activation != "sigmoid":
            raise ConfigError("loss=logistic needs output_activation=sigmoid (it is a log loss on "
                              "probabilities); choose loss=squared for identity outputs")
        if hidden < 1 or reg < 0 or lr <= 0 or init_std < 0:
            raise ConfigError(f"cdae needs hidden >= 1, reg >= 0, lr > 0 and init_std >= 0; got "
                              f"hidden={hidden}, reg={reg}, lr={lr}, init_std={init_std}")
        if num_negatives is not None:
            try:
                check_negative_options(num_negatives, negative_sampling)
            except DataError as exc:
                raise ConfigError(f"{exc} (--model.num_negatives, --model.negative_sampling; "
                                  "leave num_negatives unset for the full-vector loss)") from None
        elif negative_sampling not in SAMPLING:
            raise ConfigError(f"negative sampling '{negative_sampling}' is unknown; choose one "
                              f"of {', '.join(SAMPLING)}")
        self.save_hyperparameters()
        self.net = CDAENet(self.num_users, self.num_items, hidden,
                           activation(hidden_activation, "--model.hidden_activation"),
                           float(corruption), tied, init_std)
        self._sampler: NegativeSampler | None = None

    def _output(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits) if self.hparams.output_activation == "sigmoid" else logits

    def _loss_mask(self, users: Tensor, seen: Tensor) -> Tensor | None:
        """The entries the loss covers: every item, or the positives plus sampled negatives."""
        num = self.hparams.num_negatives
        if num is None:
            return None
        if self._sampler is None:
            self._sampler = NegativeSampler(self.data.matrix, self.hparams.negative_sampling)
        cpu_users = users.cpu()
        lengths = self.data.user_counts[cpu_users]
        ok = self._sampler.available[cpu_users]
        rows = torch.repeat_interleave(torch.arange(len(users))[ok], lengths[ok] * num)
        items = self._sampler.sample(cpu_users[rows], 1).flatten()
        mask = seen.clone()
        mask[rows.to(seen.device), items.to(seen.device)] = True
        return mask

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, target = batch["rows"], batch["values"]
        logits = self.net(target, users)
        if self.hparams.loss == "logistic":
            per_entry = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            per_entry = (self._output(logits) - target).square()
        mask = self._loss_mask(users, batch["mask"])
        if mask is not None:
            per_entry = per_entry * mask
        return per_entry.sum(1).mean()  # the L2 term is the optimiser's weight decay

    def score_items(self, users: Tensor) -> Tensor:
        _, seen = self.train_rows.dense(users.cpu())
        rows = seen.to(device=users.device, dtype=self.net.output_bias.dtype)
        return self._output(self.net(rows, users))

    def on_train_start(self) -> None:
        trainer = self.trainer
        steps, epochs = trainer.max_steps, trainer.max_epochs
        per_epoch = trainer.num_training_batches
        if (steps is not None and steps > 0 and epochs is not None and epochs > 0
                and isinstance(per_epoch, int) and steps < epochs * per_epoch):
            warn(f"cdae trains {steps} optimiser steps (--trainer.max_steps {steps}), "
                 f"{steps / per_epoch:.1f} epochs of {per_epoch} steps, not max_epochs={epochs}; "
                 "pass --trainer.max_steps -1 to train every epoch of max_epochs")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # The (reg / 2N) |theta|^2 term of the objective as Adam's coupled weight decay reg / N:
        # the same gradient, without a pass over every weight to compute the norm each step.
        # fused: one kernel updates every parameter (a quarter of the unfused step's time on
        # CPU, measured).
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, fused=True,
                                weight_decay=self.hparams.reg / self.num_users)
