"""TrainingData: everything a model may know about its training data, handed over once.

The DataModule builds one value at construction; a model receives it as its ``data``
constructor argument and never reads files, the DataModule or the Trainer's data. The value
travels inside checkpoints (as plain tensors and lists, loadable with ``weights_only=True``),
so ``predict`` and ``recommend`` need nothing but the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from reclight.data.idmap import IdMap
from reclight.data.ratings import Ratings
from reclight.data.sparse import SparseRows
from reclight.errors import CheckpointError, ConfigError
from reclight.fallback import baseline_biases

FORMAT = 1


@dataclass(frozen=True, eq=False)
class TrainingData:
    """The training side of a data set, as a model sees it.

    Attributes:
        user_map: raw user ids <-> indices 0..num_users-1 (from the training part only).
        item_map: raw item ids <-> indices 0..num_items-1.
        matrix: the users x items training matrix (CSR; values are the ratings, 1.0 for
            interactions of implicit data). ``item_major`` is its transpose.
        rating_range: (lowest, highest) rating; predictions of explicit models are clipped to it.
        global_mean: mean training rating.
        user_bias: baseline user biases of the fallback (:mod:`reclight.fallback`), float32.
        item_bias: baseline item biases of the fallback, float32.
        implicit: the data are interactions without ratings.
    """

    user_map: IdMap
    item_map: IdMap
    matrix: SparseRows
    rating_range: tuple[float, float]
    global_mean: float
    user_bias: Tensor
    item_bias: Tensor
    implicit: bool = False

    @classmethod
    def from_ratings(cls, train: Ratings, user_map: IdMap, item_map: IdMap,
                     rating_range: tuple[float, float], implicit: bool = False) -> TrainingData:
        """Build the value from the encoded training ratings (all indices known)."""
        shape = (len(user_map), len(item_map))
        mean = float(train.ratings.double().mean()) if len(train) else 0.0
        b_u, b_i = baseline_biases(train.users, train.items, train.ratings, shape[0], shape[1], mean)
        matrix = SparseRows.from_coo(train.users, train.items, train.ratings, shape)
        return cls(user_map, item_map, matrix, (float(rating_range[0]), float(rating_range[1])),
                   mean, b_u, b_i, bool(implicit))

    @property
    def num_users(self) -> int:
        return len(self.user_map)

    @property
    def num_items(self) -> int:
        return len(self.item_map)

    @property
    def nnz(self) -> int:
        """Number of training ratings (interactions)."""
        return self.matrix.nnz

    @cached_property
    def item_major(self) -> SparseRows:
        """The items x users training matrix (the transpose of ``matrix``), built once."""
        return self.matrix.transpose()

    @property
    def user_counts(self) -> Tensor:
        """int64 [num_users]: training ratings per user."""
        return self.matrix.row_lengths()

    @property
    def item_counts(self) -> Tensor:
        """int64 [num_items]: training ratings per item."""
        return torch.bincount(self.matrix.indices, minlength=self.num_items)

    def same_ids(self, other: TrainingData) -> bool:
        """Whether ``other`` indexes users and items exactly like this value."""
        return self.user_map == other.user_map and self.item_map == other.item_map

    # ---- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, lists and numbers (what ``torch.load(weights_only=True)`` accepts)."""
        return {"format": FORMAT, "user_map": self.user_map.state_dict(),
                "item_map": self.item_map.state_dict(), "matrix": self.matrix.state_dict(),
                "rating_range": list(self.rating_range), "global_mean": self.global_mean,
                "user_bias": self.user_bias.cpu(), "item_bias": self.item_bias.cpu(),
                "implicit": self.implicit}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TrainingData:
        """Rebuild a value saved by :meth:`state_dict`."""
        if state.get("format") != FORMAT:
            raise CheckpointError(f"training data of format {state.get('format')!r} cannot be read "
                                  f"by this reclight (format {FORMAT}); fit the model again")
        return cls(IdMap.from_state(state["user_map"]), IdMap.from_state(state["item_map"]),
                   SparseRows.from_state(state["matrix"]),
                   (float(state["rating_range"][0]), float(state["rating_range"][1])),
                   float(state["global_mean"]), state["user_bias"], state["item_bias"],
                   bool(state["implicit"]))

    @classmethod
    def coerce(cls, data: TrainingData | Mapping[str, Any]) -> TrainingData:
        """``data`` itself, or the value its saved state describes (checkpoint loading)."""
        if isinstance(data, TrainingData):
            return data
        if isinstance(data, Mapping) and "matrix" in data:
            return cls.from_state(data)
        raise ConfigError(f"a model needs its training data (reclight.data.TrainingData, e.g. "
                          f"RatingDataModule(...).training_data), got {type(data).__name__}")

    def __repr__(self) -> str:
        kind = "interactions" if self.implicit else "ratings"
        return (f"TrainingData({self.num_users} users x {self.num_items} items, "
                f"{self.nnz} {kind})")
