"""Loading reclight checkpoints without running anything the file names.

What loading trusts: the model's class must be one the plugin registry knows (the file's
``reclight`` section names it; an unregistered class is refused, never imported); the file is
read with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only, no pickled
objects); the model is rebuilt by Lightning's ``load_from_checkpoint`` from the file's
hyper-parameters and training data (see ``RecModel.on_save_checkpoint``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from reclight.errors import CheckpointError
from reclight.model import CHECKPOINT_FORMAT, CHECKPOINT_KEY, RecModel
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
    installed plugin registers it (the class is then never imported)."""
    registry = get_registry()
    for spec in registry.specs.values():
        if spec.target == target:
            return spec.name, spec.load()
    raise CheckpointError(f"the checkpoint's model class '{target}' is not registered by any "
                          "installed plugin; install the plugin that provides it (see `reclight "
                          "models`)")


def load_model(path: str | Path) -> RecModel:
    """Rebuild the model of a checkpoint, in eval mode on the CPU."""
    info = read_checkpoint(path)[CHECKPOINT_KEY]
    name, model_cls = registered_class(str(info.get("class", "")))
    try:
        model = model_cls.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"'{path}' cannot rebuild model '{name}' ({reason[:160]}); it was "
                              "written by another version of the plugin: fit again") from None
    model.registered_name = name
    return model.eval()
