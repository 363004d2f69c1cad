"""The shared multi-step schedule helpers of model plugins."""

from __future__ import annotations

import pytest
import torch

from reclight.errors import ConfigError
from reclight.schedules import check_gamma, parse_milestones, with_multistep


@pytest.mark.parametrize("value, epochs", [
    ("30,40", [30, 40]), ("[40, 30]", [30, 40]), (" 5 ", [5]), ("", []), ([12, 3], [3, 12]), ((), []),
])
def test_milestones_parse_from_strings_and_lists(value: object, epochs: list[int]) -> None:
    assert parse_milestones(value) == epochs  # type: ignore[arg-type]


@pytest.mark.parametrize("value, fragment", [
    ("3,x", r"milestones '3,x' must be epochs separated by commas, e.g. --model.milestones"),
    ("0,5", r"milestones \[0, 5\] must be epochs >= 1"),
    ([None], "must be epochs separated by commas"),
])
def test_bad_milestones_are_one_line_errors(value: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        parse_milestones(value)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.01])
def test_gamma_outside_zero_one_is_refused(gamma: float) -> None:
    with pytest.raises(ConfigError, match=rf"gamma={gamma} must be in \(0, 1\] \(--model.gamma\)"):
        check_gamma(gamma)


def test_no_milestones_means_the_bare_optimiser() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert with_multistep(opt, [], 0.5) is opt


def test_milestones_multiply_the_rate_by_gamma_after_each() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = with_multistep(opt, [1, 3], 0.5)["lr_scheduler"]  # type: ignore[index]
    rates = []
    for _ in range(4):
        opt.step()
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates == pytest.approx([0.5, 0.5, 0.25, 0.25])
