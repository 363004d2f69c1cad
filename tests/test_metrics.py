"""Metrics: exact rating errors, top-N metrics against a plain-Python reference, losses."""

from __future__ import annotations

import math

import pytest
import torch

from reclight.fallback import baseline_biases
from reclight.losses import masked_mse
from reclight.errors import ConfigError
from reclight.metrics import RatingErrors, TopNMetrics, parse_ks, topn_at, topn_per_user


def reference_topn(scores: list[float], relevant: set[int], k: int) -> dict[str, float]:
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
    hits = [1.0 if i in relevant else 0.0 for i in ranked]
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(relevant), k)))
    precisions = [sum(hits[: r + 1]) / (r + 1) for r in range(len(hits))]
    ap = sum(p * h for p, h in zip(precisions, hits)) / min(len(relevant), k)
    first = next((r + 1 for r, h in enumerate(hits) if h), None)
    return {"ndcg": dcg / idcg, "recall": sum(hits) / len(relevant), "precision": sum(hits) / k,
            "hit": float(sum(hits) > 0), "map": ap, "mrr": 1.0 / first if first else 0.0}


def test_topn_matches_reference_definitions() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(20, 50, generator=gen)
    targets = torch.rand(20, 50, generator=gen) < 0.15
    targets[:, 0] = True  # every user has at least one relevant item
    got = topn_per_user(scores, targets, 10)
    for u in range(20):
        ref = reference_topn(scores[u].tolist(), set(torch.nonzero(targets[u]).flatten().tolist()), 10)
        for name, value in ref.items():
            assert got[name][u].item() == pytest.approx(value, abs=1e-9), name


def test_several_cut_offs_from_one_ranking_equal_separate_rankings() -> None:
    gen = torch.Generator().manual_seed(1)
    scores = torch.rand(15, 40, generator=gen)
    targets = torch.rand(15, 40, generator=gen) < 0.2
    together = topn_at(scores, targets, [3, 10, 20])
    for k in (3, 10, 20):
        alone = topn_per_user(scores, targets, k)
        for name, values in alone.items():
            torch.testing.assert_close(together[k][name], values)


def test_topn_metric_logs_every_cut_off() -> None:
    metric = TopNMetrics([1, 2])
    metric.update(torch.tensor([[3.0, 2.0, 1.0]]), torch.tensor([[False, True, False]]))
    result = metric.compute()
    assert result["hit@1"].item() == 0.0 and result["hit@2"].item() == 1.0
    assert result["mrr@2"].item() == pytest.approx(0.5) and result["mrr@1"].item() == 0.0


@pytest.mark.parametrize("value, expected", [(10, (10,)), ("5,10,20", (5, 10, 20)),
                                             ("[20, 5]", (5, 20)), ([10, 10, 3], (3, 10))])
def test_cut_offs_parse_from_flags_and_lists(value, expected) -> None:
    assert parse_ks(value) == expected


@pytest.mark.parametrize("value", ["", "0", "5,x", [-1]])
def test_bad_cut_offs_are_one_line_errors(value) -> None:
    with pytest.raises(ConfigError, match="cut-offs") as info:
        parse_ks(value)
    assert "\n" not in str(info.value)


def test_topn_metric_averages_over_users_across_updates() -> None:
    metric = TopNMetrics(2)
    scores = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    targets = torch.tensor([[True, False, False], [True, False, False]])
    metric.update(scores[:1], targets[:1])
    metric.update(scores[1:], targets[1:])
    result = metric.compute()
    assert result["hit@2"].item() == pytest.approx(0.5)
    assert result["precision@2"].item() == pytest.approx(0.25)
    assert int(result["users"]) == 2


def test_rating_errors_are_exact_sums_not_means_of_batch_means() -> None:
    metric = RatingErrors()
    metric.update(torch.tensor([1.0]), torch.tensor([3.0]))  # a batch of one
    metric.update(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, 1.0, 1.0]))  # a batch of three
    result = metric.compute()
    assert result["rmse"].item() == pytest.approx(math.sqrt(4 / 4))
    assert result["mae"].item() == pytest.approx(2 / 4)
    assert int(result["count"]) == 4


def test_masked_mse_counts_observed_entries_only() -> None:
    pred = torch.tensor([[1.0, 100.0], [2.0, 3.0]])
    target = torch.tensor([[2.0, 0.0], [2.0, 5.0]])
    mask = torch.tensor([[True, False], [True, True]])
    assert masked_mse(pred, target, mask).item() == pytest.approx((1 + 0 + 4) / 3)
    assert masked_mse(pred, target, torch.zeros_like(mask)).item() == 0.0


def test_baseline_biases_shrink_towards_zero() -> None:
    users = torch.tensor([0, 0, 1])
    items = torch.tensor([0, 1, 0])
    ratings = torch.tensor([5.0, 5.0, 1.0])
    b_u, b_i = baseline_biases(users, items, ratings, 3, 2, mean=3.0)
    assert b_i[0].item() == pytest.approx((2 - 2) / (25 + 2))
    assert b_i[1].item() == pytest.approx(2 / 26)
    assert b_u[2].item() == 0.0  # no ratings: no bias
    assert b_u[0].item() > 0 > b_u[1].item()
