"""ALS on two CPU processes (gloo, forked) under the model-sync strategy: each rank solves its
shard of users, then of items, and the ranks all-gather factors; the result is the
single-process one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from reclight.data import RatingDataModule
from reclight.data.views import shard_range
from reclight.strategies import resolve_strategy
from reclight.testing import heldout_rmse, low_rank_ratings, quiet_trainer
from reclight_als.model import AlternatingLeastSquares


class OnTrainEnd(L.Callback):
    """Runs ``check(trainer, module)`` on every rank after training; a failure fails the fit."""

    def __init__(self, check: Any) -> None:
        self.check = check

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer, pl_module)


def fit_both(dm: RatingDataModule, epochs: int, check: Any = None,
             **kwargs: Any) -> tuple[AlternatingLeastSquares, AlternatingLeastSquares]:
    single = AlternatingLeastSquares(dm.training_data, **kwargs)
    quiet_trainer(max_epochs=epochs).fit(single, datamodule=dm)
    double = AlternatingLeastSquares(dm.training_data, **kwargs)
    strategy = resolve_strategy(double, "ddp_fork", devices=2)
    callbacks = [OnTrainEnd(check)] if check else []
    quiet_trainer(max_epochs=epochs, devices=2, strategy=strategy,
                  callbacks=callbacks).fit(double, datamodule=dm)
    return single, double  # double holds rank 0's state, brought back by Lightning


@pytest.mark.parametrize("kwargs", [{"rank": 3}, {"rank": 3, "cg_steps": 2, "reg_smoothing": 0.3},
                                    {"rank": 3, "implicit": True, "cg_steps": 2}])
def test_two_processes_solve_what_one_does_and_count_the_factor_bytes(kwargs: dict) -> None:
    dm = RatingDataModule(low_rank_ratings(61, 37, density=0.5), split="random", test_size=0.2)
    width = kwargs["rank"] + (0 if kwargs.get("implicit") else 1)  # factors (+ bias)

    def check(trainer: L.Trainer, module: AlternatingLeastSquares) -> None:
        users = shard_range(module.num_users, trainer.global_rank, 2)
        items = shard_range(module.num_items, trainer.global_rank, 2)
        expected = (users[1] - users[0] + items[1] - items[0]) * width * 4
        if module.sweep_bytes != [expected] * 3:
            raise AssertionError(f"rank {trainer.global_rank} sent {module.sweep_bytes} bytes "
                                 f"per sweep, expected {expected}: its shard's factors")

    single, double = fit_both(dm, 3, check, **kwargs)
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        torch.testing.assert_close(getattr(double, name), getattr(single, name),
                                   rtol=1e-4, atol=1e-5)


def test_movielens_u1_test_rmse_on_two_processes_matches_one(ml100k_dir: Path) -> None:
    """The issue's check: MovieLens 100K u1 with the defaults, 2 gloo processes vs 1, test
    RMSE within 0.002."""
    dm = RatingDataModule(str(ml100k_dir), split="u1")
    single, double = fit_both(dm, AlternatingLeastSquares.trainer_defaults["max_epochs"])
    one, two = heldout_rmse(single, dm.test), heldout_rmse(double, dm.test)
    assert one < 0.95
    assert two == pytest.approx(one, abs=0.002)
