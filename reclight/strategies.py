"""Distributed strategies for models that own their communication (solvers, DSGD, ADMM).

Lightning's DDP wraps the model in ``DistributedDataParallel``, which averages the gradients of
every trainable parameter after each backward pass. That is right for plain data parallelism and
wrong for a model that exchanges what it needs itself: a closed-form solver has no gradients
(DDP refuses such a module), a stratified DSGD updates different blocks on different ranks, an
ADMM keeps rank-local copies until its consensus step.

``ddp_model_sync`` (and ``ddp_model_sync_spawn``/``_fork``) is Lightning's DDP strategy (process
launch, process group, rank bookkeeping, collectives, checkpoint and logging behaviour) without
the wrapper: the model's own ``torch.distributed`` calls (see :mod:`reclight.distributed`) do all
the exchanging. After a fit, every rank must hold the same parameters (a model's last consensus
step or all-gather makes them so; for testing, Lightning broadcasts rank 0's state).

A model declares it with ``required_strategy = "ddp_model_sync"`` (solvers do by default); when a
user asks for ``ddp``/``ddp_spawn``/``ddp_fork`` the CLI substitutes the model's strategy with the
same start method (:func:`resolve_strategy`). A model may instead stay under plain DDP and name
``rank_local_parameters`` that DDP must neither average nor broadcast.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

from reclight.errors import ConfigError

MODEL_SYNC = "ddp_model_sync"
START_METHODS = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}
_SUFFIX = {"popen": "", "spawn": "_spawn", "fork": "_fork"}


class ModelSyncDDPStrategy(DDPStrategy):
    """DDP without the ``DistributedDataParallel`` wrapper: the model exchanges tensors itself."""

    strategy_name = MODEL_SYNC

    def configure_ddp(self) -> None:
        # Deliberately no wrapping: gradient averaging is the model's business (or none of it).
        return None


def _register() -> None:
    for start_method, suffix in _SUFFIX.items():
        name = MODEL_SYNC + suffix
        if name not in StrategyRegistry:
            StrategyRegistry.register(
                name, ModelSyncDDPStrategy, start_method=start_method,
                description="DDP whose model owns its communication (no gradient averaging), "
                            f"start method '{start_method}'")


_register()


def needed_strategy(model: Any) -> str | type | None:
    """The strategy ``model`` needs on many processes: its ``required_strategy``, or
    ``ddp_model_sync`` for a solver (it has no gradients for DDP to average)."""
    declared = getattr(model, "required_strategy", None)
    if declared is None and getattr(model, "training_kind", None) == "solver":
        return MODEL_SYNC
    return declared


def _wants_processes(devices: Any, num_nodes: int) -> bool:
    if num_nodes > 1:
        return True
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1
    if isinstance(devices, str):
        if devices.strip() in ("-1", "auto"):
            return devices.strip() == "-1"
        if "," in devices:
            return len([d for d in devices.split(",") if d.strip()]) > 1
        return devices.strip().isdigit() and int(devices) > 1
    return isinstance(devices, int) and (devices > 1 or devices == -1)


def resolve_strategy(model: Any, requested: Any, devices: Any = "auto", num_nodes: int = 1) -> Any:
    """The strategy to run ``model`` with when the user asked for ``requested``.

    Models without a required strategy get ``requested`` unchanged. For a model that requires
    ``ddp_model_sync``: ``ddp``/``ddp_spawn``/``ddp_fork`` become the model-sync strategy with the
    same start method, and so does ``auto`` when more than one process is asked for. Anything
    else is a ConfigError naming the choices.
    """
    needed = needed_strategy(model)
    if needed is None or requested is None:
        return requested
    if isinstance(needed, type):  # a strategy class: an instance with its defaults
        return needed()
    if not isinstance(needed, str):  # a strategy instance: use it as given
        return needed
    if isinstance(requested, str):
        name = requested.strip()
        if name.startswith(MODEL_SYNC) or name == "single_device":
            return name
        if name in START_METHODS:
            return needed + _SUFFIX[START_METHODS[name]]
        if name == "auto":
            return needed if _wants_processes(devices, num_nodes) else "auto"
    elif isinstance(requested, ModelSyncDDPStrategy):
        return requested
    raise ConfigError(
        f"model {type(model).__name__} exchanges its own tensors and needs strategy '{needed}'; "
        f"got --trainer.strategy {requested!r}: pass ddp, ddp_spawn, ddp_fork (they become "
        f"{needed}, {needed}_spawn, {needed}_fork) or auto")


def check_strategy(model: Any, strategy: Any) -> None:
    """Fail early (before DDP wraps the model) when the Trainer's strategy cannot serve it, and
    keep DDP's hands off the model's rank-local parameters."""
    needed = needed_strategy(model)
    if isinstance(strategy, DDPStrategy) and not isinstance(strategy, ModelSyncDDPStrategy):
        if needed is not None:
            raise ConfigError(
                f"model {type(model).__name__} exchanges its own tensors and cannot run under "
                f"plain DDP; use strategy='{MODEL_SYNC}' (or _spawn/_fork), e.g. --trainer.strategy "
                "ddp on the command line, which reclight translates")
        local = list(model.rank_local_parameters())
        if local:
            from torch.nn.parallel import DistributedDataParallel

            names = dict(model.named_parameters())
            unknown = [n for n in local if n not in names]
            if unknown:
                raise ConfigError(f"rank_local_parameters names {unknown[0]!r}, which is not a "
                                  f"parameter of {type(model).__name__}; choose from "
                                  f"{', '.join(names)}")
            # torch's hook for parameters DDP must not average or broadcast. Its reducer names a
            # parameter of the root module ".name" (module name "" + "." + name) where the rest
            # of DDP says "name", so a root-level name is given both ways.
            both = [alias for n in local for alias in ((n, f".{n}") if "." not in n else (n,))]
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, both)
