"""Collectives for models that own their communication, with the bytes they move counted.

Thin wrappers over ``torch.distributed`` inside the process group the Lightning strategy set
up (no launcher or transport of our own). Outside a distributed run they are identities, so a
model's code is the same on one process and on many. ``bytes`` counts the payload this rank
hands to collectives (the tensors' sizes), the quantity a communication-avoiding algorithm
(DSGD strata, ADMM consensus, ALS factor exchange) is compared by.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class Exchange:
    """All-reduce and all-gather on this process group, counting payload bytes."""

    def __init__(self) -> None:
        self.bytes = 0

    @property
    def world_size(self) -> int:
        return dist.get_world_size() if _active() else 1

    @property
    def rank(self) -> int:
        return dist.get_rank() if _active() else 0

    def _count(self, tensor: Tensor) -> None:
        self.bytes += tensor.numel() * tensor.element_size()

    def all_reduce(self, tensor: Tensor, op: str = "sum") -> Tensor:
        """``tensor`` summed (``op="sum"``) or averaged (``"mean"``) over ranks, in place."""
        if op not in ("sum", "mean"):
            raise ValueError(f"op {op!r}: choose sum or mean")
        if not _active():
            return tensor
        self._count(tensor)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        if op == "mean":
            tensor /= self.world_size
        return tensor

    def all_gather(self, tensor: Tensor) -> Tensor:
        """Every rank's ``tensor`` concatenated along dimension 0 in rank order; the first
        dimension may differ between ranks (e.g. contiguous shards of rows)."""
        if not _active():
            return tensor
        self._count(tensor)
        sizes = torch.tensor([tensor.shape[0]], device=tensor.device)
        all_sizes = [torch.zeros_like(sizes) for _ in range(self.world_size)]
        dist.all_gather(all_sizes, sizes)
        counts = [int(s) for s in all_sizes]
        longest = max(counts)
        padded = tensor
        if tensor.shape[0] < longest:  # all_gather needs equal shapes: pad, then trim
            pad = tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))
            padded = torch.cat([tensor, pad])
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:n] for p, n in zip(parts, counts)])

    def take_bytes(self) -> int:
        """The bytes counted since the last call (e.g. per sweep), resetting the count."""
        value, self.bytes = self.bytes, 0
        return value
