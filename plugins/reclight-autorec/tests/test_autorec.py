"""AutoRec: the shared contract plus variants, optimisers, the L2 penalty and bad settings."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from reclight.errors import ConfigError
from reclight.testing import RecModelContract
from reclight_autorec.model import AutoRec

# Small and quick, with enough optimiser steps on the contract's tiny data to beat its global
# mean (40 epochs, 4 rows a batch, a constant rate).
SMALL = {"hidden": 16, "reg": 1.0, "lr": 0.03, "milestones": ""}


def tiny_data() -> Any:
    return TestAutoRecContract().make_data().training_data


class TestAutoRecContract(RecModelContract):
    model_name = "autorec"
    model_kwargs = SMALL
    fit_epochs = 40
    batch_size = 4


class TestUserAutoRecContract(TestAutoRecContract):
    """U-AutoRec: the contract builds the data view from the instance's ``input_kind``."""

    model_kwargs = {**SMALL, "variant": "user"}


def fit(**kwargs: Any) -> tuple[Any, float, float]:
    model, _, before, after = TestAutoRecContract().fit_small(15, **kwargs)
    return model, before, after


@pytest.mark.parametrize("variant, optimizer", [("item", "lbfgs"), ("user", "lbfgs"), ("user", "adam")])
def test_each_variant_and_optimizer_learns(variant: str, optimizer: str) -> None:
    model, before, after = fit(variant=variant, optimizer=optimizer, lbfgs_iters=5)
    assert model.input_kind == f"{variant}_rows"
    assert after < 0.8 * before, f"{variant}/{optimizer}: {before:.3f} -> {after:.3f}"


def test_refeeding_switches_on_with_the_same_flag() -> None:
    model, before, after = fit(refeed_steps=1)
    assert len(model.step_hooks) == 1 and after < 0.8 * before
    assert not model.mask_input  # the default mask input is off under re-feeding
    assert AutoRec(tiny_data()).mask_input


def test_penalty_is_lambda_over_two_n_times_the_weight_norms() -> None:
    contract = TestAutoRecContract()
    dm = contract.make_data()
    model = AutoRec(dm.training_data, hidden=4, reg=3.0)
    norms = model.net.encoder.weight_t.pow(2).sum() + model.net.decoder.weight.pow(2).sum()
    torch.testing.assert_close(model.penalty(), 3.0 / (2 * dm.train_rows.nnz) * norms)
    lbfgs = AutoRec(dm.training_data, hidden=4, reg=3.0, optimizer="lbfgs")
    torch.testing.assert_close(lbfgs.regularization(), lbfgs.penalty())


def test_adams_weight_decay_is_the_penalty() -> None:
    """Adam takes the penalty as weight decay on the weights (not the biases): one step equals
    a plain Adam step on the loss plus the penalty."""
    contract = TestAutoRecContract()
    dm = contract.make_data(batch_size=5)
    torch.manual_seed(0)
    model = AutoRec(dm.training_data, hidden=6, reg=40.0, variant="item")
    batch = contract.first_batch(dm, model)
    reference = copy.deepcopy(model)
    opt = model.configure_optimizers()["optimizer"]
    model.training_loss(batch).backward()
    opt.step()
    plain = torch.optim.Adam(reference.net.parameters(), lr=model.hparams.lr)
    (reference.training_loss(batch) + reference.penalty()).backward()
    plain.step()
    assert float(model.regularization()) == 0.0
    for a, b in zip(model.net.parameters(), reference.net.parameters()):
        torch.testing.assert_close(a, b)


def test_auto_takes_the_side_with_more_rows_and_reads_its_view() -> None:
    data = tiny_data()
    model = AutoRec(data)
    rows, view = ("item", "item_rows") if data.num_items > data.num_users else ("user", "user_rows")
    assert model.hparams.variant == "auto" and model.variant == rows and model.input_kind == view
    item = AutoRec(data, variant="item")
    assert item.input_kind == "item_rows"
    assert item.net.decoder.out_features == data.num_users  # an item's vector of user ratings
    assert item.net.encoder.in_features == 2 * data.num_users  # the vector and its mask


def test_adam_follows_the_validated_schedule_and_lbfgs_takes_none() -> None:
    sched = AutoRec(tiny_data()).configure_optimizers()["lr_scheduler"]
    assert sorted(sched.milestones) == [15] and sched.gamma == pytest.approx(0.1)
    assert AutoRec.trainer_defaults["max_epochs"] == 30
    assert isinstance(AutoRec(tiny_data(), optimizer="lbfgs").configure_optimizers(), torch.optim.LBFGS)


def test_schedule_lowers_adams_rate_at_its_milestone() -> None:
    model, _, _, _ = TestAutoRecContract().fit_small(3, milestones="2", gamma=0.5)
    assert model.optimizers().param_groups[0]["lr"] == pytest.approx(SMALL["lr"] * 0.5)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"encoder": "gelu"}, r"unknown activation 'gelu' \(--model.encoder\); choose one of selu"),
    ({"decoder": "softmax"}, r"unknown activation 'softmax' \(--model.decoder\)"),
    ({"optimizer": "rprop"}, "unknown optimizer 'rprop'"),
    ({"variant": "both"}, "unknown variant 'both'"),
    ({"refeed_steps": -1}, "refeed_steps=-1 must be an integer >= 0"),
    ({"hidden": 0}, "hidden >= 1"),
    ({"milestones": "20,x"}, "milestones '20,x' must be epochs"),
    ({"gamma": 0.0}, r"gamma=0.0 must be in \(0, 1\]"),
    ({"mask_input": True, "refeed_steps": 1}, "use --model.mask_input false with --model.refeed_steps"),
])
def test_bad_hyper_parameters_are_one_line_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        AutoRec(tiny_data(), **kwargs)
    assert "\n" not in str(info.value)


def test_default_penalty_follows_the_mean_row_length() -> None:
    data = tiny_data()
    model = AutoRec(data)
    rows = data.num_items if model.variant == "item" else data.num_users
    assert model.hparams.reg is None
    assert model.reg == pytest.approx(1.75 * data.nnz / rows)
    assert AutoRec(data, reg=3.0).reg == 3.0


def test_hidden_is_capped_at_the_row_width() -> None:
    data = tiny_data()
    model = AutoRec(data, variant="item", hidden=10_000)
    assert model.net.encoder.out_features == data.num_users
    assert AutoRec(data, variant="item", hidden=10_000,
                   cap_hidden=False).net.encoder.out_features == 10_000


@pytest.mark.parametrize("center, mask_input", [("residual", False), ("output", False),
                                                ("none", False), ("residual", True)])
def test_sparse_step_has_the_dense_steps_loss_and_gradients(center: str, mask_input: bool) -> None:
    """The sparse step (encoder over observed inputs, decoder at observed outputs) is the dense
    masked-MSE step computed on the pattern: same loss, same gradient for every parameter."""
    contract = TestAutoRecContract()
    dm = contract.make_data(batch_size=5)
    torch.manual_seed(0)
    model = AutoRec(dm.training_data, hidden=6, reg=2.0, center=center, variant="item",
                    mask_input=mask_input)
    batch = contract.first_batch(dm, model)
    assert 0 < int(batch["mask"].sum()) < batch["mask"].numel()  # sparse rows, not full ones

    def loss_and_grads(sparse: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.hparams.sparse = sparse
        model.zero_grad()
        loss = model.training_loss(batch)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.net.parameters()]

    sparse_loss, sparse_grads = loss_and_grads(True)
    dense_loss, dense_grads = loss_and_grads(False)
    torch.testing.assert_close(sparse_loss, dense_loss)
    for s, d in zip(sparse_grads, dense_grads):
        torch.testing.assert_close(s, d)


def test_sparse_and_dense_fits_agree() -> None:
    sparse, _, _ = fit()
    dense, _, _ = fit(sparse=False)
    for s, d in zip(sparse.net.parameters(), dense.net.parameters()):
        torch.testing.assert_close(s, d, rtol=1e-4, atol=1e-5)


def test_checkpoints_with_the_linear_layout_still_load() -> None:
    """Checkpoints written before the input-major encoder hold ``encoder.weight`` as
    nn.Linear does ([hidden, width]); they load transposed."""
    model = AutoRec(tiny_data(), hidden=3)
    state = model.net.state_dict()
    legacy = {("encoder.weight" if k == "encoder.weight_t" else k): (v.T if k == "encoder.weight_t" else v)
              for k, v in state.items()}
    fresh = AutoRec(tiny_data(), hidden=3)
    fresh.net.load_state_dict(legacy)
    torch.testing.assert_close(fresh.net.encoder.weight_t, model.net.encoder.weight_t)


def test_mask_input_reads_which_entries_are_observed() -> None:
    """With mask_input the encoder sees [x, mask]: two rows with the same (zero) residuals but
    different observed entries get different codes; without it they cannot."""
    data = tiny_data()
    torch.manual_seed(0)
    model = AutoRec(data, hidden=4, variant="item", mask_input=True)
    assert model.net.encoder.in_features == 2 * data.num_users
    width = model.row_width
    values = torch.zeros(2, width)
    mask = torch.zeros(2, width, dtype=torch.bool)
    mask[0, 0] = mask[1, 1] = True
    batch = {"rows": torch.tensor([0, 0]), "values": values, "mask": mask}
    x = torch.cat([values, mask.float()], 1)
    model.center = "none"  # the input is exactly the zero values and the mask
    torch.testing.assert_close(model.row_input(batch), x)
    out = model.reconstruct(x)
    assert not torch.allclose(out[0], out[1])
