"""mlp-mf and resnet-mf: the shared contract plus what is particular to the towers."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from reclight.data import RatingDataModule
from reclight.errors import ConfigError
from reclight.testing import RecModelContract
from reclight_resnetmf.model import MLPMF, ResNetMF


def tiny() -> RatingDataModule:
    users = [u for u in range(4) for _ in range(5)]
    items = [i for _ in range(4) for i in range(5)]
    return RatingDataModule(pd.DataFrame({"user": users, "item": items,
                                          "rating": [float(1 + (u + i) % 5) for u, i in zip(users, items)]}),
                            split="none")


class TestMLPMFContract(RecModelContract):
    model_name = "mlp-mf"
    model_kwargs = {"dim": 8, "hidden": 8, "reg": 0.001, "bias_reg": 0.0, "lr": 0.02}


class TestResNetMFContract(RecModelContract):
    model_name = "resnet-mf"
    model_kwargs = {"dim": 8, "hidden": 8, "reg": 0.001, "bias_reg": 0.0, "lr": 0.02,
                    "dropout": 0.1}


@pytest.mark.parametrize("cls", [MLPMF, ResNetMF])
def test_prediction_is_mean_biases_and_the_towers_dot_product(cls: type) -> None:
    torch.manual_seed(0)
    model = cls(tiny().training_data, dim=3, hidden=4).eval()
    net = model.net
    with torch.no_grad():
        net.users.weight[:, 3].normal_()
        net.items.weight[:, 3].normal_()
    users, items = torch.tensor([0, 1, 3]), torch.tensor([4, 0, 2])
    p, q = net.users.weight[users], net.items.weight[items]
    with torch.no_grad():
        expected = (model.global_mean + p[:, 3] + q[:, 3]
                    + (net.user_tower(p[:, :3]) * net.item_tower(q[:, :3])).sum(-1))
        torch.testing.assert_close(model.predict_ratings(users, items), expected)
        torch.testing.assert_close(model.score_items(users)[torch.arange(3), items], expected)


@pytest.mark.parametrize("nonnegative", [True, False])
def test_mlp_embeddings_start_on_the_live_side_of_the_relu(nonnegative: bool) -> None:
    """Drawn N(0, s), an embedding coordinate below zero gets no gradient through the ReLU
    (the penalty acts on the towers' outputs): half of each row would never learn. The default
    |N(0, s)| start gives every coordinate a gradient."""
    torch.manual_seed(0)
    data = tiny()
    model = MLPMF(data.training_data, dim=6, hidden=4, nonnegative_init=nonnegative)
    table = model.net.users.weight
    assert bool((table[:, :6] >= 0).all()) == nonnegative
    batch = {"users": data.train.users, "items": data.train.items, "ratings": data.train.ratings}
    model.training_loss(batch).backward()
    dead = table.grad[:, :6] == 0
    assert bool(dead.any()) != nonnegative
    assert bool((table[:, :6][dead] < 0).all())


def test_without_biases_the_prediction_is_the_plain_dot_product() -> None:
    torch.manual_seed(0)
    model = MLPMF(tiny().training_data, dim=3, hidden=4, biases=False).eval()
    net = model.net
    users, items = torch.tensor([0, 2]), torch.tensor([1, 3])
    with torch.no_grad():
        expected = (net.user_tower(net.users.weight[users, :3])
                    * net.item_tower(net.items.weight[items, :3])).sum(-1)
        torch.testing.assert_close(model.predict_ratings(users, items), expected)


def test_residual_tower_is_identity_when_its_outer_layers_are_zero() -> None:
    """The skip connections: with zero output layers each tower returns its embedding, and
    resnet-mf is exactly biased MF."""
    model = ResNetMF(tiny().training_data, dim=3, hidden=5).eval()
    with torch.no_grad():
        for tower in (model.net.user_tower, model.net.item_tower):
            for block in tower.blocks:
                block.outer.weight.zero_()
                block.outer.bias.zero_()
    p = model.net.users.weight[:, :3]
    torch.testing.assert_close(model.net.user_tower(p), p)


def test_dropout_acts_in_training_only() -> None:
    model = ResNetMF(tiny().training_data, dim=4, hidden=16, dropout=0.5)
    users, items = torch.arange(4).repeat(5), torch.arange(5).repeat_interleave(4)
    torch.manual_seed(0)
    a = model.net(users, items, 3.0)
    b = model.net(users, items, 3.0)
    assert not torch.allclose(a, b)
    model.eval()
    torch.testing.assert_close(model.net(users, items, 3.0), model.net(users, items, 3.0))


def test_tower_weight_decay_reaches_the_optimiser_and_only_the_towers() -> None:
    model = MLPMF(tiny().training_data, dim=3, hidden=4, tower_decay=0.01)
    groups = model.configure_optimizers().param_groups
    tower_ids = {id(p) for p in [*model.net.user_tower.parameters(), *model.net.item_tower.parameters()]}
    assert [g["weight_decay"] for g in groups] == [0.0, 0.01]
    assert {id(p) for p in groups[1]["params"]} == tower_ids
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.mark.parametrize("cls, kwargs, fragment", [
    (MLPMF, {"optimizer": "sparse_adam"}, "unknown optimizer 'sparse_adam' for mlp-mf; choose one of adam, sgd"),
    (MLPMF, {"hidden": 0}, "hidden >= 1"),
    (ResNetMF, {"dropout": 1.0}, "0 <= dropout < 1"),
    (ResNetMF, {"blocks": 0}, "blocks >= 1"),
])
def test_bad_hyper_parameters_are_one_line_errors(cls: type, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        cls(tiny().training_data, **kwargs)


@pytest.mark.parametrize("outputs", [False, True])
def test_towers_once_per_row_equal_towers_per_pair(outputs: bool) -> None:
    """Training runs each tower once per distinct row of the batch; scores, penalty and
    gradients must equal running it for every pair."""
    from reclight_mf.network import frequency_weights

    torch.manual_seed(0)
    model = MLPMF(tiny().training_data, dim=3, hidden=4, penalise_outputs=outputs)
    net = model.net
    with torch.no_grad():
        net.users.weight[:, 3].normal_()
        net.items.weight[:, 3].normal_()
    users, items = torch.tensor([0, 1, 1, 3, 0, 2]), torch.tensor([4, 0, 2, 2, 1, 3])
    target = torch.rand(6) * 4 + 1
    wu = 0.3 * frequency_weights(torch.tensor([2.0, 2, 1, 1]), 0.5)
    wi = 0.2 * frequency_weights(torch.tensor([1.0, 1, 2, 1, 1]), 0.5)
    score, penalty = net.forward_with_penalty(users, items, 3.0, wu, wi, 0.1)
    (((score - target) ** 2).mean() + penalty).backward()
    fast = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    p, q = net.users.weight[users], net.items.weight[items]
    fp, fq = net.user_tower(p[:, :3]), net.item_tower(q[:, :3])
    ref_score = 3.0 + p[:, 3] + q[:, 3] + (fp * fq).sum(-1)
    pu, pq = (fp, fq) if outputs else (p[:, :3], q[:, :3])
    ref_penalty = (wu[users] * pu.square().sum(-1) + wi[items] * pq.square().sum(-1)
                   + 0.1 * (p[:, 3].square() + q[:, 3].square())).mean()
    (((ref_score - target) ** 2).mean() + ref_penalty).backward()
    torch.testing.assert_close(score, ref_score)
    torch.testing.assert_close(penalty, ref_penalty)
    for got, param in zip(fast, model.parameters()):
        torch.testing.assert_close(got, param.grad)
