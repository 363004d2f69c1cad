"""reclight plugin: Collaborative Denoising Auto-Encoders (``cdae``)."""

from __future__ import annotations

from typing import Any

from reclight import hookimpl


@hookimpl
def register_models(register: Any) -> None:
    """Register ``cdae``; the class is imported only when the model is built."""
    register("cdae", "reclight_cdae.model:CDAE",
             description="Collaborative Denoising Auto-Encoder for top-N (Wu et al. 2016)")
