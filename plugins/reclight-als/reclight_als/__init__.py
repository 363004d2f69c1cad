"""reclight plugin: alternating least squares (``als``), explicit and implicit."""

from __future__ import annotations

from typing import Any

from reclight import hookimpl


@hookimpl
def register_models(register: Any) -> None:
    """Register ``als``; the class is imported only when the model is built."""
    register("als", "reclight_als.model:AlternatingLeastSquares",
             description="Alternating least squares: explicit weighted-lambda with biases "
                         "(Zhou et al. 2008) or implicit (Hu, Koren and Volinsky 2008)")
