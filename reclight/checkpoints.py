"""Loading reclight checkpoints without running anything the file names.

What loading trusts: the model's class must be one the plugin registry knows (the file's
``reclight`` section names it; an unregistered class is refused, never imported); the file is
read with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only, no pickled
objects); the model is rebuilt by Lightning's ``load_from_checkpoint`` from the file's
hyper-parameters and training data (see ``RecModel.on_save_checkpoint``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch

from reclight.errors import CheckpointError, RecLightError
from reclight.model import _INSTANTIATOR_KEYS, CHECKPOINT_FORMAT, CHECKPOINT_KEY, RecModel
from reclight.registry import get_registry

HINT = "pass the .ckpt file that `reclight fit` printed (under <run dir>/checkpoints/)"


def read_checkpoint(path: str | Path, mmap: bool = True) -> dict[str, Any]:
    """The checkpoint dict (tensors memory-mapped, not read, unless ``mmap=False``), or a
    CheckpointError saying why it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; {HINT}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(f"'{path}' holds pickled objects that a checkpoint loaded with "
                                  "weights_only=True may not contain; reclight refuses to run "
                                  f"them ({reason[:120]})") from None
        raise CheckpointError(f"'{path}' is not a readable checkpoint ({type(exc).__name__}); "
                              f"{HINT}") from None
    info = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"'{path}' is not a reclight checkpoint (it has no '{CHECKPOINT_KEY}' "
                              f"section); {HINT}")
    if info.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"'{path}' was written by another reclight version (checkpoint "
                              f"format {info.get('format')!r}, this one reads {CHECKPOINT_FORMAT}); "
                              "fit the model again with this version")
    return ckpt


def registered_class(target: str) -> tuple[str, type[RecModel]]:
    """The registered name and class whose target is ``"module:Class"``; CheckpointError if no
    installed plugin registers it (the class is then never imported) or if what is registered
    there is not a :class:`RecModel` subclass."""
    registry = get_registry()
    for spec in registry.specs.values():
        if spec.target == target:
            cls = spec.load()
            if not (isinstance(cls, type) and issubclass(cls, RecModel)):
                raise CheckpointError(f"the checkpoint's model class '{target}' (model "
                                      f"'{spec.name}' of {spec.source}) is not a reclight "
                                      "RecModel; reclight only builds RecModel subclasses")
            return spec.name, cls
    raise CheckpointError(f"the checkpoint's model class '{target}' is not registered by any "
                          "installed plugin; install the plugin that provides it (see `reclight "
                          "models`)")


def checked_hyper_parameters(path: str | Path, ckpt: dict[str, Any], name: str,
                             model_cls: type[RecModel]) -> dict[str, Any]:
    """The checkpoint's hyper-parameters after checking that nothing in them would run code
    or allocate more memory than there is, and that each has the type the class declares.

    Lightning's ``load_from_checkpoint`` honours an ``_instantiator`` key (a callable named by
    the file, allow-listed since Lightning 2.6): reclight never writes one, so its presence
    means the file was edited and it is refused. Every hyper-parameter is parsed against the
    class's ``__init__`` signature by jsonargparse (what ``reclight fit`` parses flags with);
    names the class does not take are ignored, as Lightning ignores them.
    """
    from jsonargparse import ArgumentParser

    from reclight.data.training import TrainingData
    from reclight.memory import check_fits

    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, dict):
        raise CheckpointError(f"'{path}' has no hyper-parameters for model '{name}'; {HINT}")
    planted = sorted(k for k in _INSTANTIATOR_KEYS if k in hparams)
    if planted:
        raise CheckpointError(f"'{path}' names an instantiator ({', '.join(planted)}) that "
                              "reclight never writes; the file was altered and is refused")
    if "data" not in hparams:
        raise CheckpointError(f"'{path}' holds no training data for model '{name}'; {HINT}")
    try:
        data = TrainingData.coerce(hparams["data"])
        _check_data(data)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed piece of the stored data
        raise CheckpointError(f"'{path}' holds training data that cannot be read "
                              f"({_reason(exc)}); {HINT}") from None
    accepted = set(inspect.signature(model_cls.__init__).parameters) - {"self", "data"}
    given = {k: v for k, v in hparams.items() if k in accepted}
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(model_cls, "model", skip={"data"}, fail_untyped=False)
    try:
        parser.parse_object({"model": given})
    except Exception as exc:  # noqa: BLE001 - jsonargparse's ArgumentError, or a type's own
        raise CheckpointError(f"'{path}' has hyper-parameters that model '{name}' does not "
                              f"accept ({_reason(exc)}); fit again with this plugin") from None
    check_fits(lambda: model_cls(data=data, **given), f"the model '{name}' in '{path}'",
               "its hyper-parameters are not those of a model fitted here; fit it again")
    return given


def _check_data(data: Any) -> None:
    """Raise ValueError unless the stored training data is self-consistent (CSR arrays within
    the id maps' sizes, one bias per user and per item), so no index can go out of bounds."""
    import torch

    matrix, users, items = data.matrix, data.num_users, data.num_items
    if matrix.shape != (users, items):
        raise ValueError(f"matrix shape {matrix.shape} but {users} user and {items} item ids")
    indptr = matrix.indptr
    if int(indptr[0]) != 0 or int(indptr[-1]) != matrix.nnz or bool((indptr[1:] < indptr[:-1]).any()):
        raise ValueError("the CSR row pointers are not a non-decreasing 0..nnz sequence")
    if matrix.nnz and (int(matrix.indices.min()) < 0 or int(matrix.indices.max()) >= items):
        raise ValueError("item indices outside the item map")
    if data.user_bias.shape != (users,) or data.item_bias.shape != (items,):
        raise ValueError("fallback biases do not match the id maps")
    if not (torch.isfinite(matrix.values).all() and torch.isfinite(data.user_bias).all()
            and torch.isfinite(data.item_bias).all()):
        raise ValueError("non-finite ratings or biases")


def _reason(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text or type(exc).__name__)[:200]


def load_model(path: str | Path) -> RecModel:
    """Rebuild the model of a checkpoint, in eval mode on the CPU."""
    ckpt = read_checkpoint(path)
    info = ckpt[CHECKPOINT_KEY]
    name, model_cls = registered_class(str(info.get("class", "")))
    checked_hyper_parameters(path, ckpt, name, model_cls)
    try:
        model = model_cls.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except RecLightError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"'{path}' cannot rebuild model '{name}' ({_reason(exc)[:160]}); "
                              "it was written by another version of the plugin: fit again") from None
    model.registered_name = name
    return model.eval()


def every_epoch_checkpoint(every: int, monitor: str | None, mode: str = "min") -> Any:
    """A ModelCheckpoint that writes ``last.ckpt`` every ``every`` epochs (and keeps the best
    epoch by ``monitor`` when there is one), so a killed run loses at most ``every`` epochs."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    class EveryEpochLast(ModelCheckpoint):
        # Lightning 2.6 writes last.ckpt only in an epoch that also wrote a top-k file: never
        # with save_top_k=0 (no validation set) and not in epochs that do not improve the
        # monitor. A resumable run needs it every epoch, so it is saved here when Lightning
        # did not (the same private helpers Lightning's own hooks call).
        def _save_last_each_epoch(self, trainer: Any) -> None:
            if (self._should_skip_saving_checkpoint(trainer)
                    or (trainer.current_epoch + 1) % every != 0
                    or self._last_global_step_saved == trainer.global_step):
                return
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            super().on_train_epoch_end(trainer, pl_module)
            if self._should_save_on_train_epoch_end(trainer):
                self._save_last_each_epoch(trainer)

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            super().on_validation_end(trainer, pl_module)
            if not self._should_save_on_train_epoch_end(trainer):
                self._save_last_each_epoch(trainer)

    best = {"monitor": monitor, "mode": mode} if monitor else {"save_top_k": 0}
    return EveryEpochLast(save_last=True, every_n_epochs=every, **best)
