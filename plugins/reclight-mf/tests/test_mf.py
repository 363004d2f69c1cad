"""MF: the shared contract plus what is particular to biased matrix factorisation."""

from __future__ import annotations

import pytest
import torch

from reclight.data import RatingDataModule
from reclight.errors import ConfigError
from reclight.testing import RecModelContract, heldout_rmse, low_rank_ratings, quiet_trainer
from reclight_mf.model import OPTIMIZERS, MatrixFactorization


def tiny(num_users: int, num_items: int) -> RatingDataModule:
    """Data with every user and item rated, for tests of the prediction rule."""
    users = [u for u in range(num_users) for _ in range(num_items)]
    items = [i for _ in range(num_users) for i in range(num_items)]
    import pandas as pd

    return RatingDataModule(pd.DataFrame({"user": users, "item": items,
                                          "rating": [3.0] * len(users)}), split="none")


class TestMFContract(RecModelContract):
    model_name = "mf"
    model_kwargs = {"dim": 8, "reg": 0.001, "bias_reg": 0.0, "lr": 0.05}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns(optimizer: str) -> None:
    contract = TestMFContract()
    dm = contract.make_data()
    lr = {"adam": 0.05, "sparse_adam": 0.05, "sgd": 0.5}[optimizer]
    model = MatrixFactorization(dm.training_data, dim=8, reg=0.001, bias_reg=0.0, lr=lr,
                                optimizer=optimizer)
    before = heldout_rmse(model, dm.train)
    quiet_trainer(max_epochs=30).fit(model, datamodule=dm)
    assert heldout_rmse(model, dm.train) < 0.8 * before


def test_sparse_optimizers_use_sparse_gradients() -> None:
    model = MatrixFactorization(tiny(10, 8).training_data, dim=4, optimizer="sparse_adam")
    batch = {"users": torch.tensor([0, 1]), "items": torch.tensor([2, 3]), "ratings": torch.tensor([4.0, 2.0])}
    model.training_loss(batch).backward()
    assert all(p.grad.is_sparse for p in model.parameters())


def test_prediction_rule_is_mean_plus_biases_plus_dot_product() -> None:
    model = MatrixFactorization(tiny(3, 4).training_data, dim=2)
    mean = model.global_mean
    with torch.no_grad():
        model.net.users.weight.copy_(torch.tensor([[1.0, 0.0, 0.1], [0.0, 2.0, -0.2], [1.0, 1.0, 0.0]]))
        model.net.items.weight.copy_(torch.tensor([[0.5, 0.5, 0.3], [1.0, 0.0, 0.0],
                                                   [0.0, 1.0, -0.1], [0.0, 0.0, 0.0]]))
    pred = model.predict_ratings(torch.tensor([0, 1, 2]), torch.tensor([0, 2, 1]))
    expected = torch.tensor([mean + 0.1 + 0.3 + 0.5, mean - 0.2 - 0.1 + 2.0, mean + 0.0 + 0.0 + 1.0])
    torch.testing.assert_close(pred, expected)
    torch.testing.assert_close(model.score_items(torch.tensor([0, 1, 2]))[[0, 1, 2], [0, 2, 1]], expected)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'"),
    ({"dim": 0}, "dim >= 1"),
    ({"lr": 0.0}, "lr > 0"),
])
def test_bad_hyper_parameters_are_one_line_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        MatrixFactorization(tiny(5, 5).training_data, **kwargs)


def test_low_rank_data_is_learned_well() -> None:
    """On rank-2 data clipped to 1..5 and rounded to integers (a rounding-noise floor of
    1/sqrt(12) = 0.289, and clipping that a low-rank model cannot follow exactly), held-out RMSE
    should be less than half the global mean's (about 1.03)."""
    contract = TestMFContract()
    dm = contract.make_data(source=low_rank_ratings(80, 60, density=0.5))
    model = contract.make_model(dm)
    quiet_trainer(max_epochs=60).fit(model, datamodule=dm)
    rmse = heldout_rmse(model, dm.test)
    baseline = torch.sqrt(torch.mean((dm.test.ratings - dm.global_mean) ** 2)).item()
    assert rmse < 0.5 * baseline, f"held-out RMSE {rmse:.3f}, global mean {baseline:.3f}"


def test_sparse_pattern_path_matches_plain_gathering() -> None:
    """The CPU training path (sampled products, hand-written backward) must give the same
    scores, penalty and gradients as gathering rows with autograd."""
    from reclight_mf.network import BiasedMF, frequency_weights

    torch.manual_seed(0)
    net = BiasedMF(30, 20, dim=5)
    with torch.no_grad():
        net.users.weight[:, 5].normal_()
        net.items.weight[:, 5].normal_()
    cells = torch.randperm(30 * 20)[:250]  # distinct (user, item) pairs, as in a training batch
    users, items = cells // 20, cells % 20
    target = torch.rand(250) * 4 + 1
    wu = 0.3 * frequency_weights(torch.bincount(users, minlength=30), 0.5)
    wi = 0.2 * frequency_weights(torch.bincount(items, minlength=20), 0.5)
    score, penalty = net.forward_with_penalty(users, items, 3.0, wu, wi, 0.1)
    (((score - target) ** 2).mean() + penalty).backward()
    fast = (net.users.weight.grad.clone(), net.items.weight.grad.clone())

    net.zero_grad()
    p, q = net.users.weight[users], net.items.weight[items]
    ref_score = 3.0 + (p[:, :5] * q[:, :5]).sum(-1) + p[:, 5] + q[:, 5]
    ref_penalty = (wu[users] * p[:, :5].square().sum(-1) + wi[items] * q[:, :5].square().sum(-1)
                   + 0.1 * (p[:, 5].square() + q[:, 5].square())).mean()
    (((ref_score - target) ** 2).mean() + ref_penalty).backward()
    torch.testing.assert_close(score, ref_score)
    torch.testing.assert_close(penalty, ref_penalty)
    torch.testing.assert_close(fast[0], net.users.weight.grad)
    torch.testing.assert_close(fast[1], net.items.weight.grad)


class TestMFBPRContract(RecModelContract):
    """``--model.loss bpr``: the same factors trained to rank, on sampled negatives."""

    model_name = "mf"
    model_kwargs = {"dim": 8, "reg": 0.001, "bias_reg": 0.0, "lr": 0.05, "loss": "bpr"}
    batch_size = 256


def test_bpr_declares_implicit_feedback_on_the_negative_pairs_view() -> None:
    dm = tiny(4, 5)
    model = MatrixFactorization(dm.training_data, loss="bpr", num_negatives=3,
                                negative_sampling="popularity")
    assert (model.feedback, model.input_kind) == ("implicit", "negative_pairs")
    assert model.view_options == {"num_negatives": 3, "negative_sampling": "popularity"}
    plain = MatrixFactorization(dm.training_data)
    assert (plain.feedback, plain.input_kind) == ("explicit", "pairs")


def test_bpr_loss_is_the_mean_negative_log_sigmoid_of_score_differences() -> None:
    model = MatrixFactorization(tiny(2, 3).training_data, dim=2, loss="bpr", reg=0.0, bias_reg=0.0)
    with torch.no_grad():
        model.net.users.weight.copy_(torch.tensor([[1.0, 0.0, 5.0], [0.0, 1.0, -5.0]]))
        model.net.items.weight.copy_(torch.tensor([[2.0, 0.0, 0.5], [0.0, 1.0, 0.0],
                                                   [1.0, 1.0, -0.5]]))
    batch = {"users": torch.tensor([0, 1]), "items": torch.tensor([0, 1]),
             "negatives": torch.tensor([[1, 2], [0, 2]])}
    # x_ui - x_uj: user 0: (2 + .5) - (0) = 2.5, (2.5) - (1 - .5) = 2.0; user 1: 1 - .5, 1 - .5
    diffs = torch.tensor([2.5, 2.0, 0.5, 0.5])
    expected = -torch.nn.functional.logsigmoid(diffs).mean()
    torch.testing.assert_close(model.training_loss(batch), expected)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"loss": "hinge"}, r"unknown loss 'hinge' for mf; choose one of squared, bpr"),
    ({"loss": "bpr", "num_negatives": 0}, r"num_negatives=0 must be an integer >= 1"),
    ({"loss": "bpr", "negative_sampling": "zipf"}, r"negative sampling 'zipf' is unknown"),
])
def test_bad_loss_settings_are_one_line(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        MatrixFactorization(tiny(2, 2).training_data, **kwargs)


def test_unset_penalties_take_the_chosen_losss_defaults_and_set_ones_win() -> None:
    data = tiny(2, 3).training_data
    squared = MatrixFactorization(data)
    bpr = MatrixFactorization(data, loss="bpr")
    mine = MatrixFactorization(data, loss="bpr", reg=0.2, bias_reg=0.0)
    assert (squared.hparams.reg, squared.hparams.bias_reg) == (0.15, 0.1)  # rating defaults kept
    assert (bpr.hparams.reg, bpr.hparams.bias_reg) == (0.01, 0.01)
    assert (mine.hparams.reg, mine.hparams.bias_reg) == (0.2, 0.0)
