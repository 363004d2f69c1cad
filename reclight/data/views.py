"""Data views: how training data become batches, an open registry keyed by name.

A model names the view it trains on (``input_kind``) and may pass options (``view_options``);
the DataModule builds that view's batches with :func:`build_view`. A plugin adds a view with
:func:`register_view` (at import of its model module), without editing the core.

Every view is an iterable with ``__len__`` (batches per epoch) that Lightning consumes as its
dataloader directly: batches are bulk slices of tensors, never one ``__getitem__`` per rating,
and there is no DataLoader around them (no worker processes to configure, no sampler to turn
off). Sharding under DDP:

- shuffled (training, the default): every epoch one seeded permutation, the same on every rank,
  is cut into ``n // world_size`` items per rank (the few left over are skipped for that epoch
  only), so every rank takes the same number of steps;
- fixed (training, ``fixed_shards=True`` in the view options): rank r always gets the same
  contiguous shard (``shard_range``), reshuffled within the shard each epoch, cut into the same
  number of batches on every rank, as many as the smallest shard needs at ``batch_size`` (so a
  batch of a larger shard may hold a few items more); for models that keep rank-local state,
  e.g. DSGD strata;
- ordered (evaluation): contiguous ranges without padding or duplicates, so summed metrics are
  exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from reclight.data.negatives import NegativeSampler, check_negative_options
from reclight.data.ratings import Ratings
from reclight.data.sparse import SparseRows
from reclight.errors import DataError

if TYPE_CHECKING:
    from reclight.data.training import TrainingData

Batch = dict[str, Any]
SHUFFLED, FIXED, ORDERED = "shuffled", "fixed", "ordered"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous [start, stop) of ``n`` items for ``rank``: sizes differ by at most one."""
    return n * rank // world_size, n * (rank + 1) // world_size


@dataclass(frozen=True)
class ViewContext:
    """What a view factory gets: the data, the loader settings and the model's options."""

    data: TrainingData
    train: Ratings  # the training triples, in the order of the source
    batch_size: int
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    epoch: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: Any) -> Any:
        return self.options.get(name, default)

    def sharding(self) -> str:
        return FIXED if self.options.get("fixed_shards") else SHUFFLED


ViewFactory = Callable[[ViewContext], Iterable[Batch]]


@dataclass(frozen=True)
class ViewSpec:
    """A registered view: its factory, a description and the keys of its batches."""

    name: str
    factory: ViewFactory
    description: str = ""
    keys: Mapping[str, str] = field(default_factory=dict)


VIEWS: dict[str, ViewSpec] = {}


def register_view(name: str, factory: ViewFactory | None = None, *, description: str = "",
                  keys: Mapping[str, str] | None = None) -> Any:
    """Register ``factory(ctx) -> iterable of batches`` as view ``name``; usable as a decorator.

    Re-registering a name with the same factory is a no-op (modules may be re-imported); a
    different factory under a taken name is an error naming both.
    """

    def add(fn: ViewFactory) -> ViewFactory:
        old = VIEWS.get(name)
        if old is not None and old.factory is not fn and _qualname(old.factory) != _qualname(fn):
            raise DataError(f"data view '{name}' is registered twice: by {_qualname(old.factory)} "
                            f"and by {_qualname(fn)}; give one of them another name")
        VIEWS[name] = ViewSpec(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0],
                               dict(keys or {}))
        return fn

    return add(factory) if factory is not None else add


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def view_names() -> list[str]:
    return sorted(VIEWS)


def check_view(name: str) -> ViewSpec:
    """The spec of view ``name``; DataError listing the registered views otherwise."""
    if name not in VIEWS:
        raise DataError(f"unknown data view '{name}'; registered views: {', '.join(view_names())} "
                        "(a plugin adds one with reclight.data.views.register_view)")
    return VIEWS[name]


def build_view(name: str, ctx: ViewContext) -> Iterable[Batch]:
    """The training batches of view ``name`` for one rank."""
    batches = check_view(name).factory(ctx)
    if hasattr(batches, "set_epoch"):
        batches.set_epoch(ctx.epoch)
    return batches


# ---- batching and sharding ----------------------------------------------------------------------
class Batches:
    """Shared ordering, sharding and batching over ``n`` items; subclasses build the batches."""

    def __init__(self, n: int, batch_size: int, *, sharding: str = SHUFFLED, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise DataError(f"batch size {batch_size} must be >= 1; pass a positive batch_size")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        if sharding not in (SHUFFLED, FIXED, ORDERED):
            raise ValueError(f"unknown sharding {sharding!r}")
        self.n, self.batch_size, self.sharding = n, batch_size, sharding
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` next (it otherwise advances once per iteration)."""
        self.epoch = epoch

    def shard_size(self) -> int:
        """Items this rank iterates per epoch."""
        if self.sharding == SHUFFLED:
            return self.n // self.world_size
        start, stop = shard_range(self.n, self.rank, self.world_size)
        return stop - start

    def __len__(self) -> int:
        if self.sharding == FIXED:  # every rank: as many batches as the smallest shard needs
            return _ceil_div(self.n // self.world_size, self.batch_size)
        return _ceil_div(self.shard_size(), self.batch_size)

    def _generator(self) -> torch.Generator:
        # SeedSequence keeps (seed, epoch) streams apart (seed 1 epoch 0 != seed 0 epoch 1).
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(state) >> 1)

    def positions(self) -> Tensor:
        """This rank's item positions for the next epoch (advances the epoch unless ordered)."""
        if self.sharding == ORDERED:
            return torch.arange(*shard_range(self.n, self.rank, self.world_size))
        gen = self._generator()
        self.epoch += 1
        if self.sharding == FIXED:
            start, stop = shard_range(self.n, self.rank, self.world_size)
            return start + torch.randperm(stop - start, generator=gen)
        # Same seed and epoch on every rank: the same permutation, cut into disjoint shares.
        share = self.n // self.world_size
        return torch.randperm(self.n, generator=gen)[self.rank * share:(self.rank + 1) * share]

    def chunks(self, positions: Tensor) -> list[Tensor]:
        """``positions`` cut into this epoch's batches."""
        if self.sharding == FIXED:  # the same number of non-empty batches on every rank
            return list(torch.tensor_split(positions, len(self))) if len(self) else []
        return list(torch.split(positions, self.batch_size))

    def __iter__(self) -> Iterator[Batch]:
        # A generator: the epoch's permutation is drawn (and the epoch advanced) at the first
        # batch, not by iter() alone, which Lightning calls once to check that a loader that
        # is not a DataLoader is iterable.
        yield from self._batches(self.positions())

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        raise NotImplementedError


class PairBatches(Batches):
    """``{"users": int64[B], "items": int64[B], "ratings": float32[B]}`` batches of triples.

    Training permutes the triples once per epoch and slices the result; evaluation keeps the
    order, including pairs whose user or item is -1 (unseen).
    """

    def __init__(self, ratings: Ratings, batch_size: int, **kwargs: Any) -> None:
        super().__init__(len(ratings), batch_size, **kwargs)
        self.ratings = ratings

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        r = self.ratings
        if self.sharding == ORDERED:  # zero-copy slices of one contiguous range
            start = int(positions[0]) if len(positions) else 0
            stop = int(positions[-1]) + 1 if len(positions) else 0
            users, items, ratings = r.users[start:stop], r.items[start:stop], r.ratings[start:stop]
            for s in range(0, len(users), self.batch_size):
                e = s + self.batch_size
                yield {"users": users[s:e], "items": items[s:e], "ratings": ratings[s:e]}
            return
        if self.sharding == SHUFFLED:  # one gather per epoch, then zero-copy slices
            users, items, ratings = r.users[positions], r.items[positions], r.ratings[positions]
            for s in range(0, len(users), self.batch_size):
                e = s + self.batch_size
                yield {"users": users[s:e], "items": items[s:e], "ratings": ratings[s:e]}
            return
        for chunk in self.chunks(positions):
            yield {"users": r.users[chunk], "items": r.items[chunk], "ratings": r.ratings[chunk]}


class RowBatches(Batches):
    """Densified sparse rows: ``{"rows": int64[B], "values": float32[B, ncols],
    "mask": bool[B, ncols]}``; with ``implicit`` the values are the 0/1 mask as float32."""

    def __init__(self, matrix: SparseRows, rows: Tensor, batch_size: int, *,
                 implicit: bool = False, **kwargs: Any) -> None:
        super().__init__(len(rows), batch_size, **kwargs)
        self.matrix, self.rows, self.implicit = matrix, rows, implicit

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        for chunk in self.chunks(positions):
            batch_rows = self.rows[chunk]
            values, mask = self.matrix.dense(batch_rows)
            if self.implicit:
                values = mask.float()
            yield {"rows": batch_rows, "values": values, "mask": mask}


class TopNBatches(Batches):
    """Top-N evaluation: ``{"users": int64[B], "targets": bool[B, num_items]}`` where targets
    mark each user's held-out items (all held-out ratings count as relevant)."""

    def __init__(self, targets: SparseRows, users: Tensor, batch_size: int, *, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(len(users), batch_size, sharding=ORDERED, rank=rank,
                         world_size=world_size)
        self.targets, self.users = targets, users

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        for chunk in self.chunks(positions):
            batch_users = self.users[chunk]
            yield {"users": batch_users, "targets": self.targets.dense(batch_users)[1]}


class MatrixBatches:
    """The whole training matrix as one batch per epoch, for solvers (ALS, EASE, kNN).

    Every rank gets every training rating, because solving a user (an item) needs all of its
    ratings: ``user_major`` and ``item_major`` (:class:`SparseRows`, users x items and items x
    users, so a solver never re-sorts), the same ratings as COO ``users``/``items``/``ratings``
    sorted by user then item, and the contiguous ranges of users and items this rank solves,
    ``shard_users``/``shard_items`` (int64), so that ranks can exchange factors by all-gather.
    """

    def __init__(self, data: TrainingData, rank: int = 0, world_size: int = 1) -> None:
        self.data, self.rank, self.world_size = data, rank, world_size

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Batch]:
        users, items, ratings = self.data.matrix.to_coo()
        yield {"users": users, "items": items, "ratings": ratings,
               "user_major": self.data.matrix, "item_major": self.data.item_major,
               "shard_users": torch.arange(*shard_range(self.data.num_users, self.rank,
                                                        self.world_size)),
               "shard_items": torch.arange(*shard_range(self.data.num_items, self.rank,
                                                        self.world_size))}


# ---- the built-in views -------------------------------------------------------------------------
def _shard(ctx: ViewContext) -> dict[str, Any]:
    return {"sharding": ctx.sharding(), "seed": ctx.seed, "rank": ctx.rank,
            "world_size": ctx.world_size}


@register_view("pairs", keys={"users": "int64[B] user indices", "items": "int64[B] item indices",
                               "ratings": "float32[B] ratings (1.0 for interactions)"})
def pairs_view(ctx: ViewContext) -> PairBatches:
    """(user, item, rating) triples, shuffled every epoch."""
    return PairBatches(ctx.train, ctx.batch_size, **_shard(ctx))


_ROW_KEYS = {"rows": "int64[B] row indices", "values": "float32[B, width] ratings, 0 unobserved",
             "mask": "bool[B, width] observed entries"}


@register_view("user_rows", keys=_ROW_KEYS)
def user_rows_view(ctx: ViewContext) -> RowBatches:
    """Users' rows of the training matrix, densified per batch (width: items)."""
    return RowBatches(ctx.data.matrix, torch.arange(ctx.data.num_users), ctx.batch_size,
                      **_shard(ctx))


@register_view("item_rows", keys=_ROW_KEYS)
def item_rows_view(ctx: ViewContext) -> RowBatches:
    """Items' rows of the transposed training matrix, densified per batch (width: users)."""
    return RowBatches(ctx.data.item_major, torch.arange(ctx.data.num_items), ctx.batch_size,
                      **_shard(ctx))


@register_view("implicit_user_rows", keys={**_ROW_KEYS, "values": "float32[B, items] 1.0 where "
                                                                  "the user interacted, else 0"})
def implicit_user_rows_view(ctx: ViewContext) -> RowBatches:
    """Users' binary interaction rows, densified per batch (width: items)."""
    return RowBatches(ctx.data.matrix, torch.arange(ctx.data.num_users), ctx.batch_size,
                      implicit=True, **_shard(ctx))


@register_view("matrix", keys={
    "user_major": "SparseRows users x items", "item_major": "SparseRows items x users",
    "users": "int64[nnz] COO rows, sorted by user then item", "items": "int64[nnz] COO columns",
    "ratings": "float32[nnz] COO values", "shard_users": "int64 users this rank solves",
    "shard_items": "int64 items this rank solves"})
def matrix_view(ctx: ViewContext) -> MatrixBatches:
    """The whole training matrix in both layouts, one batch per epoch."""
    return MatrixBatches(ctx.data, ctx.rank, ctx.world_size)


class NegativePairBatches(PairBatches):
    """Training interactions with sampled unobserved items: the pair batch's ``users``,
    ``items`` (the positives) and ``ratings``, plus ``negatives`` int64[B, num_negatives]
    drawn by a :class:`~reclight.data.negatives.NegativeSampler` (fresh every epoch, seeded
    by seed, epoch and rank). Interactions of users who interacted with every item that can be
    sampled are left out (they have no negative)."""

    def __init__(self, ratings: Ratings, sampler: NegativeSampler, num_negatives: int,
                 batch_size: int, **kwargs: Any) -> None:
        keep = sampler.available[ratings.users]
        super().__init__(ratings if bool(keep.all()) else ratings.select(torch.nonzero(keep).flatten()),
                         batch_size, **kwargs)
        self.sampler, self.num_negatives = sampler, num_negatives

    def _batches(self, positions: Tensor) -> Iterator[Batch]:
        # A stream apart from the permutation's (which the same seed and epoch draw).
        state = np.random.SeedSequence([self.seed, self.epoch, self.rank, 0x6e6567]
                                       ).generate_state(1, np.uint64)[0]
        gen = torch.Generator().manual_seed(int(state) >> 1)
        for batch in super()._batches(positions):
            batch["negatives"] = self.sampler.sample(batch["users"], self.num_negatives, gen)
            yield batch


@register_view("negative_pairs", keys={
    "users": "int64[B] user indices", "items": "int64[B] items the users interacted with",
    "ratings": "float32[B] their ratings (1.0 for interactions)",
    "negatives": "int64[B, num_negatives] items the users never interacted with"})
def negative_pairs_view(ctx: ViewContext) -> NegativePairBatches:
    """Training interactions, each with ``num_negatives`` sampled unobserved items (options:
    num_negatives, default 1; negative_sampling "uniform" or "popularity";
    popularity_exponent, default 1.0)."""
    num = ctx.option("num_negatives", 1)
    sampling = ctx.option("negative_sampling", "uniform")
    exponent = float(ctx.option("popularity_exponent", 1.0))
    check_negative_options(num, sampling, exponent)
    sampler = NegativeSampler(ctx.data.matrix, sampling, exponent)
    return NegativePairBatches(ctx.train, sampler, num, ctx.batch_size, **_shard(ctx))
