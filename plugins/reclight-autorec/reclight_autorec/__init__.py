"""reclight plugin: AutoRec autoencoders (``autorec``)."""

from __future__ import annotations

from typing import Any

from reclight import hookimpl


@hookimpl
def register_models(register: Any) -> None:
    """Register ``autorec``; the class is imported only when the model is built."""
    register("autorec", "reclight_autorec.model:AutoRec", aliases=("i-autorec",),
             description="AutoRec (Sedhain et al. 2015), item- or user-based, Adam or L-BFGS")
