"""Checking that a model fits in memory before its tensors are allocated.

A huge ``--model.dim`` (or a checkpoint whose hyper-parameters ask for one) would otherwise
make the allocator fail deep inside torch, or, worse, succeed under the kernel's overcommit
and push the machine into swap. :func:`check_fits` builds the model on torch's ``meta``
device first (shapes without storage, no cost), adds up its parameters and buffers, and
compares that with the memory the system has available.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from reclight.errors import ConfigError, RecLightError

# A model needs room besides its parameters: gradients, optimiser state (Adam keeps two
# moments) and activations. Refuse when the parameters alone exceed this share of memory.
USABLE_SHARE = 0.9


def available_bytes() -> int | None:
    """Memory the system can give this process now (``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def human(n: float) -> str:
    """``12.3 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"


def module_bytes(module: Any) -> int:
    """Bytes of a module's parameters and buffers (works for ``meta`` tensors too)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors if t.device.type == "meta")


def check_fits(build: Callable[[], Any], what: str, fix: str) -> None:
    """Build ``build()`` on the meta device and raise :class:`ConfigError` if its tensors
    would not fit in the available memory. A model that cannot be built on the meta device
    (an ``__init__`` that reads tensor values) is let through: the real build then reports."""
    import torch

    try:
        with torch.device("meta"):
            module = build()
    except RecLightError:
        raise
    except Exception:  # noqa: BLE001 - a meta build is an estimate, never required
        return
    need = module_bytes(module)
    have = available_bytes()
    if have is not None and need > USABLE_SHARE * have:
        raise ConfigError(f"{what} needs {human(need)} for its parameters alone, but only "
                          f"{human(have)} of memory is available; {fix}")
