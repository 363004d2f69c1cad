"""Two CPU processes (DDP over gloo, forked): synchronised extra steps, exact evaluation, solvers
and models that own their communication (model-sync strategy, rank-local parameters, fixed
shards, consensus steps)."""

from __future__ import annotations

from typing import Any, ClassVar

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from reclight.data import RatingDataModule
from reclight.distributed import Exchange
from reclight.errors import ConfigError
from reclight.strategies import ModelSyncDDPStrategy, check_strategy, resolve_strategy
from reclight.testing import low_rank_ratings, quiet_trainer

from .test_training_kinds import ExtraStep, manual
from .toy_plugin import ToyBiases, ToyBiasSolver, ToyLogisticMF

TWO = {"devices": 2, "strategy": "ddp_fork"}


def data(**kwargs: Any) -> RatingDataModule:
    settings: dict[str, Any] = {"source": low_rank_ratings(61, 37, density=0.5),
                                "test_size": 0.2, "batch_size": 50, "eval_batch_size": 33}
    settings.update(kwargs)
    return RatingDataModule(**settings)


def gathered(trainer: L.Trainer, tensor: torch.Tensor) -> torch.Tensor:
    return trainer.strategy.all_gather(tensor.detach().flatten())


class OnTrainEnd(L.Callback):
    """Runs ``check(trainer, module)`` on every rank after training; a failure fails the fit."""

    def __init__(self, check: Any) -> None:
        self.check = check

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer, pl_module)


def replicas_agree(trainer: L.Trainer, module: L.LightningModule) -> None:
    both = gathered(trainer, torch.cat([p.flatten() for p in module.parameters()]))
    if not torch.allclose(both[0], both[1], atol=1e-6):
        raise AssertionError("DDP replicas diverged: extra steps were not synchronised")


def test_extra_steps_are_synchronised_under_ddp() -> None:
    """A hook's further steps via optimization_step keep the replicas equal (a hook that calls
    loss.backward() itself fails this: the ranks see different batches)."""
    dm = data(batch_size=40)
    model = ToyBiases(dm.training_data)
    manual(model)
    quiet_trainer(max_epochs=2, callbacks=[OnTrainEnd(replicas_agree)], **TWO).fit(model, datamodule=dm)


@pytest.mark.parametrize("model_cls, source, metrics", [
    (ToyBiases, None, ("test_rmse", "test_mae", "test_ndcg@10", "test_users")),
    (ToyLogisticMF, low_rank_ratings(61, 37, density=0.5, implicit=True), ("test_ndcg@10", "test_users")),
])
def test_ddp_evaluation_is_exact(model_cls: type, source: Any, metrics: tuple[str, ...]) -> None:
    """Two processes report what one does: shards without padded duplicates, sums not means."""
    dm = data(**({"source": source} if source is not None else {}))
    model = model_cls(dm.training_data)
    single = quiet_trainer(max_epochs=1)
    single.fit(model, datamodule=dm)
    expected = single.test(model, datamodule=dm, verbose=False)[0]
    got = quiet_trainer(max_epochs=0, **TWO).test(model, datamodule=dm, verbose=False)[0]
    for name in metrics:
        assert got[name] == pytest.approx(expected[name], abs=1e-6), name


def test_evaluation_at_three_processes_with_uneven_shards_matches_one_process() -> None:
    """3 ranks, test ratings and users that do not divide by 3: every metric equals the single
    process figure to float64 precision (float64 sums reduced once, the final value logged
    once), not a float32 rounding step away as a mean of the ranks' logged values was."""
    dm = data(source=low_rank_ratings(65, 37, density=0.5, seed=5), test_size=0.23)
    assert len(dm.test) % 3 != 0
    model = ToyBiases(dm.training_data)
    single = quiet_trainer(max_epochs=1)
    single.fit(model, datamodule=dm)
    expected = single.test(model, datamodule=dm, verbose=False)[0]
    got = quiet_trainer(max_epochs=0, devices=3, strategy="ddp_fork").test(
        model, datamodule=dm, verbose=False)[0]
    assert int(got["test_users"]) % 3 != 0
    assert {"test_rmse", "test_mae", "test_hit@10", "test_precision@10"} <= set(expected)
    assert set(got) == set(expected)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-15), name


def test_a_solver_runs_on_two_processes_under_the_model_sync_strategy() -> None:
    dm = data()
    strategy = resolve_strategy(ToyBiasSolver(dm.training_data), "ddp_fork", devices=2)
    assert strategy == "ddp_model_sync_fork"
    single = ToyBiasSolver(dm.training_data)
    quiet_trainer(max_epochs=2).fit(single, datamodule=dm)
    model = ToyBiasSolver(dm.training_data)
    trainer = quiet_trainer(max_epochs=2, devices=2, strategy=strategy)
    trainer.fit(model, datamodule=dm)
    assert isinstance(trainer.strategy, ModelSyncDDPStrategy)
    torch.testing.assert_close(model.item_bias, single.item_bias)  # rank 0's, brought back


class ShardedConsensus(ToyBiases):
    """Biases trained on a fixed shard per rank, averaged across ranks after every epoch:
    consensus averaging as in parameter-mixing / ADMM-style distributed training (Mann et al.,
    "Efficient Large-Scale Distributed Training of Conditional Maximum Entropy Models", 2009)."""

    required_strategy: ClassVar[str] = "ddp_model_sync"

    def __init__(self, data: Any, lr: float = 0.1) -> None:
        super().__init__(data, lr)
        self.view_options = {"fixed_shards": True}
        self.exchange = Exchange()
        self.seen_users: set[int] = set()
        self.averaged_bytes: list[int] = []

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.seen_users.update(batch["users"].tolist())
        return super().training_loss(batch)

    def consensus_step(self) -> None:
        with torch.no_grad():
            for param in (self.user_bias, self.item_bias):
                self.exchange.all_reduce(param.data, op="mean")
        self.averaged_bytes.append(self.exchange.take_bytes())


def test_a_model_owning_its_communication_keeps_shards_and_reaches_consensus() -> None:
    dm = data(source=low_rank_ratings(61, 37, density=0.5), split="none")
    model = ShardedConsensus(dm.training_data)
    assert resolve_strategy(model, "ddp_fork", devices=2) == "ddp_model_sync_fork"
    ranks_users: dict[int, set[int]] = {}

    def check(trainer: L.Trainer, module: ShardedConsensus) -> None:
        replicas_agree(trainer, module)  # the consensus step made them equal
        # Each rank trained only on its own contiguous shard of the rating triples.
        n = len(dm.train)
        start, stop = n * trainer.global_rank // 2, n * (trainer.global_rank + 1) // 2
        own = set(dm.train.users[start:stop].tolist())
        if module.seen_users != own:
            raise AssertionError("a rank left its fixed shard")
        size = (module.num_users + module.num_items) * 4
        if module.averaged_bytes != [size] * trainer.max_epochs:
            raise AssertionError(f"bytes exchanged {module.averaged_bytes}, expected {size} per epoch")
        ranks_users[trainer.global_rank] = own

    trainer = quiet_trainer(max_epochs=3, devices=2, strategy="ddp_model_sync_fork",
                            callbacks=[OnTrainEnd(check)])
    trainer.fit(model, datamodule=dm)
    assert isinstance(trainer.strategy, ModelSyncDDPStrategy)


class LocalUserBiases(ToyBiases):
    """Item biases shared by data parallelism, user biases (at the root of the module) and the
    factors of a child module kept rank-local by DDP."""

    def __init__(self, data: Any, lr: float = 0.1) -> None:
        super().__init__(data, lr)
        self.child = nn.Embedding(self.num_users, 2)

    def predict_ratings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return super().predict_ratings(users, items) + self.child(users).sum(-1)

    def rank_local_parameters(self) -> list[str]:
        return ["user_bias", "child.weight"]


def test_rank_local_parameters_are_neither_averaged_nor_broadcast_by_ddp() -> None:
    dm = data(split="none")

    def check(trainer: L.Trainer, module: LocalUserBiases) -> None:
        items = gathered(trainer, module.item_bias)
        if not torch.allclose(items[0], items[1], atol=1e-6):
            raise AssertionError("shared parameters diverged")
        for local in (module.user_bias, module.child.weight):
            both = gathered(trainer, local)
            if torch.allclose(both[0], both[1]):
                raise AssertionError("rank-local parameters were synchronised")

    model = LocalUserBiases(dm.training_data)
    quiet_trainer(max_epochs=2, callbacks=[OnTrainEnd(check)], **TWO).fit(model, datamodule=dm)


# ---- strategy resolution, no processes ----------------------------------------------------------
def test_the_users_strategy_is_translated_for_models_that_need_their_own() -> None:
    dm = data()
    solver, plain = ToyBiasSolver(dm.training_data), ToyBiases(dm.training_data)
    assert resolve_strategy(plain, "ddp") == "ddp"
    assert [resolve_strategy(solver, s) for s in ("ddp", "ddp_spawn", "ddp_fork")] == [
        "ddp_model_sync", "ddp_model_sync_spawn", "ddp_model_sync_fork"]
    assert resolve_strategy(solver, "auto", devices=1) == "auto"
    assert resolve_strategy(solver, "auto", devices=2) == "ddp_model_sync"
    with pytest.raises(ConfigError, match="needs strategy 'ddp_model_sync'; got --trainer.strategy 'fsdp'"):
        resolve_strategy(solver, "fsdp")


def test_a_solver_under_plain_ddp_is_refused_before_ddp_wraps_it() -> None:
    dm = data()
    with pytest.raises(ConfigError, match="cannot run under plain DDP; use strategy='ddp_model_sync'"):
        check_strategy(ToyBiasSolver(dm.training_data), DDPStrategy())
    check_strategy(ToyBiasSolver(dm.training_data), ModelSyncDDPStrategy())


def test_unknown_rank_local_parameters_are_named() -> None:
    class Wrong(ToyBiases):
        def rank_local_parameters(self) -> list[str]:
            return ["user_bais"]

    with pytest.raises(ConfigError, match="'user_bais', which is not a parameter"):
        check_strategy(Wrong(data().training_data), DDPStrategy())


def test_exchange_is_the_identity_on_one_process() -> None:
    exchange = Exchange()
    t = torch.arange(4.0)
    assert exchange.all_reduce(t, op="mean") is t and exchange.all_gather(t) is t
    assert (exchange.world_size, exchange.rank, exchange.take_bytes()) == (1, 0, 0)
    assert isinstance(nn.Module(), nn.Module)
