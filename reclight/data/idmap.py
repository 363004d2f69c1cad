"""IdMap: raw string ids <-> contiguous int64 indices.

Indices follow the natural order of the raw ids: numeric order when every id is an integer
("2" before "10"), else lexicographic order. The order depends only on the set of ids, never
on the row order of a file, so the same training ids always give the same indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reclight.data.schema import ids_to_str
from reclight.errors import DataError

ArrayLike = pd.Series | np.ndarray | Sequence[Any]


class IdMap:
    """Bidirectional map between raw ids (str) and indices ``0..len-1``."""

    def __init__(self, raw: Sequence[str] | np.ndarray) -> None:
        """Use :meth:`from_values`/:meth:`fit` to build one; ``raw[i]`` is the id of index i."""
        self.raw: np.ndarray = np.asarray(raw, dtype=str)
        self._index = pd.Index(pd.array(self.raw, dtype="str"))
        if not self._index.is_unique:
            dup = self._index[self._index.duplicated()][0]
            raise DataError(f"id map has the id '{dup}' twice; raw ids must be unique")

    @classmethod
    def fit(cls, values: ArrayLike) -> tuple[IdMap, np.ndarray]:
        """The map of the distinct ``values`` and their int64 indices, in one factorisation."""
        codes, uniques = pd.factorize(ids_to_str(values), use_na_sentinel=True)
        if (codes < 0).any():
            raise DataError("ids contain missing values; every rating needs a user and an item")
        id_map, remap = cls.from_uniques(np.asarray(uniques, dtype=str))
        return id_map, remap[codes]

    @classmethod
    def from_uniques(cls, uniques: np.ndarray,
                     used: np.ndarray | None = None) -> tuple[IdMap, np.ndarray]:
        """The map of ``uniques[used]`` and an int64 array taking each position in
        ``uniques`` to its index (-1 where not used): codes from one ``pd.factorize`` of all
        rows become indices without hashing strings again."""
        used = np.ones(len(uniques), dtype=bool) if used is None else np.asarray(used, dtype=bool)
        kept = np.flatnonzero(used)
        raw = np.asarray(uniques, dtype=str)[kept]
        order = _natural_order(raw)
        remap = np.full(len(uniques), -1, dtype=np.int64)
        remap[kept[order]] = np.arange(len(order))
        return cls(raw[order]), remap

    @classmethod
    def from_values(cls, values: ArrayLike) -> IdMap:
        """The map of the distinct ``values`` (natural order, see the module docstring)."""
        return cls.fit(values)[0]

    def __len__(self) -> int:
        return len(self.raw)

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self.raw, other.raw)

    __hash__ = None  # type: ignore[assignment]

    def to_index(self, values: ArrayLike) -> np.ndarray:
        """int64 indices of raw ``values``; -1 for ids not in the map (and missing values)."""
        codes, uniques = pd.factorize(ids_to_str(values), use_na_sentinel=True)
        # Look up each distinct id once: the hash lookups scale with distinct ids, not rows.
        lookup = np.append(self._index.get_indexer(uniques).astype(np.int64), -1)
        return lookup[codes]  # code -1 (missing) reads the trailing -1

    def to_raw(self, idx: ArrayLike) -> np.ndarray:
        """Raw ids (numpy str array) of indices ``idx``; DataError for indices out of range."""
        idx = np.asarray(idx, dtype=np.int64)
        bad = (idx < 0) | (idx >= len(self))
        if bad.any():
            raise DataError(f"index {int(idx[bad][0])} is not in the id map (0..{len(self) - 1}); "
                            "-1 marks an id unseen in training, which has no raw id here")
        return self.raw[idx]

    def state_dict(self) -> dict[str, Any]:
        """Plain, picklable state for checkpoints: ``{"raw": [str, ...]}``."""
        return {"raw": self.raw.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IdMap:
        """Rebuild a map saved by :meth:`state_dict`."""
        return cls(list(state["raw"]))


def _natural_order(raw: np.ndarray) -> np.ndarray:
    """Permutation sorting ``raw`` numerically when all ids are integers, else as strings."""
    if len(raw) == 0:
        return np.zeros(0, dtype=np.int64)
    numbers = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=np.float64,
                                                                     na_value=np.nan)
    if np.isfinite(numbers).all() and (numbers == np.floor(numbers)).all():
        # Ties ("1" and "01") and float precision beyond 2**53 are settled by the string.
        return np.lexsort((raw, numbers))
    return np.argsort(raw, kind="stable")
