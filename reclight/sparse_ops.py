"""Products with the observed pattern of a batch of rating rows, for sparse autoencoder steps.

A row autoencoder's masked loss needs the network's outputs at the observed entries only, and
its first layer reads inputs that are zero off those entries. With a batch of B rows of width
W, observed at E entries (about 6% of B x W on MovieLens 100K), both dense products cost
B x W x H multiply-adds for a layer of H units; on the pattern they cost E x H:

- :func:`pattern_matmul` ``S @ M``: the first layer over the observed inputs only (S is the
  sparse B x W matrix of the entries' values, M a dense W x H weight);
- :func:`sampled_matmul` ``(A @ Bt^T)[entries]``: the last layer evaluated only at the observed
  outputs (A the B x H code, Bt the W x H decoder weight; the sampled dense-dense product,
  SDDMM).

Both are autograd functions whose backward passes are again products with the pattern (or its
transpose, sorted by column once per batch in :class:`RowPattern`), so no B x W tensor is built
forwards or backwards. The row sums are ``embedding_bag`` (torch's fused kernel for weighted
sums of rows; it needs the summed matrix contiguous, hence the input-major first layer of
AutoRec's network), the sampled product is ``torch.sparse.sampled_addmm``. Why our own
backward and not torch's: torch differentiates ``sampled_addmm`` and CSR ``sparse.mm``
itself, but a whole AutoRec step that way measured 71 ms against 55 ms with these functions
(256 x 943 rows, 5% observed, hidden 500, one thread on the loaded 2-core box), because
torch's backward transposes the sparse operand on each call. ``tests/test_sparse_ops.py``
compares every value and gradient with the dense products.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F


class RowPattern:
    """The observed entries of a batch of ``num_rows`` rows of width ``width``.

    ``rows`` (batch positions) and ``cols`` are sorted by row, then column (the order of
    ``mask.nonzero()``); ``offsets`` start each row's segment. The transpose (entries sorted by
    column) is built on first use.
    """

    def __init__(self, rows: Tensor, cols: Tensor, num_rows: int, width: int) -> None:
        self.rows, self.cols = rows, cols
        self.num_rows, self.width = int(num_rows), int(width)
        counts = torch.bincount(rows, minlength=self.num_rows)
        self.offsets = torch.cumsum(counts, 0) - counts
        self._by_col: tuple[Tensor, Tensor, Tensor] | None = None
        self._ones: Tensor | None = None

    @classmethod
    def from_mask(cls, mask: Tensor) -> RowPattern:
        """The pattern of a boolean [B, W] mask."""
        rows, cols = mask.nonzero(as_tuple=True)
        return cls(rows, cols, mask.shape[0], mask.shape[1])

    def ones(self) -> Tensor:
        """The pattern as a CSR matrix of ones (the mask of torch's sampled products)."""
        if self._ones is None:
            crow = torch.cat([self.offsets, self.offsets.new_tensor([self.nnz])])
            with warnings.catch_warnings():
                # torch's one-time "sparse CSR support is in beta" notice: not the user's concern.
                warnings.simplefilter("ignore", UserWarning)
                self._ones = torch.sparse_csr_tensor(
                    crow, self.cols, torch.ones(self.nnz, device=self.cols.device),
                    (self.num_rows, self.width), check_invariants=False)
        return self._ones

    @property
    def nnz(self) -> int:
        return len(self.cols)

    def by_col(self) -> tuple[Tensor, Tensor, Tensor]:
        """(order, rows in that order, column offsets): the entries sorted by column."""
        if self._by_col is None:
            order = torch.argsort(self.cols, stable=True)
            counts = torch.bincount(self.cols, minlength=self.width)
            self._by_col = (order, self.rows[order], torch.cumsum(counts, 0) - counts)
        return self._by_col

    def row_sums(self, values: Tensor, dense: Tensor) -> Tensor:
        """[num_rows, H]: row b is the sum over its entries e of values[e] * dense[cols[e]]
        (``S @ dense`` for the W x H matrix ``dense``)."""
        return F.embedding_bag(self.cols, dense, self.offsets, mode="sum",
                               per_sample_weights=values)

    def col_sums(self, values: Tensor, dense: Tensor) -> Tensor:
        """[width, H]: row j is the sum over the entries e in column j of values[e] *
        dense[rows[e]] (``S^T @ dense`` for the num_rows x H matrix ``dense``)."""
        order, rows, offsets = self.by_col()
        return F.embedding_bag(rows, dense, offsets, mode="sum",
                               per_sample_weights=values[order])


class _PatternMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, values: Tensor, weight: Tensor, pattern: RowPattern) -> Tensor:
        ctx.pattern = pattern
        ctx.save_for_backward(values, weight)
        return pattern.row_sums(values, weight)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        values, weight = ctx.saved_tensors
        p: RowPattern = ctx.pattern
        grad = grad.contiguous()
        g_values = (grad[p.rows] * weight[p.cols]).sum(1) if ctx.needs_input_grad[0] else None
        g_weight = p.col_sums(values, grad) if ctx.needs_input_grad[1] else None
        return g_values, g_weight, None


class _SampledMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, pattern: RowPattern) -> Tensor:
        ctx.pattern = pattern
        ctx.save_for_backward(a, b)
        return _entry_dots(a, b, pattern)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        a, b = ctx.saved_tensors
        p: RowPattern = ctx.pattern
        grad = grad.contiguous()
        g_a = p.row_sums(grad, b) if ctx.needs_input_grad[0] else None
        g_b = p.col_sums(grad, a) if ctx.needs_input_grad[1] else None
        return g_a, g_b, None




def _entry_dots(a: Tensor, b: Tensor, p: RowPattern) -> Tensor:
    if p.nnz == 0:
        return a.new_zeros(0)
    return torch.sparse.sampled_addmm(p.ones(), a, b.t(), beta=0.0).values()


def pattern_matmul(pattern: RowPattern, values: Tensor, weight: Tensor) -> Tensor:
    """``S @ weight`` [num_rows, H] for the sparse [num_rows, width] matrix S with ``values``
    at ``pattern``'s entries and the dense [width, H] ``weight``; differentiable in both."""
    return _PatternMatmul.apply(values, weight, pattern)


def sampled_matmul(pattern: RowPattern, a: Tensor, b: Tensor) -> Tensor:
    """``(a @ b^T)`` [nnz] at ``pattern``'s entries, for dense a [num_rows, H] and b
    [width, H]; differentiable in both."""
    return _SampledMatmul.apply(a, b, pattern)
