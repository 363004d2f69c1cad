"""AutoRec's network as a plain torch module.

h(r; theta) = f(W . g(V r + mu) + b)  (Sedhain, Menon, Sanner and Xie, "AutoRec: Autoencoders
Meet Collaborative Filtering", WWW 2015, eq. 2): one hidden layer, encoder activation g,
decoder activation f.

Two ways to evaluate it, with the same parameters: :meth:`AutoRecNet.forward` reconstructs
dense rows (prediction, ranking, dense re-feeding), and :meth:`AutoRecNet.forward_entries`
evaluates the reconstruction only at the observed entries of sparse rows (the training step:
the paper's objective counts observed entries only, and the unobserved inputs are zeros), with
:mod:`reclight.sparse_ops`. On MovieLens 100K's item rows (about 5% observed) that is about
20 times fewer multiply-adds per step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from reclight.sparse_ops import RowPattern, pattern_matmul, sampled_matmul


class InputLinear(nn.Module):
    """``x @ weight_t + bias``: a linear layer whose weight is stored input-major
    ([in_features, out_features], the transpose of ``nn.Linear``'s), so that the sparse step
    reads the weights of one input as one contiguous row (torch's fused row-sum kernel,
    ``embedding_bag``, was 10x slower on the transposed view). Initialised as ``nn.Linear``.
    Loads checkpoints written with the ``nn.Linear`` layout (key ``weight``, transposed)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight_t = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        # nn.Linear's initialisation (kaiming-uniform weights, uniform(+-1/sqrt(fan_in)) bias).
        nn.init.kaiming_uniform_(self.weight_t.data.T, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.addmm(self.bias, x, self.weight_t)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        legacy = prefix + "weight"
        if legacy in state_dict and prefix + "weight_t" not in state_dict:
            state_dict[prefix + "weight_t"] = state_dict.pop(legacy).T.contiguous()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def with_indicators(pattern: RowPattern, values: Tensor) -> tuple[RowPattern, Tensor]:
    """The pattern and values of the input ``[x, mask]`` (width 2 W) for the input ``x`` with
    ``values`` at ``pattern``'s entries: each entry (b, j) also sets (b, W + j) to 1."""
    width = pattern.width
    cols = torch.stack([pattern.cols, pattern.cols + width], 1).flatten()
    both = torch.stack([values, torch.ones_like(values)], 1).flatten()
    return RowPattern(pattern.rows.repeat_interleave(2), cols, pattern.num_rows, 2 * width), both


class AutoRecNet(nn.Module):
    """``width -> hidden -> width`` with activations ``encoder_act`` (g) and ``decoder_act`` (f).

    With ``mask_input`` the encoder also reads the row's 0/1 observation mask through weights
    of its own: the input is ``[x, mask]`` (width 2 W), so the code can depend on which entries
    are observed as well as on their values.
    """

    def __init__(self, width: int, hidden: int, encoder_act: nn.Module, decoder_act: nn.Module,
                 mask_input: bool = False) -> None:
        super().__init__()
        self.mask_input = bool(mask_input)
        self.encoder = InputLinear(2 * width if mask_input else width, hidden)
        self.decoder = nn.Linear(hidden, width)
        self.g, self.f = encoder_act, decoder_act

    def forward(self, x: Tensor) -> Tensor:
        return self.f(self.decoder(self.g(self.encoder(x))))

    def forward_entries(self, pattern: RowPattern, values: Tensor) -> Tensor:
        """The reconstruction at ``pattern``'s entries only, for rows whose input is
        ``values`` at those entries and zero elsewhere: equal to
        ``forward(dense)[pattern.rows, pattern.cols]`` (f must be elementwise, as every
        activation of reclight.autoencoder is). With ``mask_input`` the dense input is
        ``[x, mask]``."""
        inputs, in_values = with_indicators(pattern, values) if self.mask_input else (pattern, values)
        code = self.g(pattern_matmul(inputs, in_values, self.encoder.weight_t) + self.encoder.bias)
        out = sampled_matmul(pattern, code, self.decoder.weight) + self.decoder.bias[pattern.cols]
        return self.f(out)

    def weight_norm(self) -> Tensor:
        """||W||_F^2 + ||V||_F^2: the paper's L2 penalty covers the weights, not the biases."""
        return self.encoder.weight_t.pow(2).sum() + self.decoder.weight.pow(2).sum()
