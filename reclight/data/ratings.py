"""Ratings: one set of (user, item, rating[, timestamp]) triples as index tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Ratings:
    """Aligned tensors: ``users``/``items`` int64 indices (-1 for ids unseen in training),
    ``ratings`` float32 (1.0 for every interaction of an implicit log) and ``timestamps`` int64
    (None when the source has none)."""

    users: Tensor
    items: Tensor
    ratings: Tensor
    timestamps: Tensor | None = None

    def __len__(self) -> int:
        return len(self.ratings)

    def known(self) -> Tensor:
        """bool [n]: both the user and the item were seen in training."""
        return (self.users >= 0) & (self.items >= 0)

    def select(self, positions: Tensor) -> Ratings:
        """The ratings at ``positions`` (an index tensor or bool mask)."""
        ts = None if self.timestamps is None else self.timestamps[positions]
        return Ratings(self.users[positions], self.items[positions], self.ratings[positions], ts)

    @classmethod
    def empty(cls) -> Ratings:
        """No ratings."""
        z = torch.zeros(0, dtype=torch.int64)
        return cls(z, z.clone(), torch.zeros(0, dtype=torch.float32), None)
