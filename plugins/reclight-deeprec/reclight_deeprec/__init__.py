"""reclight plugin: DeepRec deep autoencoders (``deeprec``)."""

from __future__ import annotations

from typing import Any

from reclight import hookimpl


@hookimpl
def register_models(register: Any) -> None:
    """Register ``deeprec``; the class is imported only when the model is built."""
    register("deeprec", "reclight_deeprec.model:DeepRec", aliases=("deep-autoencoder",),
             description="Deep autoencoder with dense re-feeding (Kuchaiev and Ginsburg 2017)")
