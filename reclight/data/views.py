"""Batch iterables for each data view, sharded for DDP.

Every dataset is an ``IterableDataset`` with ``__len__`` (batches per epoch), meant for
``DataLoader(ds, batch_size=None, num_workers=0)``. Batches are bulk slices of tensors,
never one ``__getitem__`` per rating.

Sharding: training datasets give every rank the same number of batches (a rank gets
``n // world_size`` items of a fresh seeded permutation each epoch; the few left over are
skipped for that epoch only), because DDP ranks must step together. Evaluation datasets
split their items into contiguous ranges without padding or duplicates, so summed metrics
are exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import IterableDataset

from reclight.data.ratings import Ratings
from reclight.data.sparse import SparseRows
from reclight.errors import DataError

VIEWS = ("pairs", "user_rows", "item_rows", "implicit_user_rows", "matrix")
Batch = dict[str, Tensor]


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous [start, stop) of ``n`` items for ``rank``: sizes differ by at most one."""
    return n * rank // world_size, n * (rank + 1) // world_size


class _Batches(IterableDataset):
    """Shared ordering, sharding and batching over ``n`` items; subclasses build batches."""

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__()
        if batch_size < 1:
            raise DataError(f"batch size {batch_size} must be >= 1; pass a positive batch_size")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` next (it otherwise advances once per iteration)."""
        self.epoch = epoch

    def shard_size(self) -> int:
        """Items this rank iterates per epoch."""
        if self.shuffle:
            return self.n // self.world_size
        start, stop = shard_range(self.n, self.rank, self.world_size)
        return stop - start

    def __len__(self) -> int:
        return -(-self.shard_size() // self.batch_size)

    def positions(self) -> Tensor:
        """This rank's item positions for the next epoch (advances the epoch when shuffling)."""
        if not self.shuffle:
            return torch.arange(*shard_range(self.n, self.rank, self.world_size))
        # Same seed and epoch on every rank: the same permutation, cut into disjoint shares.
        # SeedSequence keeps (seed, epoch) streams apart (seed 1 epoch 0 != seed 0 epoch 1).
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0]
        gen = torch.Generator().manual_seed(int(state) >> 1)
        self.epoch += 1
        share = self.n // self.world_size
        return torch.randperm(self.n, generator=gen)[self.rank * share:(self.rank + 1) * share]

    def __iter__(self) -> Iterator[Batch]:
        # Not a generator function: the epoch advances when iteration starts, not at the
        # first next(), so len() and the order never disagree.
        return self._batches(self.positions())

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        raise NotImplementedError


class PairBatches(_Batches):
    """``{"users": int64[B], "items": int64[B], "ratings": float32[B]}`` batches of triples.

    Training (``shuffle=True``) permutes the triples once per epoch and slices the result;
    evaluation keeps the order, including pairs whose user or item is -1 (unseen).
    """

    def __init__(self, ratings: Ratings, batch_size: int, *, shuffle: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(len(ratings), batch_size, shuffle=shuffle, seed=seed, rank=rank,
                         world_size=world_size)
        self.ratings = ratings

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        r = self.ratings
        if self.shuffle:  # one gather per epoch, then zero-copy slices
            users, items, ratings = r.users[positions], r.items[positions], r.ratings[positions]
        else:
            start, stop = (int(positions[0]), int(positions[-1]) + 1) if len(positions) else (0, 0)
            users, items, ratings = r.users[start:stop], r.items[start:stop], r.ratings[start:stop]
        for s in range(0, len(users), self.batch_size):
            e = s + self.batch_size
            yield {"users": users[s:e], "items": items[s:e], "ratings": ratings[s:e]}


class RowBatches(_Batches):
    """Densified sparse rows: ``{"rows": int64[B], "values": float32[B, ncols],
    "mask": bool[B, ncols]}``; with ``implicit`` the values are the 0/1 mask as float32.

    ``rows`` lists the row indices to iterate (e.g. users with training ratings).
    """

    def __init__(self, matrix: SparseRows, rows: Tensor, batch_size: int, *, shuffle: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1, implicit: bool = False) -> None:
        super().__init__(len(rows), batch_size, shuffle=shuffle, seed=seed, rank=rank,
                         world_size=world_size)
        self.matrix, self.rows, self.implicit = matrix, rows, implicit

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        rows = self.rows[positions]
        for s in range(0, len(rows), self.batch_size):
            batch_rows = rows[s:s + self.batch_size]
            values, mask = self.matrix.dense(batch_rows)
            if self.implicit:
                values = mask.float()
            yield {"rows": batch_rows, "values": values, "mask": mask}


class TopNBatches(_Batches):
    """Top-N evaluation: ``{"users": int64[B], "targets": bool[B, num_items]}`` where targets
    mark each user's held-out items (all held-out ratings count as relevant)."""

    def __init__(self, targets: SparseRows, users: Tensor, batch_size: int, *, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(len(users), batch_size, shuffle=False, rank=rank, world_size=world_size)
        self.targets, self.users = targets, users

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        users = self.users[positions]
        for s in range(0, len(users), self.batch_size):
            batch_users = users[s:s + self.batch_size]
            yield {"users": batch_users, "targets": self.targets.dense(batch_users)[1]}


class MatrixBatches(IterableDataset):
    """The whole training matrix as one batch per epoch, for ALS-style solvers.

    Every rank gets all training ratings, ``{"users", "items", "ratings"}`` sorted by user
    then item, because solving a user (item) needs all of its ratings. The keys
    ``shard_users``/``shard_items`` (int64) name the users and items this rank solves
    (strided: index % world_size == rank), so ranks share factors, not Gram matrices.
    """

    def __init__(self, matrix: SparseRows, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.matrix, self.rank, self.world_size = matrix, rank, world_size

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Batch]:
        users, items, ratings = self.matrix.to_coo()
        num_users, num_items = self.matrix.shape
        yield {"users": users, "items": items, "ratings": ratings,
               "shard_users": torch.arange(self.rank, num_users, self.world_size),
               "shard_items": torch.arange(self.rank, num_items, self.world_size)}
