"""The optimisation steps of the two training kinds Lightning does not step by itself.

*manual* (opt-in, for models that take extra optimiser steps from the step hook point, such as
dense re-feeding): :func:`optimization_step` takes one synchronised step, and
:func:`step_schedulers` steps the schedulers ``configure_optimizers`` returned the way Lightning
does under automatic optimisation (their ``interval``, ``frequency`` and ``monitor``).

*solver* (no gradients): :func:`solver_step` runs one closed-form solve as a step of the
optimiser Lightning stands in when ``configure_optimizers`` returns None, so that it counts in
``trainer.global_step`` and checkpointing, logging and step limits behave as for any model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from reclight.errors import ConfigError


def _as_list(obj: Any) -> list[Any]:
    if obj is None:
        return []
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def optimization_step(model: Any, loss_fn: Callable[[], Tensor]) -> Tensor:
    """One optimiser step on ``loss_fn()`` for every optimiser; returns the detached loss.

    Every step goes through ``manual_backward``, for which Lightning prepares DDP's gradient
    averaging, so further steps stay synchronised across ranks (tested with two processes).
    A single optimiser is stepped with a closure, which L-BFGS needs.
    """
    if model.automatic_optimization:
        raise ConfigError(f"{type(model).__name__} takes extra optimiser steps but uses "
                          "automatic optimisation; set training_kind = 'manual' on the model")
    optimizers = _as_list(model.optimizers())
    if len(optimizers) == 1:
        opt = optimizers[0]
        holder: list[Tensor] = []

        def closure() -> Tensor:
            opt.zero_grad()
            loss = loss_fn()
            model.manual_backward(loss)
            holder.append(loss.detach())
            return loss

        opt.step(closure=closure)
        return holder[0]
    for opt in optimizers:
        opt.zero_grad()
    loss = loss_fn()
    model.manual_backward(loss)
    for opt in optimizers:
        opt.step()
    return loss.detach()


def step_schedulers(model: Any, interval: str, batch_idx: int = 0) -> None:
    """Step the schedulers whose ``interval`` is ``interval`` ("step" after training batch
    ``batch_idx``, "epoch" after every epoch) when their ``frequency`` is due, passing the
    ``monitor`` metric to ReduceLROnPlateau; as Lightning does for automatic optimisation
    (which counts "step" frequencies by the batch index within the epoch)."""
    trainer = model.trainer
    index = (batch_idx if interval == "step" else trainer.current_epoch) + 1
    for config in trainer.lr_scheduler_configs:
        if config.interval != interval or index % config.frequency != 0:
            continue
        if config.reduce_on_plateau:
            value = trainer.callback_metrics.get(config.monitor)
            if value is None:
                if config.strict:
                    available = ", ".join(sorted(trainer.callback_metrics)) or "none"
                    raise ConfigError(f"the learning-rate schedule monitors '{config.monitor}', "
                                      f"which was not logged (logged: {available}); monitor one "
                                      "of those or add a validation set (--data.val_size)")
                continue
            config.scheduler.step(value.float() if isinstance(value, Tensor) else value)
        else:
            config.scheduler.step()


def solver_step(model: Any, solve: Callable[[], Any]) -> Any:
    """Run ``solve()`` as one counted training step; returns what it returned."""
    holder: list[Any] = []
    optimizer = model.optimizers()
    with torch.no_grad():
        optimizer.step(closure=lambda: holder.append(solve()))
    return holder[0] if holder else None
