"""reclight plugin: biased matrix factorisation (``mf``)."""

from __future__ import annotations

from typing import Any

from reclight import hookimpl


@hookimpl
def register_models(register: Any) -> None:
    """Register ``mf``; the class is imported only when the model is built."""
    register("mf", "reclight_mf.model:MatrixFactorization", aliases=("biasedmf", "svd"),
             description="Biased matrix factorisation (Koren et al. 2009), Adam/SGD/sparse Adam")
