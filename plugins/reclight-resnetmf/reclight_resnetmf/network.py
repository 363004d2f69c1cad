"""The towers of ``mlp-mf`` and ``resnet-mf`` as plain torch modules.

A tower maps a user's (or an item's) embedding to the vector that enters the dot product; the
embedding tables, biases and prediction rule are ``reclight_mf.network.BiasedMF``'s (with
``towers=``), so r_hat(u, i) = mu + b_u + b_i + f(p_u) . g(q_i).

- :class:`MLPTower`: f(p) = W relu(p) + c, a fully connected layer after a ReLU (the towers of
  the MLP variant of neural collaborative filtering, He, Liao, Zhang, Nie, Hu and Chua, WWW 2017).
- :class:`ResidualTower`: blocks h <- h + W2 dropout(relu(W1 h + c1)) + c2 (the residual
  connection of He, Zhang, Ren and Sun, "Deep Residual Learning", CVPR 2016), two by default.
"""

from __future__ import annotations

from torch import Tensor, nn


class MLPTower(nn.Module):
    """ReLU then one fully connected layer: [n, dim] -> [n, hidden]."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.relu())


class ResidualBlock(nn.Module):
    """x + FC(dropout(relu(FC(x)))): [n, dim] -> [n, dim]."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, hidden)
        self.outer = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.outer(self.dropout(self.inner(x).relu()))


class ResidualTower(nn.Module):
    """``blocks`` residual blocks, each with its own skip connection: [n, dim] -> [n, dim]."""

    def __init__(self, dim: int, hidden: int, dropout: float, blocks: int = 2) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualBlock(dim, hidden, dropout) for _ in range(blocks)))

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)
