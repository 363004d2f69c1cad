"""Uniform evaluation: the model's declared feedback kind chooses what is measured.

- explicit models: exact RMSE/MAE over every held-out rating (unseen ids fall back and are
  counted) and top-N metrics over full rankings; validation monitors ``val_rmse`` (lower is
  better);
- implicit models: top-N metrics only (their scores are not ratings); validation ranks the
  validation items and monitors ``val_ndcg@k`` at the first cut-off (higher is better).

Which batches arrive is the DataModule's side of the same declaration: pair batches
(``ratings`` key) for rating errors, top-N batches (``targets`` key) for rankings. Metrics are
sums reduced across ranks (:mod:`reclight.metrics`), so DDP figures equal single-process ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from reclight.fallback import predict_with_fallback
from reclight.metrics import RatingErrors, TopNMetrics, parse_ks
from reclight.ranking import excluded_scores

FEEDBACK = ("explicit", "implicit")
STAGES = ("val", "test")


def monitor_of(feedback: str, ks: tuple[int, ...]) -> tuple[str, str]:
    """The validation metric a model of this feedback kind is judged by, and its mode."""
    return ("val_rmse", "min") if feedback == "explicit" else (f"val_ndcg@{ks[0]}", "max")


class Evaluation(nn.Module):
    """The metric states of one model, for validation and test (child module: moves with it)."""

    def __init__(self, ks: int | Iterable[int] = 10) -> None:
        super().__init__()
        self.ks = parse_ks(ks)
        self.errors = nn.ModuleDict({s: RatingErrors() for s in STAGES})
        self.topn = nn.ModuleDict({s: TopNMetrics(self.ks) for s in STAGES})

    def set_ks(self, ks: int | Iterable[int]) -> None:
        """Compute top-N metrics at these cut-offs from now on."""
        self.ks = parse_ks(ks)
        device = self.errors["val"].sse.device
        self.topn = nn.ModuleDict({s: TopNMetrics(self.ks).to(device) for s in STAGES})

    def update(self, stage: str, model: Any, batch: dict[str, Tensor]) -> None:
        """Add one evaluation batch (pairs or top-N users) of ``stage``."""
        if "ratings" in batch:
            if model.feedback == "explicit":
                pred, unseen = predict_with_fallback(model, batch["users"], batch["items"])
                self.errors[stage].update(pred, batch["ratings"], unseen)
            return
        self.topn[stage].update(excluded_scores(model, batch["users"]), batch["targets"])

    def log(self, stage: str, model: Any) -> dict[str, float]:
        """Log the epoch's metrics of ``stage`` through ``model.log`` and reset them."""
        logged = self.results(stage)
        monitor, _ = monitor_of(model.feedback, self.ks)
        for name, value in logged.items():
            # The sums were already reduced across ranks (float64), so every rank holds the
            # same final value. Lightning's default sync (a mean) would add it up world-size
            # times and divide, a rounding step away from it at 3 processes; the max of equal
            # values is the value itself, logged once per epoch, in float64.
            model.log(name, value, prog_bar=name == monitor, sync_dist=True, reduce_fx="max")
        return {k: float(v) for k, v in logged.items()}

    def results(self, stage: str) -> dict[str, Any]:
        """The metrics of ``stage`` so far (tensors named ``{stage}_rmse`` ...); resets them."""
        errors, topn = self.errors[stage], self.topn[stage]
        with warnings.catch_warnings():  # a metric with no update on this rank is expected
            warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
            err, ranks = errors.compute(), dict(topn.compute())
        users = int(ranks.pop("users"))
        logged: dict[str, Any] = {}
        if int(err["count"]) > 0:
            logged[f"{stage}_rmse"] = err["rmse"]
            logged[f"{stage}_mae"] = err["mae"]
            if stage == "test":
                logged["test_unseen"] = err["unseen"].double()
        if users > 0:
            logged.update({f"{stage}_{name}": value for name, value in ranks.items()})
            if stage == "test":
                logged["test_users"] = float(users)
        errors.reset()
        topn.reset()
        return logged
