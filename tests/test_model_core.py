"""The RecModel core: the data handover, uniform evaluation chosen by feedback, ranking with
training items excluded, process settings restored, checkpoints rebuilt by Lightning."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from reclight.checkpoints import load_model
from reclight.data import RatingDataModule
from reclight.errors import CheckpointError, ConfigError
from reclight.metrics import topn_per_user
from reclight.settings import flush_denormal_enabled
from reclight.testing import low_rank_ratings, quiet_trainer

from .toy_plugin import ToyBiases, ToyItemKNN, ToyLogisticMF


def data(**kwargs: Any) -> RatingDataModule:
    settings: dict[str, Any] = {"source": low_rank_ratings(), "test_size": 0.2, "batch_size": 64}
    settings.update(kwargs)
    return RatingDataModule(**settings)


def fitted(model_cls: type = ToyBiases, epochs: int = 3, **data_kwargs: Any) -> tuple[Any, Any, Any]:
    dm = data(**data_kwargs)
    torch.manual_seed(0)
    model = model_cls(dm.training_data)
    trainer = quiet_trainer(max_epochs=epochs)
    trainer.fit(model, datamodule=dm)
    return model, dm, trainer


# ---- the data handover -----------------------------------------------------------------------
def test_the_model_receives_the_training_data_once() -> None:
    dm = data()
    model = ToyBiases(dm.training_data)
    assert model.data is dm.training_data
    assert (model.num_users, model.num_items) == (dm.num_users, dm.num_items)
    assert model.global_mean == pytest.approx(float(dm.train.ratings.double().mean()))
    assert model.train_rows.nnz == len(dm.train) and model.user_map == dm.user_map
    assert "data" not in model.hparams  # stored once, in the checkpoint, not as a hyper-parameter
    torch.testing.assert_close(model.fallback_item_bias, dm.training_data.item_bias)


def test_a_model_needs_training_data() -> None:
    with pytest.raises(ConfigError, match="a model needs its training data"):
        ToyBiases({"users": 3})


# ---- evaluation chosen by the feedback kind ----------------------------------------------------
def test_explicit_test_metrics_equal_a_direct_computation() -> None:
    model, dm, trainer = fitted(eval_batch_size=1 << 20)
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    model.eval()
    with torch.no_grad():
        pred, _ = model.predict_with_fallback(dm.test.users, dm.test.items)
        (batch,) = list(dm.test_dataloader()[1])  # every top-N user in one batch
        scores = model.score_items(batch["users"]).masked_fill(model.seen_mask(batch["users"]),
                                                               float("-inf"))
        ndcg = topn_per_user(scores, batch["targets"], 10)["ndcg"].mean().item()
    rmse = torch.sqrt(torch.mean((pred.double() - dm.test.ratings.double()) ** 2)).item()
    assert result["test_rmse"] == pytest.approx(rmse, abs=1e-5)
    assert result["test_ndcg@10"] == pytest.approx(ndcg, abs=1e-5)
    assert result["test_users"] == len(batch["users"])


def test_implicit_models_are_evaluated_by_ranking_only() -> None:
    model, dm, trainer = fitted(ToyLogisticMF, source=low_rank_ratings(implicit=True), val_size=0.2)
    assert model.monitor == "val_ndcg@10" and model.monitor_mode == "max"
    assert "val_ndcg@10" in trainer.callback_metrics and "val_rmse" not in trainer.callback_metrics
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert "test_ndcg@10" in result and not any(k in result for k in ("test_rmse", "test_mae"))


def test_implicit_data_can_train_an_implicit_model_from_explicit_ratings() -> None:
    model, dm, trainer = fitted(ToyItemKNN, epochs=1)  # every rating counts as an interaction
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert set(result) >= {"test_ndcg@10", "test_recall@10"} and "test_rmse" not in result


def test_scores_are_not_clipped_and_unseen_pairs_have_none() -> None:
    model, dm, _ = fitted(ToyItemKNN, epochs=1, source=low_rank_ratings(implicit=True))
    with torch.no_grad():
        best = model.score_items(torch.tensor([0, 1])).max(dim=1)
        users = torch.tensor([0, 0, -1, 1])
        items = torch.tensor([int(best.indices[0]), -1, 0, int(best.indices[1])])
        scores, unseen = model.predict_with_fallback(users, items)
    assert unseen == 2 and torch.isnan(scores[1:3]).all()
    torch.testing.assert_close(scores[[0, 3]], best.values)
    assert float(best.values.max()) > 1.0  # the interactions' "range" is (1, 1): no clipping


def test_eval_k_takes_several_cut_offs() -> None:
    model, dm, trainer = fitted()
    model.set_eval_k("5,20")
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert {"test_ndcg@5", "test_ndcg@20", "test_mrr@5", "test_map@20"} <= set(result)
    assert "test_ndcg@10" not in result


def test_validation_of_an_explicit_model_monitors_rmse() -> None:
    model, _, trainer = fitted(val_size=0.1)
    assert model.monitor == "val_rmse" and model.monitor_mode == "min"
    assert {"val_rmse", "val_mae"} <= set(trainer.callback_metrics)


# ---- ranking -----------------------------------------------------------------------------------
def test_recommend_excludes_training_items_and_falls_back_for_unknown_users() -> None:
    dm = data()
    model = ToyBiases(dm.training_data).eval()
    top, _ = model.recommend(torch.tensor([0, -1]), k=5)
    seen = model.seen_mask(torch.tensor([0]))[0]
    assert not seen[top[0]].any()
    expected = torch.topk(dm.global_mean + model.fallback_item_bias, 5).indices
    assert torch.equal(top[1], expected)


def test_unknown_users_of_an_implicit_model_get_the_most_popular_items() -> None:
    model, dm, _ = fitted(ToyItemKNN, epochs=1, source=low_rank_ratings(implicit=True))
    top, _ = model.recommend(torch.tensor([-1]), k=4)
    counts = dm.training_data.item_counts
    assert torch.equal(counts[top[0]], torch.sort(counts, descending=True).values[:4])


# ---- process-wide settings -----------------------------------------------------------------------
class Probe(ToyBiases):
    """Records the process settings while a training step runs."""

    cpu_threads = 1
    seen: list[tuple[int, bool]] = []

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        Probe.seen.append((torch.get_num_threads(), flush_denormal_enabled()))
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
        return super().training_loss(batch)


def test_process_settings_hold_during_a_fit_and_are_restored_after() -> None:
    dm = data()
    Probe.seen = []
    torch.set_num_threads(2)
    torch.set_flush_denormal(False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        quiet_trainer(max_epochs=1).fit(Probe(dm.training_data), datamodule=dm)
        assert warnings.filters == filters
    assert Probe.seen and set(Probe.seen) == {(1, True)}
    assert torch.get_num_threads() == 2 and not flush_denormal_enabled()
    assert not [w for w in caught if "LeafSpec" in str(w.message)]  # Lightning's noise, quietened


# ---- checkpoints -------------------------------------------------------------------------------
@pytest.mark.usefixtures("toy_registry")
def test_lightnings_load_from_checkpoint_rebuilds_the_model_and_its_data(tmp_path: Path) -> None:
    model, dm, trainer = fitted(val_size=0.1)
    path = tmp_path / "toy.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)  # nothing but tensors and plain values
    assert not {"_instantiator", "_class_path"} & set(ckpt["hyper_parameters"])
    assert ckpt["datamodule_hyper_parameters"]["val_size"] == 0.1
    loaded = ToyBiases.load_from_checkpoint(path, weights_only=True)
    assert loaded.user_map == dm.user_map and loaded.data.nnz == len(dm.train)
    torch.testing.assert_close(loaded.item_bias, model.item_bias)
    again = load_model(path)
    assert type(again) is ToyBiases and again.registered_name == "toy" and not again.training


@pytest.mark.usefixtures("toy_registry")
def test_a_checkpoint_naming_an_unregistered_class_is_refused(tmp_path: Path) -> None:
    model, _, trainer = fitted(epochs=1)
    path = tmp_path / "hostile.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["reclight"]["class"] = "os:system"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="'os:system' is not registered by any installed plugin"):
        load_model(path)


def test_toy_models_pass_through_lightning_like_any_module() -> None:
    assert issubclass(ToyBiases, L.LightningModule)
