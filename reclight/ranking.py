"""Ranking with the training items excluded: shared by top-N evaluation and ``recommend``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from reclight.fallback import fallback_item_scores


def pairs_from_rows(rows: Tensor, cols: Tensor, score_rows: Callable[[Tensor], Tensor],
                    width: int, cells: int = 1 << 22) -> Tensor:
    """Values at (rows[k], cols[k]) read from ``score_rows(unique_rows) -> [n, width]``, each
    distinct row scored once and at most ``cells`` values scored at a time."""
    unique, inverse = torch.unique(rows, return_inverse=True)
    out: Tensor | None = None
    step = max(1, cells // max(width, 1))
    for s in range(0, len(unique), step):
        scores = score_rows(unique[s:s + step])
        if out is None:
            out = torch.empty(len(rows), device=scores.device)
        sel = (inverse >= s) & (inverse < s + step)
        out[sel] = scores[inverse[sel] - s, cols[sel].to(scores.device)].float()
    return out if out is not None else torch.empty(0, device=rows.device)


def seen_mask(model: Any, users: Tensor) -> Tensor:
    """Boolean [len(users), num_items]: the items each known user had in training (unseen
    users, index -1, have none)."""
    _, mask = model.train_rows.dense(users.clamp_min(0).cpu())
    mask = mask.to(users.device)
    mask[users < 0] = False
    return mask


def excluded_scores(model: Any, users: Tensor) -> Tensor:
    """``score_items`` of known users with their training items set to -inf."""
    scores = model.score_items(users).float()
    return scores.masked_fill(seen_mask(model, users), float("-inf"))


@torch.no_grad()
def recommend(model: Any, users: Tensor, k: int, exclude_seen: bool = True) -> tuple[Tensor, Tensor]:
    """Top-k item indices and scores per user; unseen users (index -1) are ranked by the
    fallback (:func:`reclight.fallback.fallback_item_scores`). Excluded items score -inf."""
    scores = fallback_item_scores(model).to(users.device).expand(len(users), -1).clone()
    known = users >= 0
    if bool(known.any()):
        scores[known] = model.score_items(users[known]).float()
    if exclude_seen:
        scores = scores.masked_fill(seen_mask(model, users), float("-inf"))
    top = torch.topk(scores, min(k, model.num_items), dim=1)
    return top.indices, top.values
