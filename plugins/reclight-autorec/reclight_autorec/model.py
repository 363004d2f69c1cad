"""The ``autorec`` model: AutoRec (Sedhain, Menon, Sanner and Xie, "AutoRec: Autoencoders Meet
Collaborative Filtering", WWW 2015).

Item-based (I-AutoRec, the paper's better variant) reconstructs each item's vector of user
ratings; user-based (U-AutoRec) each user's vector of item ratings. The default "auto" takes
the side with more rows (I-AutoRec on MovieLens 100K; user rows where users far outnumber
items, where item rows lost to the baseline; issue 18). Objective
(eq. 2): squared error on observed entries plus lambda/2 (||W||^2 + ||V||^2). We minimise it
divided by the number of training ratings, i.e. the masked MSE of a batch plus
lambda / (2 N) (||W||^2 + ||V||^2), so ``reg`` is the paper's lambda whatever the batch size.
The paper optimises with L-BFGS (``optimizer="lbfgs"``, best with full batches); Adam is the
default because it reaches the same error with mini-batches in fewer seconds. Adam's rate
follows a multi-step schedule (x0.1 after epoch 20 of 40 by default, chosen on a validation
carve of MovieLens 100K: a little lower error than a constant rate, in half the epochs). By
default the encoder also reads the observation mask (``mask_input``), and training takes the
sparse step (``sparse``): both are described in the plugin README.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from reclight.autoencoder import RowAutoencoderModel, activation, fused_supported
from reclight.data.training import TrainingData
from reclight.errors import ConfigError
from reclight.schedules import check_gamma, parse_milestones, with_multistep
from reclight_autorec.network import AutoRecNet

OPTIMIZERS = ("adam", "lbfgs")
# The default lambda per training rating of an average row: 1.75 x 42.8 ratings per item row of
# MovieLens 100K's u1 carve = 75, the value chosen there on validation. A fixed lambda lost to
# the baseline on rows of 7-8 ratings (both ten-times shapes), where about 14 won (issue 18).
REG_PER_ROW_RATING = 1.75


class AutoRec(RowAutoencoderModel):
    """AutoRec, item- or user-based (Sedhain et al. 2015).

    Args:
        data: the training data (filled in by the CLI).
        variant: "auto" (the side with more rows, see reclight.autoencoder.auto_variant), "item"
            (I-AutoRec: rows are items, the item_rows view) or "user" (U-AutoRec).
        hidden: size of the single hidden layer (the paper's k; 500 in its experiments).
        encoder: activation g of the hidden layer (sigmoid in the paper).
        decoder: activation f of the output layer (identity in the paper).
        reg: the paper's lambda, weight of (||W||^2 + ||V||^2) / 2, per training rating. None
            (the default): 1.75 times the mean number of training ratings per row, so the
            penalty follows the rows' evidence (75 on MovieLens 100K's item rows, about 14 where
            rows hold 8 ratings); chosen on validation carves of MovieLens 100K u1 and of the
            synthetic shapes of reclight.shapes (benchmarks/RESULTS.md).
        lr: Adam's learning rate (L-BFGS takes unit steps with a strong-Wolfe line search).
        milestones: epochs after which Adam's rate is multiplied by ``gamma`` (a list or a
            comma-separated string; empty: constant rate). Not used by L-BFGS.
        gamma: the multi-step schedule's factor.
        optimizer: "adam" or "lbfgs" (the paper's choice).
        lbfgs_iters: L-BFGS iterations per batch (torch's max_iter).
        refeed_steps: dense re-feeding steps after each normal step (see reclight.refeed).
        refeed_dropout: dropout noise on the re-fed input.
        cap_hidden: cap the hidden size at the row width (the input's length).
        center: "residual" (learn the residual from the baseline mu + b_u + b_i; see
            reclight.autoencoder), "output" (raw ratings in, baseline + output out) or "none"
            (the paper's raw ratings).
        sparse: train with the sparse step (the encoder over the observed inputs, the
            decoder at the observed outputs only; see reclight_autorec.network), which has the
            dense step's loss and gradients at a fraction of its arithmetic; false: the dense
            B x width step.
        mask_input: also feed the row's 0/1 observation mask (which entries are rated: "who
            rated what", the implicit feedback of Koren, "Factorization Meets the
            Neighborhood", KDD 2008) through encoder weights of its own. The residual input
            alone carries only the deviations from the baseline; raw ratings carry both, tied.
            None (the default): on, unless dense re-feeding is (a re-fed row is dense and has
            no observation mask).
    """

    input_kind: ClassVar[str] = "item_rows"  # the default variant; instances follow `variant`
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 30}
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 256}
    # The sparse step is many small kernels: on the shared 2-core box a second intra-op thread
    # made a fit several times slower under load (10 epochs on the u1 carve at load 11:
    # 5.8 s with one thread; 71 s with two), as for mf.
    cpu_threads: ClassVar[int | None] = 1

    def __init__(self, data: TrainingData | Mapping[str, Any], variant: str = "auto",
                 hidden: int = 500, encoder: str = "sigmoid", decoder: str = "identity",
                 reg: float | None = None, lr: float = 4e-3, milestones: list[int] | str = "15",
                 gamma: float = 0.1, optimizer: str = "adam", lbfgs_iters: int = 20,
                 refeed_steps: int = 0, refeed_dropout: float = 0.0, center: str = "residual",
                 cap_hidden: bool = True, sparse: bool = True, mask_input: bool | None = None) -> None:
        super().__init__(data, variant=variant, refeed_steps=refeed_steps,
                         refeed_dropout=refeed_dropout, center=center)
        if mask_input is None:
            mask_input = refeed_steps == 0
        self.mask_input = bool(mask_input)
        if mask_input and refeed_steps > 0:
            raise ConfigError("dense re-feeding feeds the output back as a fully observed row, "
                              "which has no observation mask: use --model.mask_input false with "
                              "--model.refeed_steps")
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer '{optimizer}' for autorec; choose one of "
                              f"{', '.join(OPTIMIZERS)} (--model.optimizer)")
        rows = self.num_items if self.variant == "item" else self.num_users
        self.reg = REG_PER_ROW_RATING * self.data.nnz / max(rows, 1) if reg is None else float(reg)
        if hidden < 1 or self.reg < 0 or lr <= 0 or lbfgs_iters < 1:
            raise ConfigError(f"autorec needs hidden >= 1, reg >= 0, lr > 0 and lbfgs_iters >= 1; "
                              f"got hidden={hidden}, reg={reg}, lr={lr}, lbfgs_iters={lbfgs_iters}")
        check_gamma(gamma)
        self.milestones = parse_milestones(milestones)
        g = activation(encoder, "--model.encoder")
        f = activation(decoder, "--model.decoder")
        self.save_hyperparameters()
        # An over-complete code (wider than the row) can copy its input: on narrow rows (129
        # users a row on the small 10x-more-items shape) hidden 500 lost to the baseline.
        width = min(hidden, self.row_width) if cap_hidden else hidden
        self.net = AutoRecNet(self.row_width, width, g, f, mask_input=mask_input)

    def row_input(self, batch: dict[str, Tensor]) -> Tensor:
        values = super().row_input(batch)
        if not self.mask_input:
            return values
        return torch.cat([values, batch["mask"].to(values.dtype)], 1)

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        if not self.hparams.sparse:
            return super().training_loss(batch)
        pattern, inputs, target = self.entry_values(batch)
        pred = self.net.forward_entries(pattern, inputs)
        # The masked MSE of the dense step: its mean over the observed entries (0 if none).
        return (pred - target).pow(2).sum() / max(pattern.nnz, 1) + self.regularization()

    def penalty(self) -> Tensor:
        """The paper's L2 term divided by N: lambda / (2 N) (||W||^2 + ||V||^2)."""
        return self.reg / (2.0 * max(self.data.nnz, 1)) * self.net.weight_norm()

    def regularization(self) -> Tensor:
        # Adam applies the penalty as its weight decay (configure_optimizers): torch's Adam adds
        # weight_decay * w to the gradient, which is exactly the gradient of the penalty, without
        # a pass over every weight for the norm and another for its gradient in each step.
        if self.hparams.optimizer == "adam":
            return torch.zeros((), device=self.device)
        return self.penalty()

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        if hp.optimizer == "lbfgs":
            return torch.optim.LBFGS(self.net.parameters(), lr=1.0, max_iter=hp.lbfgs_iters,
                                     history_size=10, line_search_fn="strong_wolfe")
        net = self.net
        groups = [{"params": [net.encoder.weight_t, net.decoder.weight],
                   "weight_decay": self.reg / max(self.data.nnz, 1)},
                  {"params": [net.encoder.bias, net.decoder.bias], "weight_decay": 0.0}]
        opt = torch.optim.Adam(groups, lr=hp.lr, fused=fused_supported(self.device))
        return with_multistep(opt, self.milestones, hp.gamma)
