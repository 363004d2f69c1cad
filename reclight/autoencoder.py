"""Shared code of row autoencoders for explicit ratings: AutoRec (Sedhain, Menon, Sanner and
Xie, "AutoRec: Autoencoders Meet Collaborative Filtering", WWW 2015) and DeepRec (Kuchaiev and
Ginsburg, "Training Deep AutoEncoders for Collaborative Filtering", 2017).

A row autoencoder reads one sparse row of the training matrix (a user's ratings of every item,
or for an item-based model an item's ratings by every user), reconstructs it densely, and is
trained on the masked MSE over the observed entries only. A rating (u, i) is predicted by
feeding u's (or i's) training row and reading the reconstruction at the other index, so the
core's evaluation works unchanged.

With ``center`` (the default) the network learns the residual from the baseline predictor
b(u, i) = mu + b_u + b_i (global mean and damped biases, :mod:`reclight.fallback`): inputs and
targets are r - b(u, i) on the observed entries (zeros elsewhere) and a prediction is b(u, i)
plus the reconstruction. An all-zero input, a row the network knows nothing about, then
predicts the baseline instead of whatever the decoder's biases say, and regularisation shrinks
towards the baseline instead of towards zero. Without centering, a row with one or two ratings
(most items when items far outnumber users) is reconstructed from an almost empty input, and
the defaults lost to the baseline on such data (issue 18; benchmarks/default_shapes.py).
Centering on the baseline is classic collaborative-filtering practice (Koren, "Factor in the
Neighbors", TKDD 2010, section 2.1: models fit the residual of the baseline estimates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from reclight.data.sparse import SparseRows
from reclight.data.training import TrainingData
from reclight.errors import ConfigError
from reclight.losses import masked_mse
from reclight.model import RecModel
from reclight.ranking import pairs_from_rows
from reclight.refeed import DenseRefeeding, check_refeed
from reclight.sparse_ops import RowPattern

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "selu": nn.SELU, "elu": nn.ELU, "lrelu": nn.LeakyReLU, "relu": nn.ReLU, "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "swish": nn.SiLU, "identity": nn.Identity,
}
VARIANTS = {"user": "user_rows", "item": "item_rows"}
CENTERING = ("residual", "output", "none")
# Cells (rows x columns) densified and reconstructed at once when predicting.
CHUNK_CELLS = 1 << 22


def activation(name: str, flag: str = "--model.activation") -> nn.Module:
    """The activation module called ``name``; ConfigError listing the valid names otherwise."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}' ({flag}); choose one of "
                          f"{', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def fused_supported(device: torch.device) -> bool | None:
    """``fused`` for torch's Adam/SGD: one fused kernel per step on CPU and CUDA. On CPU it
    made the optimiser step 2.2x (SGD with momentum) to 5x (Adam) faster than the default
    per-parameter loop for DeepRec's 3.3M weights (benchmarks/RESULTS.md, issue 18); None
    (torch's default) elsewhere."""
    return True if device.type in ("cpu", "cuda") else None


def parse_layers(hidden: str | int | Sequence[int], flag: str = "--model.hidden") -> list[int]:
    """Layer sizes from ``"512,512,1024"``, ``"[512, 512]"``, ``512`` or ``[512, 512]``."""
    if isinstance(hidden, str):
        parts = [p.strip() for p in hidden.strip().strip("[]()").split(",") if p.strip()]
        try:
            sizes = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"hidden layer sizes '{hidden}' must be integers separated by commas, "
                              f"e.g. {flag} 512,512,1024") from None
    elif isinstance(hidden, int):
        sizes = [hidden]
    else:
        sizes = [int(h) for h in hidden]
    if not sizes:
        raise ConfigError(f"the hidden layer list is empty ({flag}); give at least one size, "
                          f"e.g. {flag} 512,512,1024")
    if min(sizes) < 1:
        raise ConfigError(f"hidden layer sizes {sizes} must all be >= 1 ({flag})")
    return sizes


def check_dropout(p: float, flag: str = "--model.dropout") -> float:
    """``p`` if it is a dropout probability in [0, 1), else ConfigError."""
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout={p} must be in [0, 1) ({flag}); 0 turns it off")
    return float(p)


def auto_variant(num_users: int, num_items: int) -> str:
    """The row orientation with more rows: "item" when items outnumber users, else "user".

    Rows are the network's training examples and the other side is its width, so its weights
    grow with the side that is not the rows. Taking the more numerous side as rows gives the
    most examples for the fewest weights. I-AutoRec on MovieLens 100K (1,682 items, 943 users)
    is the paper's better variant. With ten times more users than items, item rows lost to the
    baseline and user rows won (issue 18, benchmarks/RESULTS.md).
    """
    return "item" if num_items > num_users else "user"


class RowAutoencoderModel(RecModel):
    """Base of row autoencoders: subclasses set ``self.net`` (input width = ``row_width``).

    Args:
        data: the training data (filled in by the CLI).
        variant: "user" (rows of R, the user_rows view), "item" (rows of R transposed, the
            item_rows view) or "auto" (:func:`auto_variant`: the side with more rows); it sets
            ``self.input_kind``.
        refeed_steps: dense re-feeding passes after each normal step (0: off); see
            :mod:`reclight.refeed`. Re-feeding takes optimiser steps of its own, so a model with
            ``refeed_steps > 0`` trains with manual optimisation (the step hook point).
        refeed_dropout: dropout noise on the re-fed input, in [0, 1).
        center: "residual": inputs and targets are residuals from the baseline mu + b_u + b_i
            (see the module docstring); "output": the input is the raw ratings and the output
            is added to the baseline (the target is the residual); "none": raw ratings in and
            out, as in the papers.
    """

    input_kind: ClassVar[str] = "user_rows"

    def __init__(self, data: TrainingData | Mapping[str, Any], variant: str = "user",
                 refeed_steps: int = 0, refeed_dropout: float = 0.0,
                 center: str = "residual") -> None:
        super().__init__(data)
        if center not in CENTERING:
            raise ConfigError(f"unknown center '{center}' (--model.center); choose one of "
                              f"{', '.join(CENTERING)}")
        if center == "output" and refeed_steps > 0:
            raise ConfigError("dense re-feeding feeds the output back as input, so it needs the "
                              "input and output on one scale: --model.center residual or none")
        self.center = center
        if variant not in (*VARIANTS, "auto"):
            raise ConfigError(f"unknown variant '{variant}' (--model.variant); choose one of "
                              f"{', '.join(VARIANTS)}, auto")
        if variant == "auto":
            variant = auto_variant(self.num_users, self.num_items)
        check_refeed(refeed_steps, refeed_dropout)
        self.variant = variant
        self.input_kind = VARIANTS[variant]  # type: ignore[misc]  # per instance: the data reads it
        if refeed_steps > 0:
            self.training_kind = "manual"  # type: ignore[misc]
            self.step_hooks.append(DenseRefeeding(refeed_steps, refeed_dropout))

    @property
    def row_width(self) -> int:
        """Length of one input row: items for the user variant, users for the item variant."""
        return self.num_items if self.variant == "user" else self.num_users

    # ---- the network ----------------------------------------------------------------------
    def reconstruct(self, values: Tensor) -> Tensor:
        """Dense reconstruction [B, row_width] of dense input rows (zeros where unobserved)."""
        return self.net(values)

    def regularization(self) -> Tensor:
        """Weight penalty added to the loss; none by default."""
        return torch.zeros((), device=self.device)

    def _row_col_bias(self) -> tuple[Tensor, Tensor]:
        return ((self.fallback_user_bias, self.fallback_item_bias) if self.variant == "user"
                else (self.fallback_item_bias, self.fallback_user_bias))

    def row_baseline(self, rows: Tensor) -> Tensor | None:
        """The baseline mu + b_u + b_i of every entry of ``rows`` [B, row_width] (None when
        the model is not centered)."""
        if self.center == "none":
            return None
        row_bias, col_bias = self._row_col_bias()
        rows = rows.to(row_bias.device)
        return (row_bias[rows] + self.global_mean).unsqueeze(1) + col_bias.unsqueeze(0)

    def entry_baseline(self, rows: Tensor, pattern: RowPattern) -> Tensor | None:
        """The baseline at ``pattern``'s entries [nnz] of the batch rows ``rows`` (None when
        the model is not centered): ``row_baseline(rows)[pattern.rows, pattern.cols]``
        without the dense [B, row_width] tensor."""
        if self.center == "none":
            return None
        row_bias, col_bias = self._row_col_bias()
        rows = rows.to(row_bias.device)
        return row_bias[rows][pattern.rows] + self.global_mean + col_bias[pattern.cols]

    def entry_values(self, batch: dict[str, Tensor]) -> tuple[RowPattern, Tensor, Tensor]:
        """The observed entries of a row batch: their pattern, the network input there
        (ratings, or residuals with center "residual") and the target there (ratings, or
        residuals when centered) -- the sparse counterparts of ``row_input``/``row_target``."""
        pattern = RowPattern.from_mask(batch["mask"])
        values = batch["values"][pattern.rows, pattern.cols]
        base = self.entry_baseline(batch["rows"], pattern)
        target = values if base is None else values - base
        return pattern, (target if self.center == "residual" else values), target

    def row_target(self, batch: dict[str, Tensor]) -> Tensor:
        """What the network reconstructs on the observed entries: the ratings, or when
        centered their residuals from the baseline (zeros elsewhere)."""
        base = self.row_baseline(batch["rows"])
        values = batch["values"] if base is None else batch["values"] - base
        return torch.where(batch["mask"], values, torch.zeros_like(values))

    def row_input(self, batch: dict[str, Tensor]) -> Tensor:
        """The network input of a batch: observed ratings (residuals with center "residual"),
        zeros elsewhere."""
        if self.center == "residual":
            return self.row_target(batch)
        return torch.where(batch["mask"], batch["values"], torch.zeros_like(batch["values"]))

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        target = self.row_target(batch)
        pred = self.reconstruct(self.row_input(batch))
        return masked_mse(pred, target, batch["mask"]) + self.regularization()

    # ---- prediction from the training rows -------------------------------------------------
    def source_rows(self) -> SparseRows:
        """The training matrix in this model's row orientation (R or its transpose)."""
        return self.data.matrix if self.variant == "user" else self.data.item_major

    def reconstruct_rows(self, rows: Tensor) -> Tensor:
        """Reconstructions [len(rows), row_width] of training rows ``rows``, in chunks."""
        source = self.source_rows()
        step = max(1, CHUNK_CELLS // max(self.row_width, 1))
        parts = []
        for s in range(0, len(rows), step):
            chunk = rows[s:s + step].cpu()
            values, mask = source.dense(chunk)
            batch = {"rows": chunk, "values": values.to(self.device), "mask": mask.to(self.device)}
            out = self.reconstruct(self.row_input(batch))
            base = self.row_baseline(chunk)
            parts.append(out if base is None else out + base)
        if not parts:
            return torch.zeros(0, self.row_width, device=self.device)
        return torch.cat(parts)

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        rows, cols = (users, items) if self.variant == "user" else (items, users)
        return pairs_from_rows(rows, cols, self.reconstruct_rows, self.row_width, CHUNK_CELLS)

    def score_items(self, users: Tensor) -> Tensor:
        if self.variant == "user":
            return self.reconstruct_rows(users)
        scores = torch.empty(len(users), self.num_items, device=self.device)
        step = max(1, CHUNK_CELLS // max(self.num_users, 1))
        for s in range(0, self.num_items, step):
            items = torch.arange(s, min(s + step, self.num_items))
            scores[:, s:s + len(items)] = self.reconstruct_rows(items)[:, users.to(self.device)].T
        return scores

