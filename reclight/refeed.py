"""Dense re-feeding (Kuchaiev and Ginsburg, "Training Deep AutoEncoders for Collaborative
Filtering", 2017, section 2.3) as a training-step hook.

A row autoencoder f sees a sparse rating vector x. Ideally f(x) predicts every rating the
user would give, so a perfect f satisfies f(f(x)) = f(x): the dense output is a fixed point.
After the normal optimiser step on x, :class:`DenseRefeeding` feeds y = f(x) back as a new
input with target y and takes one more optimiser step; with ``steps = N`` it repeats, each
time re-feeding the output of the previous pass (as the authors' reference code does).

Which target, and why: the target is y itself, **detached** (a constant) and **dense** (every
entry counts, no mask). Detached, because the fixed-point condition asks f to reproduce y,
not y to move towards f; a gradient through the target would let both sides drift together
towards a trivial fixed point. Dense, because filling the unobserved entries is the point of
re-feeding: it is the only step that gives the network a training signal there. With
``dropout > 0`` the *input* is y with entries dropped (inverted dropout) while the target stays
the clean y, i.e. a denoising step. The authors' code instead uses the noisy input as target and
masks out the dropped (zero) entries; we keep the clean dense target, which is what the paper
describes ("f(x) as a new example with target f(x)").

The hook works for any model with ``row_input(batch)`` (the masked dense input of a batch),
``reconstruct(values)`` and ``regularization()``; it calls ``model.optimization_step`` so every
extra step is a real optimiser step (it counts in ``trainer.global_step``, closures work
for L-BFGS, DDP gradients are averaged by ``manual_backward``).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor
from torch.nn import functional as F

from reclight.errors import ConfigError
from reclight.losses import masked_mse


class Refeedable(Protocol):
    """What a model needs for dense re-feeding (``RowAutoencoderModel`` provides it)."""

    def row_input(self, batch: dict[str, Tensor]) -> Tensor:
        """The dense network input of a batch (unobserved entries zeroed)."""

    def reconstruct(self, values: Tensor) -> Tensor:
        """The network's dense output for dense input rows."""

    def regularization(self) -> Tensor:
        """The weight penalty added to every loss (a zero tensor when there is none)."""

    def optimization_step(self, loss_fn: Any) -> Tensor:
        """One optimiser step (see :meth:`reclight.model.RecModel.optimization_step`)."""


class DenseRefeeding:
    """Step hook: ``steps`` extra optimiser steps per batch on the re-fed dense output.

    Args:
        steps: re-fed passes after each normal step (0 turns the hook into a no-op).
        dropout: probability of dropping each entry of the re-fed input (noise), in [0, 1).
    """

    def __init__(self, steps: int = 1, dropout: float = 0.0) -> None:
        check_refeed(steps, dropout)
        self.steps = int(steps)
        self.dropout = float(dropout)
        self.calls = 0

    def after_step(self, model: Any, batch: dict[str, Tensor], loss: Tensor) -> None:
        """Re-feed the dense reconstruction of ``batch`` ``steps`` times."""
        if self.steps == 0:
            return
        self.calls += 1
        with torch.no_grad():
            dense = model.reconstruct(model.row_input(batch))
        for _ in range(self.steps):
            dense = self._refeed_once(model, dense.detach())

    def _refeed_once(self, model: Any, target: Tensor) -> Tensor:
        holder: list[Tensor] = []
        inputs = F.dropout(target, self.dropout, training=True) if self.dropout > 0 else target

        def loss_fn() -> Tensor:
            out = model.reconstruct(inputs)
            holder.append(out.detach())
            return masked_mse(out, target) + model.regularization()

        loss = model.optimization_step(loss_fn)
        if getattr(model, "_trainer", None) is not None:  # outside fit there is nothing to log to
            model.log("refeed_loss", loss, on_step=False, on_epoch=True, batch_size=len(target))
        return holder[-1]


def check_refeed(steps: int, dropout: float) -> None:
    """Raise ConfigError for refeed_steps < 0 or a re-feeding dropout outside [0, 1)."""
    if int(steps) != steps or steps < 0:
        raise ConfigError(f"refeed_steps={steps} must be an integer >= 0 (--model.refeed_steps; "
                          "0 turns dense re-feeding off)")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"refeed_dropout={dropout} must be in [0, 1) (--model.refeed_dropout)")
