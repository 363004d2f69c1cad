"""EASE as a reclight model (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
WWW 2019): a solver on the ``matrix`` view, implicit feedback, one closed-form solve.

Written against reclight's public API only: :class:`reclight.model.RecModel` and its
declarations, :class:`reclight.data.TrainingData` (the model's ``data``), and
:class:`reclight.errors.ConfigError` for a bad hyper-parameter. The mathematics is in
:mod:`reclight_ease.solver`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from reclight.data import TrainingData
from reclight.errors import ConfigError
from reclight.model import RecModel
from reclight_ease.solver import ease_weights, gram, gram_bytes


class EASE(RecModel):
    """EASE: item-item weights B = I - P diag(1/diag(P)), P = (X^T X + l2 I)^-1, zero diagonal
    (Steck 2019). Scores are a user's binary interaction row times B.

    Args:
        data: the training data (filled in by reclight).
        l2: the L2 weight lambda on B (> 0). The default, 500, was chosen on a validation carve
            of MovieLens 100K's u1.base (see the README; Steck's paper reports 500 for
            MovieLens 20M too). Larger values shrink the weights towards popularity.
    """

    feedback: ClassVar[str] = "implicit"
    input_kind: ClassVar[str] = "matrix"
    training_kind: ClassVar[str] = "solver"
    # One solve is the whole fit; a second epoch would solve the same system again.
    trainer_defaults: ClassVar[dict[str, Any]] = {"max_epochs": 1}

    def __init__(self, data: TrainingData | Mapping[str, Any], l2: float = 500.0) -> None:
        super().__init__(data)
        if not l2 > 0:
            raise ConfigError(f"--model.l2={l2}; EASE's L2 weight must be > 0 (the default is 500)")
        self.save_hyperparameters()
        _check_memory(self.num_items)
        self.register_buffer("weights", torch.zeros(self.num_items, self.num_items))

    def solve_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        rows = batch["user_major"]  # users x items, the whole training matrix
        # Binary X: every interaction (every rating, on explicit data) counts as 1.
        g = gram(lambda users: rows.dense(users)[1], self.num_users, self.num_items)
        b = ease_weights(g.to(self.weights.device), float(self.hparams.l2))
        self.weights = b.to(self.weights.dtype)

    def score_items(self, users: Tensor) -> Tensor:
        _, seen = self.train_rows.dense(users.cpu())
        return seen.to(self.weights) @ self.weights


def _check_memory(num_items: int) -> None:
    """A one-line error instead of an allocation failure: the solve holds items^2 doubles."""
    need = gram_bytes(num_items)
    available = _available_bytes()
    if available is not None and need > available:
        raise ConfigError(f"EASE on {num_items} items needs about {need / 2**30:.1f} GiB for its "
                          f"items x items solve but {available / 2**30:.1f} GiB are available; "
                          "drop rare items from the data or use a machine with more memory")


def _available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
