"""Negative sampling: unobserved items for users, drawn in bulk on tensors.

Pair models trained for ranking (BPR, Rendle et al., UAI 2009) and CDAE's optional sampled
loss (Wu et al., WSDM 2016) contrast each training interaction with items the user never
interacted with. Sampling is uniform over the catalogue or weighted by training popularity
(counts raised to ``exponent``), and never returns a training positive: candidates are drawn
for the whole batch at once, checked against the sorted (user, item) keys of the training
matrix with one ``searchsorted``, and only the rejected ones are drawn again. The few that keep
hitting positives (users who interacted with almost every item) are drawn exactly from their
row's complement.
"""

from __future__ import annotations

import torch
from torch import Tensor

from reclight.data.sparse import SparseRows
from reclight.errors import DataError

SAMPLING = ("uniform", "popularity")
# Rejection rounds before the remaining draws are taken from each row's exact complement.
_ROUNDS = 20


def check_negative_options(num_negatives: int, sampling: str, exponent: float = 1.0) -> None:
    """DataError (one line) for settings the sampler cannot serve."""
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1:
        raise DataError(f"num_negatives={num_negatives!r} must be an integer >= 1 (unobserved "
                        "items sampled per training interaction), e.g. num_negatives=1")
    if sampling not in SAMPLING:
        raise DataError(f"negative sampling '{sampling}' is unknown; choose one of "
                        f"{', '.join(SAMPLING)}")
    if not exponent >= 0:
        raise DataError(f"popularity exponent {exponent!r} must be >= 0 (1: by counts, "
                        "0: uniform)")


class NegativeSampler:
    """Draws items a user did not interact with in ``matrix`` (users x items, CSR).

    Args:
        matrix: the training matrix; its entries are the positives.
        sampling: "uniform" over all items, or "popularity": proportional to
            (training count)^``exponent``.
        exponent: popularity exponent (word2vec's 0.75 flattens it; 1 is plain counts).
    """

    def __init__(self, matrix: SparseRows, sampling: str = "uniform",
                 exponent: float = 1.0) -> None:
        check_negative_options(1, sampling, exponent)
        self.matrix = matrix
        self.num_items = matrix.shape[1]
        self.sampling = sampling
        rows = matrix.row_ids()
        # Columns are sorted within each row, so the keys are sorted as a whole.
        self.keys = rows * self.num_items + matrix.indices
        counts = torch.bincount(matrix.indices, minlength=self.num_items).double()
        self.cdf: Tensor | None = None
        if sampling == "popularity":
            weights = counts.pow(exponent) if exponent > 0 else torch.ones_like(counts)
            weights = torch.where(counts > 0, weights, torch.zeros_like(weights))
            cdf = torch.cumsum(weights, 0)
            self.cdf = cdf / cdf[-1]
            self.weights = weights
        # A user can get a negative when some item with positive weight is not among theirs.
        lengths = matrix.row_lengths()
        if sampling == "popularity":
            self.available = lengths < int((self.weights > 0).sum())
        else:
            self.available = lengths < self.num_items

    def _draw(self, n: int, generator: torch.Generator | None) -> Tensor:
        if self.cdf is None:
            return torch.randint(self.num_items, (n,), generator=generator)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.searchsorted(self.cdf, u, right=True).clamp_max(self.num_items - 1)

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """bool mask: (users[k], items[k]) is a training interaction."""
        keys = users * self.num_items + items
        if len(self.keys) == 0:
            return torch.zeros_like(keys, dtype=torch.bool)
        at = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
        return self.keys[at] == keys

    def sample(self, users: Tensor, num: int, generator: torch.Generator | None = None) -> Tensor:
        """int64 [len(users), num] items none of which the row's user interacted with.

        Every user must have an unobserved item (``available[users]``); DataError otherwise.
        """
        users = users.to(torch.int64).cpu()
        if len(users) and not bool(self.available[users].all()):
            bad = int(users[~self.available[users]][0])
            raise DataError(f"user index {bad} interacted with every item that can be sampled; "
                            "it has no negative item (leave such users out of the view)")
        flat_users = users.repeat_interleave(num)
        items = self._draw(len(flat_users), generator)
        todo = torch.nonzero(self.is_positive(flat_users, items)).flatten()
        for _ in range(_ROUNDS):
            if len(todo) == 0:
                break
            items[todo] = self._draw(len(todo), generator)
            todo = todo[self.is_positive(flat_users[todo], items[todo])]
        if len(todo):
            items[todo] = self._exact(flat_users[todo], generator)
        return items.view(len(users), num)

    def _exact(self, users: Tensor, generator: torch.Generator | None) -> Tensor:
        """One draw per entry from the exact complement of its user's row (dense, for the
        few draws rejection did not settle)."""
        _, seen = self.matrix.dense(users)
        weights = (self.weights if self.cdf is not None else torch.ones(self.num_items)).float()
        weights = weights.expand(len(users), -1).masked_fill(seen, 0.0)
        return torch.multinomial(weights, 1, generator=generator).flatten()
