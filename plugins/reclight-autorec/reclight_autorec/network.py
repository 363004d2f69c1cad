"""AutoRec's network as a plain torch module.

h(r; theta) = f(W . g(V r + mu) + b)  (Sedhain, Menon, Sanner and Xie, "AutoRec: Autoencoders
Meet Collaborative Filtering", WWW 2015, eq. 2): one hidden layer, encoder activation g,
decoder activation f.
"""

from __future__ import annotations

from torch import Tensor, nn


class AutoRecNet(nn.Module):
    """``width -> hidden -> width`` with activations ``encoder_act`` (g) and ``decoder_act`` (f)."""

    def __init__(self, width: int, hidden: int, encoder_act: nn.Module, decoder_act: nn.Module) -> None:
        super().__init__()
        self.encoder = nn.Linear(width, hidden)
        self.decoder = nn.Linear(hidden, width)
        self.g, self.f = encoder_act, decoder_act

    def forward(self, x: Tensor) -> Tensor:
        return self.f(self.decoder(self.g(self.encoder(x))))

    def weight_norm(self) -> Tensor:
        """||W||_F^2 + ||V||_F^2: the paper's L2 penalty covers the weights, not the biases."""
        return self.encoder.weight.pow(2).sum() + self.decoder.weight.pow(2).sum()
