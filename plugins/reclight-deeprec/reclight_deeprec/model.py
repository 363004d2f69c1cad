"""The ``deeprec`` model: a deep autoencoder for ratings (Kuchaiev and Ginsburg, "Training Deep
AutoEncoders for Collaborative Filtering", arXiv:1708.01715, 2017).

User-based: each user's sparse vector of item ratings is encoded through any list of layers,
decoded through the mirrored list, and trained on the masked MSE (eq. 1). The paper's
ingredients are all options: SELU (and other) activations, heavy dropout on the code layer,
a constrained decoder (tied transposed weights), a linear last layer, dense re-feeding
(section 2.3; a step hook, :mod:`reclight.refeed`), and SGD with momentum under a multi-step
learning-rate schedule, or Adam.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from reclight.autoencoder import (RowAutoencoderModel, activation, check_dropout,
                                  fused_supported, parse_layers)
from reclight.data.training import TrainingData
from reclight.errors import ConfigError
from reclight.losses import masked_mse
from reclight.refeed import DenseRefeeding
from reclight.schedules import check_gamma, parse_milestones, with_multistep
from reclight_deeprec.network import DeepAutoencoder

OPTIMIZERS = ("sgd", "adam")
REFEED_FROM = ("step", "update")


class DeepRec(RowAutoencoderModel):
    """Deep autoencoder with dense re-feeding (Kuchaiev and Ginsburg 2017).

    Args:
        data: the training data (filled in by the CLI).
        hidden: encoder layer sizes, a list or a comma-separated string; the decoder mirrors
            them, so k sizes give 2k layers. The default 256,256,512 is half the paper's
            512,512,1024 (sized for Netflix's 17,770-item rows): on a validation carve of
            MovieLens 100K it trains 2.3x cheaper a step for the same depth.
        activation: selu, elu, lrelu, relu, relu6, sigmoid, tanh, swish (or identity).
        dropout: dropout probability on the code layer, in [0, 1). The paper's 0.8 (with no
            weight decay) suits Netflix; the default 0.5 with ``weight_decay`` 0.005 was chosen
            on a validation carve of MovieLens 100K and is better on all five of its folds.
        constrained: decoder weights are the transposed encoder weights (own biases).
        linear_last: no activation on the output layer.
        optimizer: "sgd" (with momentum and the multi-step schedule) or "adam".
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay of the optimiser (0 in the paper; see ``dropout``).
        milestones: epochs after which the learning rate is multiplied by ``gamma``
            (a list or a comma-separated string; empty: constant rate). The default 18,24
            with ``gamma`` 0.3 and 30 epochs (the earlier 30,40 of 50 epochs, scaled) was
            chosen on a validation carve of MovieLens 100K.
        gamma: the multi-step schedule's factor.
        variant: "auto" (the side with more rows: items on MovieLens 100K; see
            reclight.autoencoder.auto_variant), "user" (the paper's) or "item" (rows are items).
        refeed_steps: dense re-feeding steps after each normal step (0: off).
        refeed_dropout: dropout noise on the re-fed input.
        center: "residual" (learn the residual from the baseline mu + b_u + b_i; see
            reclight.autoencoder), "output" (raw ratings in, baseline + output out) or "none"
            (the paper's raw ratings).
        cap_hidden: cap every layer size at the row width (the input's length), so a narrow
            row never gets a code wider than itself.
        refeed_from: which f(x) is re-fed: "step" (the paper's section 2.3: the output the
            normal step computed before its update, so re-feeding costs no extra forward pass)
            or "update" (a fresh forward pass after the update, reclight's behaviour before
            session 3 of issue 18).
    """

    input_kind: ClassVar[str] = "user_rows"
    # One intra-op thread: on the shared 2-core box two threads spin-wait for each other and a
    # step took 3.4x the CPU time and 2.1x the wall time (benchmarks/deeprec_levers.py).
    cpu_threads: ClassVar[int | None] = 1
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 30}
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 256}

    def __init__(self, data: TrainingData | Mapping[str, Any],
                 hidden: list[int] | str = "256,256,512", activation: str = "selu",
                 dropout: float = 0.5, constrained: bool = False, linear_last: bool = False,
                 optimizer: str = "sgd", lr: float = 0.04, momentum: float = 0.9,
                 weight_decay: float = 0.005, milestones: list[int] | str = "18,24",
                 gamma: float = 0.3, variant: str = "auto", refeed_steps: int = 1,
                 refeed_dropout: float = 0.0, center: str = "residual",
                 cap_hidden: bool = True, refeed_from: str = "step") -> None:
        super().__init__(data, variant=variant, refeed_steps=refeed_steps,
                         refeed_dropout=refeed_dropout, center=center)
        # No layer wider than the input row: the paper's 512-512-1024 is sized for Netflix's
        # 17,770-item rows; on narrow rows a wider code only adds weights to overfit and time.
        layers = [min(h, self.row_width) for h in parse_layers(hidden)] if cap_hidden \
            else parse_layers(hidden)
        act = _activation(activation)
        check_dropout(dropout)
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer '{optimizer}' for deeprec; choose one of "
                              f"{', '.join(OPTIMIZERS)} (--model.optimizer)")
        if lr <= 0 or weight_decay < 0 or not 0 <= momentum < 1:
            raise ConfigError(f"deeprec needs lr > 0, weight_decay >= 0 and 0 <= momentum < 1; "
                              f"got lr={lr}, weight_decay={weight_decay}, momentum={momentum}")
        check_gamma(gamma)
        if refeed_from not in REFEED_FROM:
            raise ConfigError(f"unknown refeed_from '{refeed_from}' for deeprec; choose one of "
                              f"{', '.join(REFEED_FROM)} (--model.refeed_from)")
        self._kept: tuple[dict[str, Tensor], Tensor] | None = None
        if self.step_hooks and refeed_from == "step":
            self.step_hooks[-1] = KeptOutputRefeeding(refeed_steps, refeed_dropout)
        self.milestones = parse_milestones(milestones)
        self.save_hyperparameters()
        self.net = DeepAutoencoder(self.row_width, layers, act, dropout, constrained, linear_last)

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        target = self.row_target(batch)
        pred = self.reconstruct(self.row_input(batch))
        if self.step_hooks and self.hparams.refeed_from == "step":
            self._kept = (batch, pred.detach())
        return masked_mse(pred, target, batch["mask"]) + self.regularization()

    def dense_output(self, batch: dict[str, Tensor]) -> Tensor | None:
        """The dense f(x) the normal step computed on ``batch`` (for re-feeding), once."""
        kept, self._kept = self._kept, None
        return kept[1] if kept is not None and kept[0] is batch else None

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        fused = fused_supported(self.device)
        if hp.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(self.net.parameters(), lr=hp.lr,
                                                          weight_decay=hp.weight_decay,
                                                          fused=fused)
        else:
            opt = torch.optim.SGD(self.net.parameters(), lr=hp.lr, momentum=hp.momentum,
                                  weight_decay=hp.weight_decay, fused=fused)
        return with_multistep(opt, self.milestones, hp.gamma)


def _activation(name: str) -> torch.nn.Module:
    return activation(name, "--model.activation")


class KeptOutputRefeeding(DenseRefeeding):
    """Dense re-feeding of the f(x) the normal step computed (the paper's section 2.3, steps 1
    and 3: "treat f(x) as a new example"), instead of the core hook's fresh forward pass after
    the update, so a re-fed batch costs one forward pass less. It lives here rather than in
    reclight.refeed because only DeepRec keeps its output (``dense_output``); the core hook
    is used unchanged when there is nothing kept (e.g. a step hook called on its own)."""

    def after_step(self, model: Any, batch: dict[str, Tensor], loss: Tensor) -> None:
        kept = model.dense_output(batch)
        if kept is None or self.steps == 0:
            super().after_step(model, batch, loss)
            return
        self.calls += 1
        dense = kept
        for _ in range(self.steps):
            dense = self._refeed_once(model, dense.detach())
