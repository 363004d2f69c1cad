"""Losses on plain tensors. Explicit ratings train on observed entries only."""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over the entries where ``mask`` is true (all entries when None).

    Unobserved entries of a rating matrix are unknown, not zero: counting them would teach a
    model to predict zeros (Sedhain et al. 2015; Kuchaiev and Ginsburg 2017, "masked MSE").
    Returns 0 (with a gradient path) when nothing is observed.
    """
    if mask is None:
        return torch.mean((pred - target) ** 2)
    mask = mask.to(pred.dtype)
    sq = (pred - target) ** 2 * mask
    return sq.sum() / mask.sum().clamp_min(1.0)


def masked_sse(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Sum of squared errors over observed entries and their count (for exact averages)."""
    mask = mask.to(pred.dtype)
    return (((pred - target) ** 2) * mask).sum(), mask.sum()
