"""Multi-step learning-rate schedules for model plugins: the rate is multiplied by ``gamma``
after each milestone epoch (torch's ``MultiStepLR``). The schedule has Lightning's default
interval, "epoch" (Lightning steps it under automatic optimisation, the core under the manual
kind, :func:`reclight.optimization.step_schedulers`), so milestones count epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from reclight.errors import ConfigError


def parse_milestones(value: Sequence[int] | str, flag: str = "--model.milestones") -> list[int]:
    """Sorted milestone epochs from ``"30,40"``, ``"[30, 40]"``, ``""`` (none) or a list."""
    if isinstance(value, str):
        parts: Sequence[Any] = [p.strip() for p in value.strip().strip("[]()").split(",") if p.strip()]
    else:
        parts = list(value)
    try:
        epochs = sorted(int(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"milestones '{value}' must be epochs separated by commas, "
                          f"e.g. {flag} 24,36,48") from None
    if any(e < 1 for e in epochs):
        raise ConfigError(f"milestones {epochs} must be epochs >= 1 ({flag})")
    return epochs


def check_gamma(gamma: float, flag: str = "--model.gamma") -> float:
    """``gamma`` if it is a rate factor in (0, 1], else ConfigError."""
    if not 0.0 < gamma <= 1.0:
        raise ConfigError(f"gamma={gamma} must be in (0, 1] ({flag}); 1 keeps the rate constant")
    return float(gamma)


def with_multistep(optimizer: torch.optim.Optimizer, milestones: Sequence[int],
                   gamma: float) -> torch.optim.Optimizer | dict[str, Any]:
    """What ``configure_optimizers`` returns: the optimiser alone when there are no milestones,
    else the optimiser with a ``MultiStepLR`` schedule."""
    if not milestones:
        return optimizer
    sched = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma=gamma)
    return {"optimizer": optimizer, "lr_scheduler": sched}
