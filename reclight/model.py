"""RecModel: the LightningModule contract every model plugin implements.

A plugin subclasses :class:`RecModel`, declares ``input_kind`` (the data view it trains on),
optionally ``trainer_defaults``/``data_defaults``, and implements ``training_loss`` and
``predict_ratings`` (and ``score_items`` where it can do better than scoring every pair).
Evaluation, the fallback for unseen ids, checkpoint metadata and the optimisation step live
here, identical for every model.

Optimisation is manual (``automatic_optimization = False``) so that the training-step hook
point can take further, properly synchronised optimiser steps after the normal one: dense
re-feeding (Kuchaiev and Ginsburg 2017) is such a hook. ``manual_backward`` keeps DDP
gradient averaging and mixed precision working.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import lightning as L
import torch
from torch import Tensor

from reclight.data import IdMap, SparseRows
from reclight.errors import ConfigError
from reclight.fallback import baseline_biases
from reclight.metrics import RatingErrors, TopNMetrics

# Constructor arguments every model takes and the CLI fills from the DataModule, not from flags.
DATA_ARGS = ("num_users", "num_items", "global_mean", "rating_range")
CHECKPOINT_KEY = "reclight"
CHECKPOINT_FORMAT = 1


class StepHook(Protocol):
    """Work added after the normal optimisation step of every training batch."""

    def after_step(self, model: RecModel, batch: dict[str, Tensor], loss: Tensor) -> None:
        """Called with the batch and its (detached) loss once the optimiser has stepped."""


def _as_list(obj: Any) -> list[Any]:
    if obj is None:
        return []
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


class RecModel(L.LightningModule):
    """Base class of every reclight model.

    Args:
        num_users: number of users in the training data (filled in by the CLI).
        num_items: number of items in the training data (filled in by the CLI).
        global_mean: mean training rating (filled in by the CLI).
        rating_range: (lowest, highest) valid rating; predictions are clipped to it.
    """

    input_kind: ClassVar[str] = "pairs"
    trainer_defaults: ClassVar[dict[str, Any]] = {}
    data_defaults: ClassVar[dict[str, Any]] = {}
    # Intra-op threads this model trains fastest with on a CPU (None: torch's setting). Models
    # whose steps are a few sub-millisecond ops lose more to thread wake-ups than they gain.
    cpu_threads: ClassVar[int | None] = None

    def __init__(self, num_users: int, num_items: int, global_mean: float = 0.0,
                 rating_range: tuple[float, float] = (1.0, 5.0)) -> None:
        super().__init__()
        if num_users < 1 or num_items < 1:
            raise ConfigError(f"num_users={num_users} and num_items={num_items} must be >= 1; "
                              "the training data has no ratings")
        self.automatic_optimization = False
        self.num_users = int(num_users)
        self.num_items = int(num_items)
        self.global_mean = float(global_mean)
        self.rating_range = (float(rating_range[0]), float(rating_range[1]))
        self.register_buffer("fallback_user_bias", torch.zeros(self.num_users))
        self.register_buffer("fallback_item_bias", torch.zeros(self.num_items))
        self.train_rows: SparseRows | None = None
        self.user_map: IdMap | None = None
        self.item_map: IdMap | None = None
        self.reclight_meta: dict[str, Any] = {}
        self.step_hooks: list[StepHook] = []
        self._saved_threads: int | None = None
        self.val_errors = RatingErrors()
        self.test_errors = RatingErrors()
        self.test_topn = TopNMetrics(10)

    # ---- what a plugin implements -------------------------------------------------------
    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The loss of one training batch of this model's ``input_kind``."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_loss")

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        """Predicted ratings for (user, item) index pairs that were all seen in training."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict_ratings")

    def score_items(self, users: Tensor) -> Tensor:
        """Scores [len(users), num_items] for ranking; defaults to every pair's predicted rating."""
        n = self.num_items
        items = torch.arange(n, device=users.device).repeat(len(users))
        return self.predict_ratings(users.repeat_interleave(n), items).view(len(users), n)

    # ---- data attachment, checkpoints -----------------------------------------------------
    def attach_data(self, datamodule: Any) -> None:
        """Take the id maps, the training matrix and fallback biases from a RatingDataModule."""
        if datamodule.num_users != self.num_users or datamodule.num_items != self.num_items:
            raise ConfigError(
                f"model was built for {self.num_users} users x {self.num_items} items but the data "
                f"has {datamodule.num_users} x {datamodule.num_items}; build the model from this data")
        train = datamodule.train
        b_u, b_i = baseline_biases(train.users, train.items, train.ratings, self.num_users,
                                   self.num_items, self.global_mean)
        self.fallback_user_bias.copy_(b_u)
        self.fallback_item_bias.copy_(b_i)
        self.train_rows = datamodule.train_rows
        self.user_map = datamodule.user_map
        self.item_map = datamodule.item_map

    def setup(self, stage: str) -> None:
        # L2-regularised weights drift into subnormal floats, which CPUs process 20-50x more
        # slowly (measured: an MF fit on MovieLens 100K went from 2 s to 47 s). Flushing them to
        # zero changes no result that matters and keeps epochs at a steady cost.
        torch.set_flush_denormal(True)
        on_cpu = self._trainer is not None and self.trainer.strategy.root_device.type == "cpu"
        if stage == "fit" and self.cpu_threads and on_cpu and self._saved_threads is None:
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.cpu_threads)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if self.train_rows is None and datamodule is not None and hasattr(datamodule, "train_rows"):
            self.attach_data(datamodule)

    def teardown(self, stage: str) -> None:
        if stage == "fit" and self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "format": CHECKPOINT_FORMAT,
            "meta": dict(self.reclight_meta),
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "user_map": self.user_map.state_dict() if self.user_map is not None else None,
            "item_map": self.item_map.state_dict() if self.item_map is not None else None,
            "train_rows": self.train_rows.state_dict() if self.train_rows is not None else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get(CHECKPOINT_KEY)
        if not info:
            return
        self.reclight_meta = dict(info.get("meta") or {})
        if info.get("user_map") is not None:
            self.user_map = IdMap.from_state(info["user_map"])
        if info.get("item_map") is not None:
            self.item_map = IdMap.from_state(info["item_map"])
        if info.get("train_rows") is not None:
            self.train_rows = SparseRows.from_state(info["train_rows"])

    # ---- prediction with the documented fallback -----------------------------------------
    def predict_with_fallback(self, users: Tensor, items: Tensor) -> tuple[Tensor, int]:
        """Clipped predictions for any pairs; index -1 marks an id unseen in training.

        Pairs with an unseen user or item get the baseline of :mod:`reclight.fallback`
        (global mean plus the known side's bias). Returns the predictions and how many fell back.
        """
        known_u, known_i = users >= 0, items >= 0
        known = known_u & known_i
        out = torch.full(users.shape, self.global_mean, dtype=torch.float32, device=users.device)
        out = out + torch.where(known_u, self.fallback_user_bias[users.clamp_min(0)], 0.0)
        out = out + torch.where(known_i, self.fallback_item_bias[items.clamp_min(0)], 0.0)
        if bool(known.all()):
            out = self.predict_ratings(users, items).float()
        elif bool(known.any()):
            out[known] = self.predict_ratings(users[known], items[known]).float()
        lo, hi = self.rating_range
        return out.clamp(lo, hi), int((~known).sum())

    def seen_mask(self, users: Tensor) -> Tensor:
        """Boolean [len(users), num_items]: the items each (known) user rated in training."""
        if self.train_rows is None:
            return torch.zeros(len(users), self.num_items, dtype=torch.bool, device=users.device)
        _, mask = self.train_rows.dense(users.clamp_min(0).cpu())
        mask = mask.to(users.device)
        mask[users < 0] = False
        return mask

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, exclude_seen: bool = True) -> tuple[Tensor, Tensor]:
        """Top-k item indices and scores per user; unseen users (index -1) are ranked by the
        fallback item baseline (global mean + item bias), i.e. a damped popularity-by-rating."""
        scores = (self.global_mean + self.fallback_item_bias).expand(len(users), -1).clone()
        known = users >= 0
        if bool(known.any()):
            scores[known] = self.score_items(users[known]).float()
        if exclude_seen:
            scores = scores.masked_fill(self.seen_mask(users), float("-inf"))
        top = torch.topk(scores, min(k, self.num_items), dim=1)
        return top.indices, top.values

    # ---- training -----------------------------------------------------------------------
    def optimization_step(self, loss_fn: Callable[[], Tensor]) -> Tensor:
        """One optimiser step on ``loss_fn()`` for every optimiser; returns the detached loss.

        The normal training step uses it, and so can step hooks that add further steps. Every
        step goes through ``manual_backward``, for which Lightning prepares DDP's gradient
        averaging, so further steps stay synchronised across ranks (tested with two processes).
        A single optimiser is stepped with a closure, which L-BFGS needs.
        """
        optimizers = _as_list(self.optimizers())
        if len(optimizers) == 1:
            opt = optimizers[0]
            holder: list[Tensor] = []

            def closure() -> Tensor:
                opt.zero_grad()
                loss = loss_fn()
                self.manual_backward(loss)
                holder.append(loss.detach())
                return loss

            opt.step(closure=closure)
            return holder[0]
        for opt in optimizers:
            opt.zero_grad()
        loss = loss_fn()
        self.manual_backward(loss)
        for opt in optimizers:
            opt.step()
        return loss.detach()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.optimization_step(lambda: self.training_loss(batch))
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=_batch_size(batch), sync_dist=True)
        for hook in self.step_hooks:
            hook.after_step(self, batch, loss)
        return loss

    def on_train_epoch_end(self) -> None:
        for sched in _as_list(self.lr_schedulers()):
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                metric = self.trainer.callback_metrics.get("val_rmse")
                if metric is not None:
                    sched.step(metric)
            else:
                sched.step()

    # ---- evaluation (identical for every model) -----------------------------------------
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        pred, _ = self.predict_with_fallback(batch["users"], batch["items"])
        self.val_errors.update(pred, batch["ratings"])

    def on_validation_epoch_end(self) -> None:
        if int(self.val_errors.count) == 0 and not self.trainer.world_size > 1:
            return
        result = self.val_errors.compute()
        self.log("val_rmse", result["rmse"].float(), prog_bar=True, sync_dist=True)
        self.log("val_mae", result["mae"].float(), sync_dist=True)
        self.val_errors.reset()

    def set_eval_k(self, k: int) -> None:
        """Cut-off of the top-N metrics computed by ``test``."""
        if k < 1:
            raise ConfigError(f"top-N cut-off k={k} must be >= 1")
        self.test_topn = TopNMetrics(k).to(self.device)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        if "ratings" in batch:
            pred, unseen = self.predict_with_fallback(batch["users"], batch["items"])
            self.test_errors.update(pred, batch["ratings"], unseen)
        else:
            users = batch["users"]
            scores = self.score_items(users).float()
            scores = scores.masked_fill(self.seen_mask(users), float("-inf"))
            self.test_topn.update(scores, batch["targets"])

    def on_test_epoch_end(self) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
            errors = self.test_errors.compute()
            unseen = errors["unseen"]
            topn = dict(self.test_topn.compute())
            users = topn.pop("users")
        if int(errors["count"]) > 0:
            self.log("test_rmse", errors["rmse"].float(), sync_dist=True)
            self.log("test_mae", errors["mae"].float(), sync_dist=True)
            self.log("test_unseen", unseen.float(), sync_dist=True)
            if int(unseen) > 0 and self.trainer.is_global_zero:
                warnings.warn(f"{int(unseen)} of {int(errors['count'])} test ratings involve users or "
                              "items unseen in training; they were predicted by the baseline fallback "
                              "(global mean + known biases)", stacklevel=1)
        if int(users) > 0:
            for name, value in topn.items():
                self.log(f"test_{name}", value.float(), sync_dist=True)
        for metric in (self.test_errors, self.test_topn):
            metric.reset()

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        pred, _ = self.predict_with_fallback(batch["users"], batch["items"])
        return pred


def _batch_size(batch: dict[str, Tensor]) -> int:
    first = batch.get("users", batch.get("rows"))
    return int(first.shape[0]) if first is not None else 1
