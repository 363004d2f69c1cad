"""RecModel: the LightningModule contract every model plugin implements.

A model declares what it needs and implements its own mathematics; everything else is the
core's, identical for every model:

- ``feedback``: "explicit" (ratings: RMSE/MAE and top-N, predictions clipped to the rating
  range, validation monitors ``val_rmse``) or "implicit" (scores: top-N only, no clipping,
  ``val_ndcg@k``); see :mod:`reclight.evaluation`.
- ``input_kind``: the data view it trains on (:mod:`reclight.data.views`), with optional
  ``view_options`` for the view; ``trainer_defaults``/``data_defaults``; ``cpu_threads``.
- ``training_kind``, one of three:

  * "gradient" (the default): Lightning's automatic optimisation. ``training_loss(batch)``
    gives the loss, the core's ``training_step`` logs and returns it; gradient clipping,
    accumulation and scheduler ``interval``/``frequency``/``monitor`` work as Lightning
    documents them.
  * "manual" (opt-in, also chosen by Lightning's ``self.automatic_optimization = False``): the
    core takes the normal step with :meth:`optimization_step`, then runs ``step_hooks`` (objects
    with ``after_step(model, batch, loss)``) that may take further synchronised steps (dense
    re-feeding, :mod:`reclight.refeed`); schedulers are stepped by their interval and frequency.
  * "solver": ``configure_optimizers`` returns None and ``solve_step(batch, batch_idx)`` solves
    in closed form (ALS, EASE, kNN): no loss, no gradient, no optimiser.

- ``required_strategy`` and ``rank_local_parameters()`` for models that own their
  communication (:mod:`reclight.strategies`, :mod:`reclight.distributed`), with
  ``consensus_step()`` called on every rank after the last batch of each training epoch.

The model receives the training data once, as its first constructor argument ``data`` (a
:class:`~reclight.data.TrainingData`), and saves it inside its checkpoints.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import lightning as L
import torch
from torch import Tensor

from reclight import optimization, ranking
from reclight.data.idmap import IdMap
from reclight.data.sparse import SparseRows
from reclight.data.training import TrainingData
from reclight.errors import ConfigError
from reclight.evaluation import FEEDBACK, Evaluation, monitor_of
from reclight.fallback import predict_with_fallback
from reclight.settings import FitSettings
from reclight.strategies import MODEL_SYNC, check_strategy

TRAINING_KINDS = ("gradient", "manual", "solver")
CHECKPOINT_KEY = "reclight"
CHECKPOINT_FORMAT = 2
# Keys Lightning's CLI records so that it could re-instantiate a class from a path stored in the
# file; reclight rebuilds models from its registry only, so they are never written.
_INSTANTIATOR_KEYS = ("_instantiator", "_class_path")


class StepHook(Protocol):
    """Work added after the normal optimisation step of every training batch (manual kind)."""

    def after_step(self, model: RecModel, batch: dict[str, Tensor], loss: Tensor) -> None:
        """Called with the batch and its (detached) loss once the optimiser has stepped."""


class RecModel(L.LightningModule):
    """Base class of every reclight model.

    Args:
        data: the training data (``RatingDataModule.training_data``; filled in by the CLI, and
            from the checkpoint when a model is loaded).
    """

    feedback: ClassVar[str] = "explicit"
    input_kind: ClassVar[str] = "pairs"
    training_kind: ClassVar[str] = "gradient"
    trainer_defaults: ClassVar[dict[str, Any]] = {}
    data_defaults: ClassVar[dict[str, Any]] = {}
    # Intra-op threads this model trains fastest with on a CPU (None: torch's setting).
    cpu_threads: ClassVar[int | None] = None
    # A Lightning strategy (registered name or class) the model needs to run on many processes.
    required_strategy: ClassVar[str | type | None] = None
    # The Trainer precisions the model's operations support. Mixed precision autocasts only
    # the operations that have a low-precision kernel and keeps float32 weights, so every model
    # runs under it; "-true" precisions cast the weights themselves, which sparse and some
    # dense kernels refuse (bf16-true fails in sparse_sampled_addmm, for one): a model whose
    # operations all support them adds them here, and the rest are refused in one line.
    precisions: ClassVar[tuple[str, ...]] = ("32-true", "16-mixed", "bf16-mixed")

    def __init__(self, data: TrainingData | Mapping[str, Any]) -> None:
        super().__init__()
        self.data = TrainingData.coerce(data)
        if self.data.num_users < 1 or self.data.num_items < 1:
            raise ConfigError(f"the training data has {self.data.num_users} users and "
                              f"{self.data.num_items} items; a model needs at least one of each")
        self.view_options: dict[str, Any] = {}
        self.step_hooks: list[StepHook] = []
        self.evaluation = Evaluation()
        # Derived from the data (which the checkpoint stores), so not saved twice.
        self.register_buffer("fallback_user_bias", self.data.user_bias.clone(), persistent=False)
        self.register_buffer("fallback_item_bias", self.data.item_bias.clone(), persistent=False)
        self.register_buffer("fallback_item_popularity", self.data.item_counts.float(),
                             persistent=False)

    # ---- what the model knows about its data ---------------------------------------------------
    @property
    def num_users(self) -> int:
        return self.data.num_users

    @property
    def num_items(self) -> int:
        return self.data.num_items

    @property
    def global_mean(self) -> float:
        return self.data.global_mean

    @property
    def rating_range(self) -> tuple[float, float]:
        return self.data.rating_range

    @property
    def train_rows(self) -> SparseRows:
        """The users x items training matrix (``self.data.item_major`` is its transpose)."""
        return self.data.matrix

    @property
    def user_map(self) -> IdMap:
        return self.data.user_map

    @property
    def item_map(self) -> IdMap:
        return self.data.item_map

    def save_hyperparameters(self, *args: Any, ignore: Sequence[str] | str | None = None,
                             frame: Any = None, logger: bool = True) -> None:
        """Lightning's ``save_hyperparameters``, never saving ``data`` as a hyper-parameter (the
        checkpoint stores it once, see ``on_save_checkpoint``)."""
        ignored = [ignore] if isinstance(ignore, str) else list(ignore or [])
        frame = frame if frame is not None else inspect.currentframe().f_back  # type: ignore[union-attr]
        super().save_hyperparameters(*args, ignore=["data", *ignored], frame=frame, logger=logger)

    # ---- what a plugin implements ------------------------------------------------------------
    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The loss of one training batch of this model's view (gradient and manual kinds)."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_loss")

    def solve_step(self, batch: dict[str, Any], batch_idx: int) -> Mapping[str, Any] | Tensor | None:
        """One closed-form solve on a batch (solver kind); return metrics to log, if any (a
        tensor is logged as ``train_loss``)."""
        raise NotImplementedError(f"{type(self).__name__} is a solver and must implement solve_step")

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        """Predicted ratings for (user, item) index pairs that were all seen in training
        (explicit models)."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict_ratings")

    def score_items(self, users: Tensor) -> Tensor:
        """Scores [len(users), num_items] for ranking; explicit models default to every pair's
        predicted rating, implicit models must implement it."""
        if self.feedback == "implicit":
            raise NotImplementedError(f"{type(self).__name__} must implement score_items")
        n = self.num_items
        items = torch.arange(n, device=users.device).repeat(len(users))
        return self.predict_ratings(users.repeat_interleave(n), items).view(len(users), n)

    def score_pairs(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores of (user, item) pairs; by default read from ``score_items`` in chunks."""
        if self.feedback == "explicit":
            return self.predict_ratings(users, items)
        return ranking.pairs_from_rows(users, items, self.score_items, self.num_items)

    def rank_local_parameters(self) -> Iterable[str]:
        """Names (as in ``named_parameters``) that plain DDP must neither average nor broadcast."""
        return ()

    def consensus_step(self) -> None:
        """Called on every rank after the last training batch of each epoch (and at the end of
        a fit stopped mid-epoch): exchange or average rank-local state here."""

    # ---- declarations, checked ---------------------------------------------------------------
    @property
    def automatic_optimization(self) -> bool:  # type: ignore[override]
        return self.training_kind == "gradient"

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        # Lightning's own opt-in for manual optimisation keeps working.
        if self.training_kind != "solver":
            self.training_kind = "gradient" if value else "manual"  # type: ignore[misc]

    def check_precision(self, precision: str) -> None:
        """ConfigError naming the supported precisions when the Trainer's is not one of them."""
        if str(precision) not in self.precisions:
            raise ConfigError(f"--trainer.precision {precision}: {type(self).__name__} supports "
                              f"{', '.join(self.precisions)} (its declared precisions); pass one "
                              "of them")

    def validate_declarations(self) -> None:
        """ConfigError for a declaration the core cannot serve."""
        if self.feedback not in FEEDBACK:
            raise ConfigError(f"{type(self).__name__}.feedback={self.feedback!r}; choose one of "
                              f"{', '.join(FEEDBACK)}")
        if self.training_kind not in TRAINING_KINDS:
            raise ConfigError(f"{type(self).__name__}.training_kind={self.training_kind!r}; "
                              f"choose one of {', '.join(TRAINING_KINDS)}")
        if self.step_hooks and self.training_kind != "manual":
            raise ConfigError(f"{type(self).__name__} has step hooks, which take optimiser steps "
                              "of their own; they need training_kind = 'manual'")
        if self.feedback == "explicit" and self.data.implicit:
            raise ConfigError(f"{type(self).__name__} predicts ratings but the data has none (an "
                              "interaction log); map the rating column with --data.columns "
                              "user=...,item=...,rating=NAME or choose an implicit-feedback model")

    @property
    def monitor(self) -> str:
        """The validation metric this model is judged by (``val_rmse`` or ``val_ndcg@k``)."""
        return monitor_of(self.feedback, self.evaluation.ks)[0]

    @property
    def monitor_mode(self) -> str:
        """"min" or "max": which way the monitor improves."""
        return monitor_of(self.feedback, self.evaluation.ks)[1]

    def set_eval_k(self, ks: int | Iterable[int] | str) -> None:
        """Cut-offs of the top-N metrics (``10``, ``[5, 10, 20]`` or ``"5,10,20"``)."""
        self.evaluation.set_ks(ks)

    # ---- Lightning hooks ------------------------------------------------------------------------
    def configure_callbacks(self) -> list[L.Callback]:
        if self._trainer is not None and any(isinstance(c, FitSettings)
                                             for c in self.trainer.callbacks):
            return []  # already attached by an earlier fit or test of this trainer
        return [FitSettings(self.cpu_threads)]

    def configure_optimizers(self) -> Any:
        if self.training_kind == "solver":
            return None
        raise NotImplementedError(f"{type(self).__name__} must implement configure_optimizers")

    def setup(self, stage: str) -> None:
        self.validate_declarations()
        if self._trainer is not None:
            check_strategy(self, self.trainer.strategy)
            self.check_precision(self.trainer.precision)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if self.training_kind == "solver":
            result = optimization.solver_step(self, lambda: self.solve_step(batch, batch_idx))
            self._log_training(result, batch)
            return None
        if self.training_kind == "manual":
            loss = optimization.optimization_step(self, lambda: self.training_loss(batch))
            self._log_training(loss, batch)
            for hook in self.step_hooks:
                hook.after_step(self, batch, loss)
            return loss
        loss = self.training_loss(batch)
        self._log_training(loss.detach(), batch)
        return loss

    def _log_training(self, result: Mapping[str, Any] | Tensor | None, batch: dict[str, Any]) -> None:
        if result is None:
            return
        values = {"train_loss": result} if isinstance(result, Tensor) else dict(result)
        for name, value in values.items():
            self.log(name, value, on_step=False, on_epoch=True, prog_bar=name == "train_loss",
                     batch_size=_batch_size(batch), sync_dist=True)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.training_kind == "manual":
            optimization.step_schedulers(self, "step", batch_idx)
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.consensus_step()
            self._consensus_at = self.trainer.global_step

    def on_train_epoch_end(self) -> None:
        if self.training_kind == "manual":
            optimization.step_schedulers(self, "epoch")

    def on_train_end(self) -> None:
        if getattr(self, "_consensus_at", None) != self.trainer.global_step:
            self.consensus_step()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int,
                        dataloader_idx: int = 0) -> None:
        self.evaluation.update("val", self, batch)

    def on_validation_epoch_end(self) -> None:
        self.evaluation.log("val", self)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self.evaluation.update("test", self, batch)

    def on_test_epoch_end(self) -> None:
        self.evaluation.log("test", self)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int,
                     dataloader_idx: int = 0) -> Tensor:
        return predict_with_fallback(self, batch["users"], batch["items"])[0]

    # ---- prediction and ranking with raw indices ----------------------------------------------
    def predict_with_fallback(self, users: Tensor, items: Tensor) -> tuple[Tensor, int]:
        """Predictions (explicit: clipped ratings; implicit: scores) for any index pairs, -1
        marking unseen ids; see :mod:`reclight.fallback`. Also returns how many fell back."""
        return predict_with_fallback(self, users, items)

    def seen_mask(self, users: Tensor) -> Tensor:
        """Boolean [len(users), num_items]: the items each known user had in training."""
        return ranking.seen_mask(self, users)

    def recommend(self, users: Tensor, k: int, exclude_seen: bool = True) -> tuple[Tensor, Tensor]:
        """Top-k item indices and scores per user (see :func:`reclight.ranking.recommend`)."""
        return ranking.recommend(self, users, k, exclude_seen)

    def optimization_step(self, loss_fn: Any) -> Tensor:
        """One synchronised optimiser step on ``loss_fn()`` (manual kind, for step hooks)."""
        return optimization.optimization_step(self, loss_fn)

    # ---- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        for key in _INSTANTIATOR_KEYS:
            hparams.pop(key, None)
        hparams["data"] = self.data.state_dict()  # so that load_from_checkpoint rebuilds it
        checkpoint["hyper_parameters"] = hparams
        dm_hparams = checkpoint.get("datamodule_hyper_parameters")
        if dm_hparams:
            checkpoint["datamodule_hyper_parameters"] = {
                k: v for k, v in dict(dm_hparams).items() if k not in _INSTANTIATOR_KEYS}
        checkpoint[CHECKPOINT_KEY] = {"format": CHECKPOINT_FORMAT,
                                      "class": f"{type(self).__module__}:{type(self).__qualname__}"}


def _batch_size(batch: dict[str, Any]) -> int:
    first = batch.get("users", batch.get("rows"))
    return int(first.shape[0]) if isinstance(first, Tensor) else 1


__all__ = ["CHECKPOINT_KEY", "MODEL_SYNC", "RecModel", "StepHook", "TRAINING_KINDS"]
