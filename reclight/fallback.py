"""Model-independent fallback for users and items never seen in training.

Baseline estimates with shrinkage (Koren, "Factor in the Neighbors", TKDD 2010, section 2.1):
b_i = sum(r - mu) / (lambda_i + n_i) over an item's ratings, then b_u likewise on r - mu - b_i.
A pair with an unseen user is predicted mu + b_i, an unseen item mu + b_u, both unseen mu.
"""

from __future__ import annotations

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
