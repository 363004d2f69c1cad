"""Model-independent fallback for users and items never seen in training.

Baseline estimates with shrinkage (Koren, "Factor in the Neighbors", TKDD 2010, section 2.1):
b_i = sum(r - mu) / (lambda_i + n_i) over an item's ratings, then b_u likewise on r - mu - b_i.
For explicit models a pair with an unseen user is predicted mu + b_i, an unseen item mu + b_u,
both unseen mu; an unseen user's ranking is by mu + b_i. Implicit models' scores have no
rating scale to fall back on: an unseen pair has no score (NaN), and an unseen user's ranking
is by item popularity (training interactions).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

ITEM_SHRINK = 25.0
USER_SHRINK = 10.0


def baseline_biases(users: Tensor, items: Tensor, ratings: Tensor, num_users: int, num_items: int,
                    mean: float) -> tuple[Tensor, Tensor]:
    """User and item biases around ``mean``, computed in bulk with scatter-adds."""
    resid = ratings.double() - mean
    item_sum = torch.zeros(num_items, dtype=torch.float64).index_add_(0, items, resid)
    item_n = torch.bincount(items, minlength=num_items).double()
    b_i = item_sum / (ITEM_SHRINK + item_n)
    resid = resid - b_i[items]
    user_sum = torch.zeros(num_users, dtype=torch.float64).index_add_(0, users, resid)
    user_n = torch.bincount(users, minlength=num_users).double()
    b_u = user_sum / (USER_SHRINK + user_n)
    return b_u.float(), b_i.float()


def predict_with_fallback(model: Any, users: Tensor, items: Tensor) -> tuple[Tensor, int]:
    """Predictions for any (user, item) index pairs, -1 marking an id unseen in training.

    Explicit models: ``predict_ratings`` on the known pairs, the baseline on the others, all
    clipped to the rating range. Implicit models: ``score_pairs`` on the known pairs, NaN on
    the others, never clipped (scores are not ratings). Returns the values and how many pairs
    fell back.
    """
    known_u, known_i = users >= 0, items >= 0
    known = known_u & known_i
    if model.feedback == "implicit":
        out = torch.full(users.shape, float("nan"), dtype=torch.float32, device=users.device)
        if bool(known.any()):
            out[known] = model.score_pairs(users[known], items[known]).float()
        return out, int((~known).sum())
    out = torch.full(users.shape, model.global_mean, dtype=torch.float32, device=users.device)
    out = out + torch.where(known_u, model.fallback_user_bias[users.clamp_min(0)], 0.0)
    out = out + torch.where(known_i, model.fallback_item_bias[items.clamp_min(0)], 0.0)
    if bool(known.all()):
        out = model.predict_ratings(users, items).float()
    elif bool(known.any()):
        out[known] = model.predict_ratings(users[known], items[known]).float()
    lo, hi = model.rating_range
    return out.clamp(lo, hi), int((~known).sum())


def fallback_item_scores(model: Any) -> Tensor:
    """float32 [num_items]: how an unseen user's items are ranked (see the module docstring)."""
    if model.feedback == "implicit":
        return model.fallback_item_popularity.float()
    return model.global_mean + model.fallback_item_bias
