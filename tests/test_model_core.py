"""The RecModel core: the training-step hook point, exact evaluation, top-N exclusion."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch

from reclight.metrics import topn_per_user
from reclight.testing import low_rank_ratings, quiet_trainer
from reclight.data import RatingDataModule

from .toy_plugin import ToyBiases


def toy(dm: RatingDataModule, lr: float = 0.1) -> ToyBiases:
    torch.manual_seed(0)
    model = ToyBiases(dm.num_users, dm.num_items, dm.global_mean, dm.rating_range, lr=lr)
    model.attach_data(dm)
    return model


def data(**kwargs: Any) -> RatingDataModule:
    settings: dict[str, Any] = {"source": low_rank_ratings(), "test_size": 0.2, "batch_size": 64}
    settings.update(kwargs)
    dm = RatingDataModule(**settings)
    dm.set_view("pairs")
    return dm


class ExtraStep:
    """A step hook that takes one more optimiser step on the same batch, as re-feeding does."""

    def __init__(self) -> None:
        self.calls = 0

    def after_step(self, model: Any, batch: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        self.calls += 1
        assert loss.requires_grad is False
        model.optimization_step(lambda: model.training_loss(batch))


def test_step_hook_runs_after_every_batch_and_takes_extra_optimiser_steps() -> None:
    dm = data()
    plain, hooked = toy(dm), toy(dm)
    hook = ExtraStep()
    hooked.step_hooks.append(hook)
    trainer_plain, trainer_hooked = quiet_trainer(max_epochs=2), quiet_trainer(max_epochs=2)
    trainer_plain.fit(plain, datamodule=dm)
    trainer_hooked.fit(hooked, datamodule=dm)
    batches = trainer_plain.global_step
    assert hook.calls == batches
    assert trainer_hooked.global_step == 2 * batches  # every extra step is a real optimiser step
    assert not torch.allclose(plain.user_bias, hooked.user_bias)


def test_test_metrics_equal_a_direct_computation() -> None:
    dm = data()
    model = toy(dm)
    trainer = quiet_trainer(max_epochs=3)
    trainer.fit(model, datamodule=dm)
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    model.eval()
    with torch.no_grad():
        pred, _ = model.predict_with_fallback(dm.test.users, dm.test.items)
        rmse = torch.sqrt(torch.mean((pred.double() - dm.test.ratings.double()) ** 2)).item()
        batch = next(iter(dm.test_dataloader()[1]))
        scores = model.score_items(batch["users"]).masked_fill(model.seen_mask(batch["users"]), float("-inf"))
        ndcg_first_batch = topn_per_user(scores, batch["targets"], 10)["ndcg"]
    assert result["test_rmse"] == pytest.approx(rmse, abs=1e-5)
    if len(dm.test_dataloader()[1]) == 1:
        assert result["test_ndcg@10"] == pytest.approx(ndcg_first_batch.mean().item(), abs=1e-5)


def test_recommend_excludes_training_items_and_falls_back_for_unknown_users() -> None:
    dm = data()
    model = toy(dm).eval()
    users = torch.tensor([0, -1])
    top, scores = model.recommend(users, k=5)
    seen = model.seen_mask(torch.tensor([0]))[0]
    assert not seen[top[0]].any()
    baseline = dm.global_mean + model.fallback_item_bias
    expected = torch.topk(baseline.masked_fill(torch.zeros_like(seen), float("-inf")), 5).indices
    assert torch.equal(top[1], expected)


def test_flush_denormal_is_on_during_training() -> None:
    dm = data()
    model = toy(dm)
    torch.set_flush_denormal(False)
    quiet_trainer(max_epochs=1).fit(model, datamodule=dm)
    assert (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() == 0.0  # subnormal result flushed


class ReplicasAgree(L.Callback):
    """Fails the run if the ranks' weights differ at the end of training."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        flat = torch.cat([p.detach().flatten() for p in pl_module.parameters()])
        gathered = trainer.strategy.all_gather(flat)
        if not torch.allclose(gathered[0], gathered[1], atol=1e-6):
            raise AssertionError("DDP replicas diverged: extra steps were not synchronised")


def test_extra_steps_are_synchronised_under_ddp() -> None:
    """A hook's further steps via optimization_step must keep the replicas equal (a hook that
    calls loss.backward() itself makes this check fail: the ranks see different batches)."""
    dm = data(batch_size=40)
    model = toy(dm)
    model.step_hooks.append(ExtraStep())
    # ddp_fork: each rank owns its weights (under ddp_spawn on CPU they share memory, and agree trivially)
    quiet_trainer(devices=2, strategy="ddp_fork", max_epochs=2, callbacks=[ReplicasAgree()]).fit(model, datamodule=dm)


def test_ddp_evaluation_is_exact(tmp_path: Any) -> None:
    """Two CPU processes must report the same RMSE as one: no padded duplicates, sums not means."""
    dm = data(source=low_rank_ratings(61, 37, density=0.5), batch_size=50, eval_batch_size=33)
    model = toy(dm)
    single = quiet_trainer(max_epochs=1)
    single.fit(model, datamodule=dm)
    expected = single.test(model, datamodule=dm, verbose=False)[0]
    ddp = quiet_trainer(devices=2, strategy="ddp_spawn", max_epochs=0)
    got = ddp.test(model, datamodule=dm, verbose=False)[0]
    assert got["test_rmse"] == pytest.approx(expected["test_rmse"], abs=1e-6)
    assert got["test_ndcg@10"] == pytest.approx(expected["test_ndcg@10"], abs=1e-6)


def test_declared_cpu_threads_apply_during_fit_and_are_restored() -> None:
    seen: list[int] = []

    class OneThread(ToyBiases):
        cpu_threads = 1

        def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return super().training_loss(batch)

    dm = data()
    model = OneThread(dm.num_users, dm.num_items, dm.global_mean, dm.rating_range)
    torch.set_num_threads(2)
    quiet_trainer(max_epochs=1).fit(model, datamodule=dm)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2
