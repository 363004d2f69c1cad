"""The CDAE network as a plain torch module.

Wu, DuBois, Zheng and Ester, "Collaborative Denoising Auto-Encoders for Top-N Recommender
Systems", WSDM 2016, eq. 2-3:

    z_u   = h(W^T y~_u + V_u + b)            (hidden layer, h: sigmoid by default)
    y^_ui = f(W'_i^T z_u + b'_i)             (output, f: sigmoid or identity)

y~_u is the user's binary interaction vector corrupted by drop-out noise: each entry is
zeroed with probability q and the survivors are scaled by 1 / (1 - q) (section 4.1), which is
exactly what inverted dropout does. V_u is the per-user input node: a learned vector added to
the hidden layer. The decoder W' is either its own matrix or W itself (tied weights).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class CDAENet(nn.Module):
    """Encoder W [items, hidden] with bias b, user nodes V [users, hidden], decoder W'
    [items, hidden] (``tied``: W itself) with bias b'; ``forward`` returns the output's
    pre-activation. W is stored item-major (one row per item) because the encoder reads the
    rows of the items a user interacted with (see :meth:`encode`)."""

    def __init__(self, num_users: int, num_items: int, hidden: int, hidden_activation: nn.Module,
                 corruption: float = 0.5, tied: bool = False, init_std: float = 0.01) -> None:
        super().__init__()
        self.corruption = corruption
        self.encoder = nn.Parameter(torch.empty(num_items, hidden))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))
        self.user_nodes = nn.Embedding(num_users, hidden)
        self.decoder = None if tied else nn.Parameter(torch.empty(num_items, hidden))
        self.output_bias = nn.Parameter(torch.zeros(num_items))
        self.activation = hidden_activation
        with torch.no_grad():
            for weight in (self.encoder, self.user_nodes.weight,
                           *(() if self.decoder is None else (self.decoder,))):
                nn.init.normal_(weight, std=init_std)

    def decoder_weight(self) -> Tensor:
        """W' as [items, hidden]."""
        return self.encoder if self.decoder is None else self.decoder

    def inputs(self, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The nonzero entries of ``rows`` as (row, column, value), row-major, drop-out noise
        applied while training: each entry zeroed with probability q, survivors scaled by
        1 / (1 - q). Equal in distribution to ``F.dropout`` on the dense rows, but only the
        nonzero entries draw a random number (dropping a zero changes nothing): a user row
        holds a few percent of nonzeros."""
        r, c = rows.nonzero(as_tuple=True)
        values = rows[r, c]
        if self.training and self.corruption > 0:
            keep = torch.rand(len(r), device=rows.device) >= self.corruption
            r, c, values = r[keep], c[keep], values[keep] / (1.0 - self.corruption)
        return r, c, values

    def corrupt(self, rows: Tensor) -> Tensor:
        """The (corrupted while training) input as a dense matrix like ``rows``."""
        r, c, values = self.inputs(rows)
        out = torch.zeros_like(rows)
        out[r, c] = values
        return out

    def encode(self, rows: Tensor, users: Tensor) -> Tensor:
        """Hidden layer z [B, hidden] of the users' binary ``rows``.

        W^T y~ is a weighted sum of the encoder columns of the items in each row, computed
        as an ``embedding_bag`` over the nonzero entries instead of a dense [B, items] x
        [items, hidden] product: its cost (and that of W's gradient) grows with the
        interactions, not with the catalogue (a test compares it with the dense product)."""
        r, c, values = self.inputs(rows)
        offsets = torch.searchsorted(r, torch.arange(len(rows), device=rows.device))
        x = F.embedding_bag(c, self.encoder, offsets, mode="sum",
                            per_sample_weights=values.to(self.encoder.dtype))
        return self.activation(x + self.hidden_bias + self.user_nodes(users))

    def forward(self, rows: Tensor, users: Tensor) -> Tensor:
        """Logits [B, items] of the users' binary ``rows``; corrupted while training."""
        return F.linear(self.encode(rows, users), self.decoder_weight(), self.output_bias)

    def penalty(self) -> Tensor:
        """Squared L2 norm of every weight (the paper's regulariser, biases included)."""
        return torch.stack([p.square().sum() for p in self.parameters()]).sum()
