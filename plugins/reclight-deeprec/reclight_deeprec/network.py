"""DeepRec's deep autoencoder as a plain torch module (Kuchaiev and Ginsburg, "Training Deep
AutoEncoders for Collaborative Filtering", 2017, section 2).

Encoder ``width -> h1 -> ... -> hk`` and a mirrored decoder ``hk -> ... -> h1 -> width``, one
activation everywhere, dropout on the code (the encoder's output). A constrained decoder uses
the transposed encoder weights (W_d,l = W_e,l^T) with its own biases. Weights are initialised
Xavier-uniform and biases to zero, as in the authors' code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class DeepAutoencoder(nn.Module):
    """Mirrored deep autoencoder over rows of ``width`` entries.

    Args:
        width: input and output size (items for a user-based model).
        hidden: encoder layer sizes, e.g. [512, 512, 1024]; the decoder mirrors them.
        act: the activation applied after every layer (but the last when ``linear_last``).
        dropout: dropout probability on the code layer.
        constrained: tie decoder weights to the transposed encoder weights.
        linear_last: no activation on the output layer.
    """

    def __init__(self, width: int, hidden: list[int], act: nn.Module, dropout: float = 0.0,
                 constrained: bool = False, linear_last: bool = False) -> None:
        super().__init__()
        sizes = [width, *hidden]
        self.act, self.drop = act, nn.Dropout(dropout)
        self.constrained, self.linear_last = constrained, linear_last
        self.enc_w = nn.ParameterList(_xavier(sizes[i + 1], sizes[i]) for i in range(len(hidden)))
        self.enc_b = nn.ParameterList(nn.Parameter(torch.zeros(s)) for s in hidden)
        back = list(reversed(range(len(hidden))))  # decoder layer k inverts encoder layer back[k]
        self.dec_b = nn.ParameterList(nn.Parameter(torch.zeros(sizes[i])) for i in back)
        self.dec_w = nn.ParameterList() if constrained else nn.ParameterList(
            _xavier(sizes[i], sizes[i + 1]) for i in back)

    def decoder_weight(self, k: int) -> Tensor:
        """Weight of decoder layer ``k`` (a transposed view of an encoder weight if constrained)."""
        if self.constrained:
            return self.enc_w[len(self.enc_w) - 1 - k].t()
        return self.dec_w[k]

    def encode(self, x: Tensor) -> Tensor:
        for w, b in zip(self.enc_w, self.enc_b):
            x = self.act(F.linear(x, w, b))
        return x

    def decode(self, z: Tensor) -> Tensor:
        last = len(self.dec_b) - 1
        for k, b in enumerate(self.dec_b):
            z = F.linear(z, self.decoder_weight(k), b)
            if not (k == last and self.linear_last):
                z = self.act(z)
        return z

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.drop(self.encode(x)))


def _xavier(out_features: int, in_features: int) -> nn.Parameter:
    w = torch.empty(out_features, in_features)
    nn.init.xavier_uniform_(w)
    return nn.Parameter(w)
