"""The data layer, in the order data flows: sources (and fetch, synthetic) -> readers ->
schema -> prepare (splits, id maps) -> views, all driven by the RatingDataModule.

Names are imported on first use (PEP 562), so ``reclight.data.sources`` and the readers load
without importing torch or Lightning (``reclight datasets`` stays quick). The function
``prepare`` is not listed here: importing its module ``reclight.data.prepare`` rebinds that
name on the package; import it as ``from reclight.data.prepare import prepare``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reclight.data.datamodule import RatingDataModule
    from reclight.data.idmap import IdMap
    from reclight.data.ratings import Ratings
    from reclight.data.prepare import Prepared, SplitOptions
    from reclight.data.readers import read_frame, read_ratings
    from reclight.data.sources import (
        BUILTIN_DATASETS,
        SPLITS,
        Source,
        Table,
        dataset_locations,
        resolve_source,
    )
    from reclight.data.sparse import SparseRows
    from reclight.data.synthetic import SyntheticSpec, make_synthetic
    from reclight.data.training import TrainingData
    from reclight.data.views import VIEWS, ViewContext, register_view

_HOMES = {
    "RatingDataModule": "datamodule",
    "IdMap": "idmap",
    "Ratings": "ratings",
    "SparseRows": "sparse",
    "read_ratings": "readers",
    "read_frame": "readers",
    "make_synthetic": "synthetic",
    "SyntheticSpec": "synthetic",
    "VIEWS": "views",
    "ViewContext": "views",
    "register_view": "views",
    "TrainingData": "training",
    "SPLITS": "sources",
    "BUILTIN_DATASETS": "sources",
    "Source": "sources",
    "Table": "sources",
    "dataset_locations": "sources",
    "resolve_source": "sources",
    "Prepared": "prepare",
    "SplitOptions": "prepare",
}
__all__ = [
    "BUILTIN_DATASETS",
    "SPLITS",
    "VIEWS",
    "IdMap",
    "Prepared",
    "RatingDataModule",
    "Ratings",
    "Source",
    "SparseRows",
    "SplitOptions",
    "SyntheticSpec",
    "Table",
    "TrainingData",
    "ViewContext",
    "dataset_locations",
    "make_synthetic",
    "read_frame",
    "read_ratings",
    "register_view",
    "resolve_source",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'reclight.data' has no attribute '{name}'")
    value = getattr(import_module(f"reclight.data.{_HOMES[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
