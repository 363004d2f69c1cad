"""Evaluation metrics, identical for every model.

Rating errors are accumulated as sums (squared error, absolute error, count) and reduced by
summation across ranks, so RMSE/MAE under DDP equal the single-process figures exactly.
Top-N metrics follow the definitions RecBole uses (full ranking, training items excluded):
precision = hits/k, recall = hits/|relevant|, hit = [hits > 0], NDCG with binary gains and
IDCG over min(|relevant|, k), MAP@k = sum of precision@i at hits / min(|relevant|, k).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

TOPN_NAMES = ("ndcg", "recall", "precision", "hit", "map")


class RatingErrors(Metric):
    """Exact RMSE and MAE over all predictions seen, across all ranks."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("sse", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sae", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("unseen", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, unseen: int = 0) -> None:
        """Add predictions and targets; ``unseen`` counts those that fell back."""
        # Out-of-place on purpose: under ddp_spawn on CPU the states of the pickled model live
        # in shared memory, and in-place adds would make every rank add into one tensor.
        err = pred.double() - target.double()
        self.sse = self.sse + (err**2).sum()
        self.sae = self.sae + err.abs().sum()
        self.count = self.count + err.numel()
        self.unseen = self.unseen + unseen

    def compute(self) -> dict[str, Tensor]:
        n = self.count.clamp_min(1).double()
        return {"rmse": torch.sqrt(self.sse / n), "mae": self.sae / n, "count": self.count,
                "unseen": self.unseen}


def topn_per_user(scores: Tensor, targets: Tensor, k: int) -> dict[str, Tensor]:
    """Per-user top-N metrics from scores [B, I] (excluded items already -inf) and targets [B, I]."""
    k = min(k, scores.shape[1])
    top = torch.topk(scores, k, dim=1).indices
    rel = torch.gather(targets, 1, top).to(torch.float64)  # [B, k] hits in rank order
    n_rel = targets.sum(dim=1).to(torch.float64)
    hits = rel.sum(dim=1)
    ranks = torch.arange(1, k + 1, device=scores.device, dtype=torch.float64)
    discounts = 1.0 / torch.log2(ranks + 1.0)
    dcg = (rel * discounts).sum(dim=1)
    ideal_len = torch.clamp(n_rel, max=k).long()
    idcg = torch.cumsum(discounts, 0)[(ideal_len - 1).clamp_min(0)] * (ideal_len > 0)
    denom = torch.clamp(n_rel, max=k).clamp_min(1.0)
    prec_at_i = torch.cumsum(rel, dim=1) / ranks
    return {
        "ndcg": torch.where(idcg > 0, dcg / idcg.clamp_min(1e-12), torch.zeros_like(dcg)),
        "recall": hits / n_rel.clamp_min(1.0),
        "precision": hits / k,
        "hit": (hits > 0).to(torch.float64),
        "map": (prec_at_i * rel).sum(dim=1) / denom,
    }


class TopNMetrics(Metric):
    """Sums of per-user top-N metrics and the number of users, reduced across ranks."""

    full_state_update = False

    def __init__(self, k: int = 10) -> None:
        super().__init__()
        self.k = k
        for name in TOPN_NAMES:
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("users", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        per_user = topn_per_user(scores, targets, self.k)
        for name in TOPN_NAMES:
            setattr(self, name, getattr(self, name) + per_user[name].sum())
        self.users = self.users + scores.shape[0]  # out-of-place: see RatingErrors.update

    def compute(self) -> dict[str, Tensor]:
        n = self.users.clamp_min(1).double()
        result = {f"{name}@{self.k}": getattr(self, name) / n for name in TOPN_NAMES}
        result["users"] = self.users.clone()
        return result
