"""reclight plugin: matrix factorisation with MLP towers (``mlp-mf``) and residual towers
(``resnet-mf``)."""

from __future__ import annotations

from typing import Any

from reclight import hookimpl


@hookimpl
def register_models(register: Any) -> None:
    """Register ``mlp-mf`` and ``resnet-mf``; the classes are imported only when built."""
    register("mlp-mf", "reclight_resnetmf.model:MLPMF",
             description="MF with an MLP tower per side (He et al. 2017), dot product + biases")
    register("resnet-mf", "reclight_resnetmf.model:ResNetMF",
             description="MF with residual towers (He et al. 2016), dropout, dot product + biases")
