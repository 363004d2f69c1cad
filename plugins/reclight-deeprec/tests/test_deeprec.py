"""DeepRec: the shared contract plus re-feeding, the constrained decoder, optimisers and bad
settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from reclight.errors import ConfigError
from reclight.testing import RecModelContract
from reclight_deeprec.model import DeepRec

SMALL = {"hidden": "16,8", "dropout": 0.0, "optimizer": "adam", "lr": 0.01}


class TestDeepRecContract(RecModelContract):
    model_name = "deeprec"
    model_kwargs = SMALL
    fit_epochs = 25
    batch_size = 8


def data_of(num_users: int, num_items: int) -> Any:
    """Training data with exactly these sizes (every cell rated), for shape tests."""
    import pandas as pd

    from reclight.data import RatingDataModule

    cells = [(u, i) for u in range(num_users) for i in range(num_items)]
    frame = pd.DataFrame({"user": [c[0] for c in cells], "item": [c[1] for c in cells],
                          "rating": [1.0 + (c[0] + c[1]) % 5 for c in cells]})
    return RatingDataModule(frame, split="none").training_data


def fitted(epochs: int = 2, **kwargs: Any) -> tuple[Any, Any, float, float]:
    return TestDeepRecContract().fit_small(epochs, **kwargs)


def test_refeeding_takes_the_extra_optimiser_step_and_changes_the_weights() -> None:
    plain, t0, _, _ = fitted(refeed_steps=0)
    refed, t1, _, _ = fitted(refeed_steps=1)
    assert t1.global_step == 2 * t0.global_step > 0
    assert not torch.allclose(plain.net.enc_w[0], refed.net.enc_w[0])


@pytest.mark.parametrize("source, forwards_per_batch", [("step", 2), ("update", 3)])
def test_refeeding_re_feeds_the_normal_steps_output_without_a_new_forward(
        source: str, forwards_per_batch: int) -> None:
    contract = TestDeepRecContract()
    dm = contract.make_data()
    model = contract.make_model(dm, refeed_steps=1, refeed_from=source)
    training_forwards = []
    model.net.register_forward_hook(
        lambda m, args, out: training_forwards.append(1) if m.training else None)
    trainer = contract.fit(model, dm, 2)
    normal_steps = trainer.global_step // 2  # each normal step took one re-fed step
    assert normal_steps > 0
    assert len(training_forwards) == normal_steps * forwards_per_batch


def test_the_kept_output_is_the_normal_steps_own_and_handed_out_once() -> None:
    contract = TestDeepRecContract()
    dm = contract.make_data()
    model = contract.make_model(dm, refeed_steps=1, dropout=0.0)
    outputs: list[torch.Tensor] = []
    model.net.register_forward_hook(lambda m, args, out: outputs.append(out))
    batch = contract.first_batch(dm, model)
    model.training_loss(batch)
    other = contract.first_batch(dm, model)
    assert model.dense_output(other) is None  # another batch's output is never re-fed
    model.training_loss(batch)
    kept = model.dense_output(batch)
    assert kept is not None and not kept.requires_grad
    torch.testing.assert_close(kept, outputs[-1].detach())
    assert model.dense_output(batch) is None  # handed out once
    plain = contract.make_model(dm, refeed_steps=1, refeed_from="update")
    plain.training_loss(batch)
    assert plain.dense_output(batch) is None


def test_constrained_decoder_shares_the_encoder_weights() -> None:
    model = DeepRec(data_of(10, 12), hidden=[6, 4], constrained=True, variant="user")
    net = model.net
    assert len(net.dec_w) == 0
    assert net.decoder_weight(0).data_ptr() == net.enc_w[1].data_ptr()
    assert net.decoder_weight(1).data_ptr() == net.enc_w[0].data_ptr()
    assert net.decoder_weight(1).shape == (12, 6)
    # A gradient through the decoder alone reaches the (shared) encoder parameter.
    net.decode(torch.randn(3, 4)).sum().backward()
    assert net.enc_w[0].grad is not None and net.enc_w[0].grad.abs().sum() > 0
    assert sum(p.numel() for p in net.parameters()) < sum(
        p.numel() for p in DeepRec(data_of(10, 12), hidden=[6, 4], variant="user").net.parameters())


def test_linear_last_layer_can_go_negative() -> None:
    model = DeepRec(data_of(10, 12), hidden=[4], activation="relu", linear_last=True, dropout=0.0,
                    variant="user")
    with torch.no_grad():
        model.net.dec_b[0].fill_(-5.0)
        assert (model.reconstruct(torch.zeros(2, 12)) < 0).all()


@pytest.mark.parametrize("kwargs", [
    {"optimizer": "sgd", "lr": 0.02, "milestones": "5,10", "constrained": True, "activation": "elu"},
    {"optimizer": "adam", "dropout": 0.5, "refeed_steps": 1, "refeed_dropout": 0.2, "activation": "swish"},
])
def test_optimizers_and_options_learn(kwargs: dict) -> None:
    _, _, before, after = fitted(epochs=15, **kwargs)
    assert after < 0.8 * before, f"{kwargs}: {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("milestones, factor", [("1,2", 0.25), ("", 1.0), ("2", 0.5)])
def test_multi_step_schedule_lowers_the_rate_at_its_milestones(milestones: str, factor: float) -> None:
    model, _, _, _ = fitted(epochs=3, optimizer="sgd", lr=0.04, milestones=milestones, gamma=0.5)
    assert model.optimizers().param_groups[0]["lr"] == pytest.approx(0.04 * factor)


def test_default_schedule_and_regularisation_are_the_validated_ones() -> None:
    model = DeepRec(data_of(5, 7))
    config = model.configure_optimizers()
    sched = config["lr_scheduler"]
    assert sorted(sched.milestones) == [18, 24] and sched.gamma == pytest.approx(0.3)
    assert DeepRec.trainer_defaults["max_epochs"] == 30
    assert [w.shape[0] for w in model.net.enc_w] == [5, 5, 5]  # 256,256,512 capped at 5 users
    assert [w.shape[0] for w in DeepRec(data_of(5, 7), cap_hidden=False).net.enc_w] == [256, 256, 512]
    assert DeepRec.cpu_threads == 1 and model.hparams.refeed_from == "step"
    assert config["optimizer"].param_groups[0]["weight_decay"] == pytest.approx(0.005)
    assert model.net.drop.p == pytest.approx(0.5)


def test_hidden_accepts_a_string_or_a_list() -> None:
    a, b = (DeepRec(data_of(5, 7), hidden="8,4", variant="user"),
            DeepRec(data_of(5, 7), hidden=[8, 4], variant="user", cap_hidden=False))
    assert [w.shape for w in b.net.enc_w] == [(8, 7), (4, 8)]
    assert [w.shape for w in a.net.enc_w] == [(7, 7), (4, 7)]  # no layer wider than the row


def test_auto_variant_takes_the_side_with_more_rows() -> None:
    assert DeepRec(data_of(5, 7)).input_kind == "item_rows"
    assert DeepRec(data_of(7, 5)).input_kind == "user_rows"
    assert DeepRec(data_of(5, 7)).net.enc_w[0].shape[1] == 5  # an item's row of 5 users


@pytest.mark.parametrize("kwargs, fragment", [
    ({"hidden": ""}, "hidden layer list is empty"),
    ({"hidden": []}, "hidden layer list is empty"),
    ({"dropout": -0.1}, r"dropout=-0.1 must be in \[0, 1\)"),
    ({"dropout": 1.0}, r"dropout=1.0 must be in \[0, 1\)"),
    ({"activation": "gelu"}, "unknown activation 'gelu'.*selu, elu, lrelu, relu, relu6, sigmoid, tanh, swish"),
    ({"refeed_steps": -1}, "refeed_steps=-1 must be an integer >= 0"),
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
    ({"milestones": "5,x"}, "milestones"),
    ({"gamma": 1.5}, r"gamma=1.5 must be in \(0, 1\]"),
    ({"refeed_from": "later"}, "unknown refeed_from 'later'.*step, update"),
])
def test_bad_hyper_parameters_are_one_line_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        DeepRec(data_of(5, 5), **kwargs)
    assert "\n" not in str(info.value)


def test_the_shipped_item_config_is_the_documented_item_setting(tmp_path: Path) -> None:
    from reclight.lightning_cli import build_cli
    from reclight.runner import run_fit

    config = Path(__file__).resolve().parents[1] / "configs" / "item-ml100k.yaml"
    record = run_fit(["--config", str(config), "--data", "synthetic", "--data.synthetic_ratings",
                      "3000", "--trainer.max_epochs", "2", "--trainer.logger", "false",
                      "--trainer.enable_checkpointing", "false",
                      "--trainer.default_root_dir", str(tmp_path)], quiet=True)
    assert record["model"] == "deeprec" and "test_rmse" in record["metrics"]
    saved = yaml.safe_load((Path(record["run_dir"]) / "config.yaml").read_text())
    assert {k: saved["model"][k] for k in ("variant", "refeed_steps", "dropout", "weight_decay",
                                           "lr", "milestones", "gamma")} == {
        "variant": "item", "refeed_steps": 0, "dropout": 0.5, "weight_decay": 0.01, "lr": 0.01,
        "milestones": "30,45", "gamma": 0.3}
    assert saved["trainer"]["max_epochs"] == 2  # a flag after --config overrides it
    alone = build_cli(DeepRec, "deeprec", ["--config", str(config), "--data.synthetic_ratings",
                                           "3000", "--trainer.logger", "false"], "reclight fit")
    assert alone.trainer.max_epochs == 60 and alone.model.variant == "item"
    assert alone.model.input_kind == "item_rows" and alone.model.training_kind == "gradient"
