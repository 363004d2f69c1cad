"""ALS: the shared contract for both variants, exact solutions on tiny data, bad inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from reclight.data import RatingDataModule
from reclight.data.ratings import Ratings
from reclight.data.training import TrainingData
from reclight.data.views import MatrixBatches
from reclight.errors import ConfigError
from reclight.model import RecModel
from reclight.testing import RecModelContract, heldout_ndcg, heldout_rmse, low_rank_ratings, quiet_trainer
from reclight_als import solvers
from reclight_als.model import AlternatingLeastSquares
from reclight_als.solvers import (plan_buckets, row_slice, solve_explicit, solve_explicit_cg,
                                  solve_implicit)


class _SmallRank:
    """The kit's degenerate data sets have a single user or item, and a rank above
    min(users, items) is refused (tested below): the contract's rank is capped to the data."""

    def make_model(self, dm: RatingDataModule, **overrides: Any) -> RecModel:
        kwargs = {**self.model_kwargs, **overrides}  # type: ignore[attr-defined]
        kwargs["rank"] = min(kwargs.get("rank", 8), dm.num_users, dm.num_items)
        torch.manual_seed(0)
        return AlternatingLeastSquares(dm.training_data, **kwargs)


class TestExplicitALSContract(_SmallRank, RecModelContract):
    model_name = "als"
    model_kwargs = {"rank": 4, "reg": 0.05}
    fit_epochs = 10


class TestExplicitCGContract(_SmallRank, RecModelContract):
    model_name = "als"
    model_kwargs = {"rank": 4, "reg": 0.05, "cg_steps": 3, "reg_smoothing": 0.3}
    fit_epochs = 10


class TestImplicitALSContract(_SmallRank, RecModelContract):
    model_name = "als"
    model_kwargs = {"rank": 4, "implicit": True, "reg": 1.0, "alpha": 5.0}
    fit_epochs = 10


class TestImplicitCGContract(_SmallRank, RecModelContract):
    model_name = "als"
    model_kwargs = {"rank": 4, "implicit": True, "reg": 1.0, "alpha": 5.0, "cg_steps": 3}
    fit_epochs = 10


def full_matrix(values: np.ndarray) -> RatingDataModule:
    users, items = np.nonzero(np.ones_like(values))
    return RatingDataModule(pd.DataFrame({"user": users.astype(str), "item": items.astype(str),
                                          "rating": values[users, items]}), split="none")


def fit(model: AlternatingLeastSquares, dm: RatingDataModule, epochs: int) -> None:
    quiet_trainer(max_epochs=epochs).fit(model, datamodule=dm)


# ---- known exact solutions ----------------------------------------------------------------------
def test_a_fully_observed_rank_one_matrix_with_biases_is_recovered_exactly() -> None:
    """R = mu + b_u + b_i + p_u q_i with no regularisation is a least-squares fit of zero error
    that rank-1 ALS with biases reaches."""
    rng = np.random.default_rng(0)
    p, q = rng.uniform(0.5, 1.5, 7), rng.uniform(0.5, 1.5, 5)
    values = 3.0 + rng.normal(0, 0.3, 7)[:, None] + rng.normal(0, 0.3, 5)[None, :] + np.outer(p, q)
    dm = full_matrix(values.astype("float32"))
    model = AlternatingLeastSquares(dm.training_data, rank=1, reg=0.0, bias_reg=0.0)
    fit(model, dm, 60)
    assert heldout_rmse(model, dm.train) < 1e-3


@pytest.mark.parametrize("solver", ["exact", "cg"])
@pytest.mark.parametrize("smoothing", [0.0, 0.4])  # weighted-lambda, smoothed weights
@pytest.mark.parametrize("k", [3, 12])  # rows longer than k + 1 (primal), shorter (dual form)
def test_one_user_half_sweep_is_the_weighted_ridge_solution(k: int, smoothing: float,
                                                           solver: str) -> None:
    """Each user's [p_u, b_u] is (Y^T Y + reg w_u D)^-1 Y^T (r - mu - b_i), solved per user by
    numpy, with D = diag(1, .., 1, bias_reg / reg) and w_u = (1 - s) n_u + s mean(n) (s = 0:
    weighted-lambda); the model's weights, the exact solve and enough CG steps all reach it."""
    frame = low_rank_ratings(30, 20, density=0.4, seed=3)
    dm = RatingDataModule(frame, split="none")
    data = dm.training_data
    reg, bias_reg = 0.2, 0.05
    gen = torch.Generator().manual_seed(1)
    q, b_i = torch.randn(data.num_items, k, generator=gen), torch.randn(data.num_items, generator=gen)
    out = torch.zeros(data.num_users, k + 1)
    weights = AlternatingLeastSquares(data, rank=3, reg_smoothing=smoothing)._row_weights(data.matrix)
    if solver == "exact":
        buckets = plan_buckets(data.matrix, torch.arange(data.num_users), k + 1)
        solve_explicit(buckets, q, b_i, data.global_mean, reg, bias_reg, out, row_weights=weights)
    else:
        solve_explicit_cg(data.matrix, 0, data.num_users, q, b_i, data.global_mean, reg, bias_reg,
                          out, 4 * (k + 1), row_weights=weights)
    dense, mask = data.matrix.dense(torch.arange(data.num_users))
    counts = mask.sum(1).double().numpy()
    expected_weights = (1 - smoothing) * counts + smoothing * counts.mean()
    y = np.hstack([q.double().numpy(), np.ones((data.num_items, 1))])
    for u in range(data.num_users):
        seen = mask[u].numpy()
        yu = y[seen]
        target = dense[u].double().numpy()[seen] - data.global_mean - b_i.double().numpy()[seen]
        penalty = np.diag([reg] * k + [bias_reg]) * expected_weights[u]
        expected = np.linalg.solve(yu.T @ yu + penalty, yu.T @ target)
        np.testing.assert_allclose(out[u].numpy(), expected, rtol=1e-3, atol=1e-4)


def test_explicit_cg_solves_only_its_rows_and_converges_to_the_exact_solve() -> None:
    """A shard start:stop is solved from its warm start, the other rows are untouched; with
    and without biases, more CG steps come closer to the exact (Cholesky/dual) solution."""
    frame = low_rank_ratings(40, 60, density=0.15, seed=4)
    data = RatingDataModule(frame, split="none").training_data
    k, n = 10, data.num_users
    gen = torch.Generator().manual_seed(3)
    q, b_i = torch.randn(data.num_items, k, generator=gen), torch.randn(data.num_items, generator=gen)
    for bias, width in ((b_i, k + 1), (None, k)):
        exact = solve_explicit(plan_buckets(data.matrix, torch.arange(n), width), q, bias,
                               data.global_mean, 0.1, 0.05, torch.zeros(n, width))
        start = torch.randn(n, width, generator=gen)
        errors = []
        for steps in (1, 5, 40):
            out = solve_explicit_cg(data.matrix, 5, 20, q, bias, data.global_mean, 0.1, 0.05,
                                    start.clone(), steps)
            torch.testing.assert_close(out[:5], start[:5])
            torch.testing.assert_close(out[20:], start[20:])
            errors.append(float((out[5:20] - exact[5:20]).abs().max()))
        assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-4, errors


def test_the_dual_form_for_short_rows_is_the_primal_solution() -> None:
    """Rows shorter than the vector width are solved as an L x L system (push-through
    identity); the answer is the d x d primal solve's, with and without biases."""
    frame = low_rank_ratings(40, 60, density=0.15, seed=4)
    data = RatingDataModule(frame, split="none").training_data
    lengths = data.matrix.row_lengths()
    k = int(lengths.median())  # some rows shorter than k + 1, some longer
    assert (lengths < k + 1).any() and (lengths > k + 1).any()
    gen = torch.Generator().manual_seed(3)
    q, b_i = torch.randn(data.num_items, k, generator=gen), torch.randn(data.num_items, generator=gen)
    for bias, width in ((b_i, k + 1), (None, k)):
        buckets = plan_buckets(data.matrix, torch.arange(data.num_users), width)
        dual = solve_explicit(buckets, q, bias, data.global_mean, 0.1, 0.05,
                              torch.zeros(data.num_users, width))
        primal = solve_explicit(buckets, q, bias, data.global_mean, 0.1, 0.05,
                                torch.zeros(data.num_users, width), allow_dual=False)
        torch.testing.assert_close(dual, primal, rtol=1e-3, atol=1e-4)


def test_implicit_half_sweep_is_the_hkv_solution_and_cg_converges_to_it() -> None:
    """x_u = (Y^T C_u Y + reg I)^-1 Y^T C_u p_u over all items, computed densely per user,
    equals the Gram-trick solve; enough CG steps reach it too."""
    frame = low_rank_ratings(25, 18, density=0.3, seed=5)
    data = RatingDataModule(frame, split="none").training_data
    k, alpha, reg = 4, 2.0, 0.3
    y = torch.randn(data.num_items, k, generator=torch.Generator().manual_seed(2))
    buckets = plan_buckets(data.matrix, torch.arange(data.num_users), k)
    exact = solve_implicit(data.matrix, y, alpha, reg, torch.zeros(data.num_users, k))
    bucketed = solve_implicit(data.matrix, y, alpha, reg, torch.zeros(data.num_users, k),
                              buckets=buckets)
    cg = solve_implicit(data.matrix, y, alpha, reg, torch.zeros(data.num_users, k), cg_steps=12)
    dense, mask = data.matrix.dense(torch.arange(data.num_users))
    yd = y.double().numpy()
    for u in range(data.num_users):
        c = 1.0 + alpha * dense[u].double().numpy()
        pref = mask[u].double().numpy()
        expected = np.linalg.solve(yd.T @ (c[:, None] * yd) + reg * np.eye(k), yd.T @ (c * pref))
        np.testing.assert_allclose(exact[u].numpy(), expected, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(bucketed, exact, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cg, exact, rtol=1e-3, atol=1e-4)


def test_implicit_half_sweep_of_a_shard_solves_only_its_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rank's slice of the rows gives those rows' solution of the whole matrix, by the
    formed systems, by buckets (what larger ranks use) and by CG on formed systems; CG
    without forming them (larger ranks) takes the same steps."""
    frame = low_rank_ratings(30, 20, density=0.3, seed=6)
    matrix = RatingDataModule(frame, split="none").training_data.matrix
    k, start, stop = 3, 11, 23
    y = torch.randn(matrix.shape[1], k, generator=torch.Generator().manual_seed(1))
    x0 = torch.randn(matrix.shape[0], k, generator=torch.Generator().manual_seed(2))
    shard = row_slice(matrix, start, stop)
    whole = solve_implicit(matrix, y, 2.0, 0.5, x0.clone())
    for kwargs in ({}, {"buckets": plan_buckets(shard, torch.arange(stop - start), k)}):
        part = solve_implicit(shard, y, 2.0, 0.5, x0[start:stop].clone(), **kwargs)
        torch.testing.assert_close(part, whole[start:stop], rtol=1e-4, atol=1e-5)
    whole_cg = solve_implicit(matrix, y, 2.0, 0.5, x0.clone(), cg_steps=2)
    part_cg = solve_implicit(shard, y, 2.0, 0.5, x0[start:stop].clone(), cg_steps=2)
    torch.testing.assert_close(part_cg, whole_cg[start:stop], rtol=1e-4, atol=1e-5)
    monkeypatch.setattr(solvers, "OUTER_MAX_RANK", 0)  # what ranks above 32 do
    assert not solvers.outer_fits(matrix.shape[1], k)
    sparse_cg = solve_implicit(shard, y, 2.0, 0.5, x0[start:stop].clone(), cg_steps=2)
    torch.testing.assert_close(sparse_cg, part_cg, rtol=1e-4, atol=1e-5)


def test_rows_without_ratings_get_zero_factors_not_nan() -> None:
    """A TrainingData whose id maps hold a user and an item without training ratings."""
    frame = low_rank_ratings(12, 10, density=0.5)
    dm = RatingDataModule(frame, split="none")
    data = dm.training_data
    keep = (data.matrix.row_ids() != 0) & (data.matrix.indices != 0)
    users, items, ratings = (t[keep] for t in data.matrix.to_coo())
    sparse = TrainingData.from_ratings(Ratings(users, items, ratings), data.user_map,
                                       data.item_map, data.rating_range)
    for kwargs in ({}, {"implicit": True}, {"implicit": True, "cg_steps": 2}, {"biases": False},
                   {"cg_steps": 2, "reg_smoothing": 0.5}):
        model = AlternatingLeastSquares(sparse, rank=3, **kwargs)
        batch = next(iter(MatrixBatches(sparse)))
        model.solve_step(batch, 0)
        model.solve_step(batch, 0)
        for name, tensor in model.state_dict().items():
            assert torch.isfinite(tensor).all(), (kwargs, name)
        assert model.user_factors[0].abs().sum() == 0 and model.item_factors[0].abs().sum() == 0
        assert model.user_bias[0] == 0 and model.item_bias[0] == 0
        assert torch.isfinite(model.score_items(torch.arange(sparse.num_users))).all()


def test_weighted_lambda_and_biases_beat_the_baseline_on_low_rank_data() -> None:
    dm = RatingDataModule(low_rank_ratings(80, 60, density=0.5), split="random", test_size=0.2)
    model = AlternatingLeastSquares(dm.training_data, rank=4, reg=0.05)
    fit(model, dm, 10)
    baseline = torch.sqrt(torch.mean((dm.test.ratings - dm.global_mean) ** 2)).item()
    assert heldout_rmse(model, dm.test) < 0.6 * baseline


def test_cg_ranks_about_as_well_as_the_exact_solve() -> None:
    dm = RatingDataModule(low_rank_ratings(80, 60, density=0.5, implicit=True), split="random",
                          test_size=0.2)
    scores = {}
    for steps in (0, 3):
        model = AlternatingLeastSquares(dm.training_data, rank=4, implicit=True, alpha=5.0,
                                        reg=0.1, cg_steps=steps)
        fit(model, dm, 10)
        scores[steps] = heldout_ndcg(model, dm)
    assert scores[3] == pytest.approx(scores[0], abs=0.03)


def test_one_epoch_is_one_sweep_and_bytes_are_logged() -> None:
    dm = RatingDataModule(low_rank_ratings(), split="none")
    model = AlternatingLeastSquares(dm.training_data, rank=2)
    trainer = quiet_trainer(max_epochs=3)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3 and model.sweep_bytes == [0, 0, 0]  # one process: no traffic
    assert "sweep_bytes" in trainer.callback_metrics


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, fragment", [
    ({"rank": 0}, r"rank=0 must be between 1 and min\(users, items\) = 30"),
    ({"rank": -2}, r"rank=-2 must be between 1"),
    ({"rank": 31}, r"rank=31 must be between 1 and min\(users, items\) = 30 \(40 users, 30 items\)"),
    ({"reg": -0.1}, r"reg >= 0 and bias_reg >= 0, got reg=-0.1"),
    ({"bias_reg": -1.0}, r"bias_reg=-1.0"),
    ({"alpha": 0.0}, r"alpha > 0 .* got alpha=0.0"),
    ({"alpha": -3.0, "implicit": True}, r"got alpha=-3.0"),
    ({"reg_smoothing": -0.1}, r"0 <= reg_smoothing <= 1, got reg_smoothing=-0.1"),
    ({"reg_smoothing": 1.5}, r"got reg_smoothing=1.5"),
])
def test_bad_hyper_parameters_are_one_line_errors(kwargs: dict, fragment: str) -> None:
    dm = RatingDataModule(low_rank_ratings(40, 30), split="none")
    with pytest.raises(ConfigError, match=fragment) as info:
        AlternatingLeastSquares(dm.training_data, **{"rank": 4, **kwargs})
    assert "\n" not in str(info.value)
