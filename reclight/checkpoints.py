"""Loading reclight checkpoints: the model class comes from the registry, the id maps and the
training matrix from the checkpoint's ``reclight`` section (see RecModel.on_save_checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from reclight.errors import CheckpointError
from reclight.model import CHECKPOINT_KEY, RecModel
from reclight.registry import get_registry

HINT = "pass the .ckpt file that `reclight fit` printed (under <run dir>/checkpoints/)"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, or a CheckpointError saying why it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; {HINT}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"'{path}' is not a readable checkpoint ({type(exc).__name__}); {HINT}") from None
    if not isinstance(ckpt, dict) or not ckpt.get(CHECKPOINT_KEY) or "state_dict" not in ckpt:
        raise CheckpointError(f"'{path}' is not a reclight checkpoint (it has no '{CHECKPOINT_KEY}' "
                              f"section); {HINT}")
    return ckpt


def load_model(path: str | Path) -> RecModel:
    """Rebuild the model of a checkpoint, in eval mode on the CPU."""
    ckpt = read_checkpoint(path)
    info = ckpt[CHECKPOINT_KEY]
    name = (info.get("meta") or {}).get("model")
    if name:
        model_cls = get_registry().get(name).load()
    else:
        module, _, attr = str(info.get("class", "")).partition(":")
        try:
            model_cls = getattr(__import__(module, fromlist=[attr]), attr)
        except (ImportError, AttributeError, ValueError):
            raise CheckpointError(f"'{path}' names model class '{info.get('class')}', which is not "
                                  "installed; install the plugin that provides it") from None
    model = model_cls(**ckpt.get("hyper_parameters", {}))
    model.on_load_checkpoint(ckpt)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model
