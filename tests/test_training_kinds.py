"""The three training kinds on Lightning's machinery: gradient (automatic optimisation), manual
(the step hook point) and solver (no optimiser), with toy models of the tests' own plugin."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from reclight.data import RatingDataModule
from reclight.errors import ConfigError
from reclight.testing import heldout_rmse, low_rank_ratings, quiet_trainer

from .toy_plugin import ToyBiases, ToyBiasSolver

BATCH = 64


def data(**kwargs: Any) -> RatingDataModule:
    settings: dict[str, Any] = {"source": low_rank_ratings(), "test_size": 0.2, "batch_size": BATCH}
    settings.update(kwargs)
    return RatingDataModule(**settings)


def batches_per_epoch(dm: RatingDataModule) -> int:
    return -(-len(dm.train) // BATCH)


class SGDBiases(ToyBiases):
    """ToyBiases with plain SGD and an optional scheduler, to probe Lightning's stepping."""

    def __init__(self, data: Any, lr: float = 0.1, schedule: str = "none") -> None:
        super().__init__(data, lr)
        self.schedule = schedule

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        if self.schedule == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if self.schedule == "step_every_2":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step",
                                                       "frequency": 2}}
        if self.schedule == "plateau":
            # An "improvement" must beat the best loss by 10: never, so every epoch after the
            # first halves the rate.
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0,
                                                               threshold=10, threshold_mode="abs")
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "train_loss"}}
        return opt


class ExtraStep:
    """A step hook that takes one more optimiser step on the same batch, as re-feeding does."""

    def __init__(self) -> None:
        self.calls = 0

    def after_step(self, model: Any, batch: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        self.calls += 1
        assert loss.requires_grad is False
        model.optimization_step(lambda: model.training_loss(batch))


def manual(model: Any) -> ExtraStep:
    hook = ExtraStep()
    model.training_kind = "manual"
    model.step_hooks.append(hook)
    return hook


def lr_of(model: L.LightningModule) -> float:
    return model.optimizers().param_groups[0]["lr"]


# ---- gradient: Lightning's automatic optimisation --------------------------------------------
def test_gradient_models_use_automatic_optimisation() -> None:
    dm = data()
    model = ToyBiases(dm.training_data)
    assert model.automatic_optimization and model.training_kind == "gradient"
    trainer = quiet_trainer(max_epochs=2)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 2 * batches_per_epoch(dm)
    assert "train_loss" in trainer.callback_metrics


def test_gradient_clipping_is_lightnings() -> None:
    dm = data(batch_size=10_000)  # one batch: one step
    torch.manual_seed(0)
    clipped = SGDBiases(dm.training_data, lr=1.0)
    quiet_trainer(max_epochs=1, gradient_clip_val=0.01).fit(clipped, datamodule=dm)
    free = SGDBiases(dm.training_data, lr=1.0)
    quiet_trainer(max_epochs=1).fit(free, datamodule=dm)
    step = torch.cat([clipped.user_bias, clipped.item_bias]).norm()
    assert step <= 0.01 + 1e-6 < torch.cat([free.user_bias, free.item_bias]).norm()


def test_gradient_accumulation_is_lightnings() -> None:
    dm = data()
    trainer = quiet_trainer(max_epochs=2, accumulate_grad_batches=2)
    trainer.fit(SGDBiases(dm.training_data), datamodule=dm)
    assert trainer.global_step == 2 * -(-batches_per_epoch(dm) // 2)


@pytest.mark.parametrize("schedule, factor", [("step", lambda steps: 0.5 ** steps),
                                              ("step_every_2", lambda steps: 0.5 ** (steps // 2))])
def test_step_interval_schedulers_step_every_batch(schedule: str, factor: Any) -> None:
    dm = data()
    model = SGDBiases(dm.training_data, lr=1.0, schedule=schedule)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == batches_per_epoch(dm) > 2
    assert lr_of(model) == pytest.approx(factor(batches_per_epoch(dm)))


def test_plateau_schedulers_step_on_their_monitor_without_validation() -> None:
    dm = data()
    model = SGDBiases(dm.training_data, lr=1.0, schedule="plateau")
    quiet_trainer(max_epochs=4).fit(model, datamodule=dm)
    assert lr_of(model) == pytest.approx(0.5 ** 3)


# ---- manual: the step hook point ---------------------------------------------------------------
def test_step_hooks_run_after_every_batch_and_take_real_extra_steps() -> None:
    dm = data()
    torch.manual_seed(0)
    plain = ToyBiases(dm.training_data)
    torch.manual_seed(0)
    hooked = ToyBiases(dm.training_data)
    hook = manual(hooked)
    trainer_plain, trainer_hooked = quiet_trainer(max_epochs=2), quiet_trainer(max_epochs=2)
    trainer_plain.fit(plain, datamodule=dm)
    trainer_hooked.fit(hooked, datamodule=dm)
    assert not hooked.automatic_optimization
    assert hook.calls == trainer_plain.global_step
    assert trainer_hooked.global_step == 2 * trainer_plain.global_step
    assert not torch.allclose(plain.user_bias, hooked.user_bias)


def test_manual_models_step_schedulers_by_their_interval() -> None:
    dm = data()
    model = SGDBiases(dm.training_data, lr=1.0, schedule="step")
    manual(model)
    quiet_trainer(max_epochs=1).fit(model, datamodule=dm)
    assert lr_of(model) == pytest.approx(0.5 ** batches_per_epoch(dm))  # per batch, not per step


def test_lightnings_own_manual_opt_in_selects_the_manual_kind() -> None:
    model = ToyBiases(data().training_data)
    model.automatic_optimization = False
    assert model.training_kind == "manual"


def test_step_hooks_need_the_manual_kind() -> None:
    dm = data()
    model = ToyBiases(dm.training_data)
    model.step_hooks.append(ExtraStep())
    with pytest.raises(ConfigError, match="need training_kind = 'manual'"):
        quiet_trainer(max_epochs=1).fit(model, datamodule=dm)


# ---- solver: no optimiser, no loss -------------------------------------------------------------
def test_a_solver_trains_without_optimiser_and_counts_its_steps(tmp_path: Any) -> None:
    dm = data(val_size=0.1)
    model = ToyBiasSolver(dm.training_data)
    assert not list(model.parameters())  # nothing for an optimiser to hold
    checkpoints = ModelCheckpoint(dirpath=tmp_path, monitor=model.monitor, save_last=True,
                                  save_top_k=-1)
    trainer = quiet_trainer(max_epochs=3, enable_checkpointing=True, callbacks=[checkpoints])
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3  # the matrix view: one solve per epoch
    assert {"train_rmse", "val_rmse"} <= set(trainer.callback_metrics)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch=0-step=1.ckpt", "epoch=1-step=2.ckpt", "epoch=2-step=3.ckpt", "last.ckpt"]
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert result["test_rmse"] == pytest.approx(heldout_rmse(model, dm.test), abs=1e-5)


def test_early_stopping_stops_a_solver() -> None:
    dm = data(val_size=0.1)
    model = ToyBiasSolver(dm.training_data)
    # The alternating solves converge within a few sweeps: validation stops improving.
    stop = EarlyStopping(monitor=model.monitor, mode=model.monitor_mode, patience=1,
                         min_delta=1e-3)
    trainer = quiet_trainer(max_epochs=50, callbacks=[stop])
    trainer.fit(model, datamodule=dm)
    assert trainer.current_epoch < 10 and stop.stopped_epoch > 0


def test_solver_results_equal_the_closed_form() -> None:
    dm = data()
    model = ToyBiasSolver(dm.training_data, reg=5.0)
    quiet_trainer(max_epochs=1).fit(model, datamodule=dm)
    train = dm.train
    resid = train.ratings - dm.global_mean
    counts = torch.bincount(train.items, minlength=dm.num_items)
    item_bias = torch.zeros(dm.num_items).index_add_(0, train.items, resid) / (5.0 + counts)
    torch.testing.assert_close(model.item_bias, item_bias)


# ---- declarations the core refuses -------------------------------------------------------------
def test_an_explicit_model_refuses_interaction_data() -> None:
    dm = data(source=low_rank_ratings(implicit=True))
    with pytest.raises(ConfigError, match="predicts ratings but the data has none"):
        quiet_trainer(max_epochs=1).fit(ToyBiases(dm.training_data), datamodule=dm)


@pytest.mark.parametrize("attribute, value, fragment", [
    ("feedback", "ratings", "feedback='ratings'; choose one of explicit, implicit"),
    ("training_kind", "closed_form", "training_kind='closed_form'; choose one of gradient, manual, solver"),
])
def test_unknown_declarations_are_one_line_errors(attribute: str, value: str, fragment: str) -> None:
    dm = data()
    model = ToyBiases(dm.training_data)
    setattr(model, attribute, value)
    with pytest.raises(ConfigError, match=fragment):
        quiet_trainer(max_epochs=1).fit(model, datamodule=dm)
