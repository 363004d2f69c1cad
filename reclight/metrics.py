"""Evaluation metrics, identical for every model.

Rating errors are accumulated as sums (squared error, absolute error, count) and reduced by
summation across ranks, so RMSE/MAE under DDP equal the single-process figures exactly.
Top-N metrics follow the definitions RecBole uses (full ranking, training items excluded),
at every cut-off k asked for at once: precision = hits/k, recall = hits/|relevant|,
hit = [hits > 0], NDCG with binary gains and IDCG over min(|relevant|, k),
MAP@k = sum of precision@i at hits / min(|relevant|, k), MRR@k = 1 / rank of the first hit
within the top k (0 without one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from reclight.errors import ConfigError

TOPN_NAMES = ("ndcg", "recall", "precision", "hit", "map", "mrr")


def parse_ks(value: int | str | Iterable[int]) -> tuple[int, ...]:
    """Cut-offs from ``10``, ``"5,10,20"`` or ``[5, 10]``: sorted, distinct, each >= 1."""
    if isinstance(value, int):
        parts: list[object] = [value]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.strip().strip("[]()").split(",") if p.strip()]
    else:
        parts = list(value)
    try:
        ks = sorted({int(p) for p in parts})  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ConfigError(f"top-N cut-offs '{value}' must be integers separated by commas, "
                          "e.g. --eval_k 5,10,20") from None
    if not ks or ks[0] < 1:
        raise ConfigError(f"top-N cut-offs {value!r} must be one or more integers >= 1, "
                          "e.g. --eval_k 10")
    return tuple(ks)


class RatingErrors(Metric):
    """Exact RMSE and MAE over all predictions seen, across all ranks."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        """``kwargs`` go to torchmetrics' Metric (e.g. ``sync_on_compute=False``)."""
        super().__init__(**kwargs)
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


def topn_at(scores: Tensor, targets: Tensor, ks: Sequence[int]) -> dict[int, dict[str, Tensor]]:
    """Per-user top-N metrics at each k from one ranking: scores [B, I] (excluded items
    already -inf) and targets [B, I] (bool). Returns ``{k: {name: float64[B]}}``."""
    top_k = min(max(ks), scores.shape[1])
    top = torch.topk(scores, top_k, dim=1).indices
    rel_all = torch.gather(targets, 1, top).to(torch.float64)  # [B, top_k] hits in rank order
    n_rel = targets.sum(dim=1).to(torch.float64)
    ranks = torch.arange(1, top_k + 1, device=scores.device, dtype=torch.float64)
    discounts = 1.0 / torch.log2(ranks + 1.0)
    cum_discounts = torch.cumsum(discounts, 0)
    out: dict[int, dict[str, Tensor]] = {}
    for k in ks:
        kk = min(k, top_k)
        rel = rel_all[:, :kk]
        hits = rel.sum(dim=1)
        dcg = (rel * discounts[:kk]).sum(dim=1)
        ideal_len = torch.clamp(n_rel, max=kk).long()
        idcg = cum_discounts[(ideal_len - 1).clamp_min(0)] * (ideal_len > 0)
        prec_at_i = torch.cumsum(rel, dim=1) / ranks[:kk]
        first = torch.where(hits > 0, rel.argmax(dim=1).to(torch.float64) + 1.0,
                            torch.full_like(hits, float("inf")))
        out[k] = {
            "ndcg": torch.where(idcg > 0, dcg / idcg.clamp_min(1e-12), torch.zeros_like(dcg)),
            "recall": hits / n_rel.clamp_min(1.0),
            "precision": hits / kk,
            "hit": (hits > 0).to(torch.float64),
            "map": (prec_at_i * rel).sum(dim=1) / torch.clamp(n_rel, max=kk).clamp_min(1.0),
            "mrr": 1.0 / first,
        }
    return out


def topn_per_user(scores: Tensor, targets: Tensor, k: int) -> dict[str, Tensor]:
    """Per-user top-N metrics at one cut-off ``k`` (see :func:`topn_at`)."""
    return topn_at(scores, targets, [k])[k]


class TopNMetrics(Metric):
    """Sums of per-user top-N metrics at every cut-off, and the number of users, reduced
    across ranks."""

    full_state_update = False

    def __init__(self, ks: int | Iterable[int] = 10) -> None:
        super().__init__()
        self.ks = parse_ks(ks)
        for k in self.ks:
            for name in TOPN_NAMES:
                self.add_state(f"{name}_{k}", default=torch.tensor(0.0, dtype=torch.float64),
                               dist_reduce_fx="sum")
        self.add_state("users", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        for k, per_user in topn_at(scores, targets, self.ks).items():
            for name in TOPN_NAMES:
                key = f"{name}_{k}"  # out-of-place: see RatingErrors.update
                setattr(self, key, getattr(self, key) + per_user[name].sum())
        self.users = self.users + scores.shape[0]

    def compute(self) -> dict[str, Tensor]:
        n = self.users.clamp_min(1).double()
        result = {f"{name}@{k}": getattr(self, f"{name}_{k}") / n
                  for k in self.ks for name in TOPN_NAMES}
        result["users"] = self.users.clone()
        return result
