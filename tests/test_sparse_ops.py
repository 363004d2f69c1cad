"""reclight.sparse_ops: the pattern products equal the dense products, values and gradients."""

from __future__ import annotations

import pytest
import torch

from reclight.sparse_ops import RowPattern, pattern_matmul, sampled_matmul


def _case(rows: int = 7, width: int = 9, hidden: int = 4, density: float = 0.3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(rows, width, generator=gen) < density
    mask[2] = False  # a row with no entry
    dense = torch.randn(rows, width, generator=gen) * mask
    weight = torch.randn(width, hidden, generator=gen, dtype=torch.float64).float()
    return mask, dense, weight


def test_pattern_follows_the_mask_in_row_major_order() -> None:
    mask, _, _ = _case()
    p = RowPattern.from_mask(mask)
    rows, cols = mask.nonzero(as_tuple=True)
    assert torch.equal(p.rows, rows) and torch.equal(p.cols, cols) and p.nnz == int(mask.sum())
    order, by_col_rows, offsets = p.by_col()
    assert torch.equal(p.cols[order], torch.sort(cols, stable=True).values)
    assert torch.equal(by_col_rows, rows[order]) and offsets[0] == 0


@pytest.mark.parametrize("density", [0.3, 0.0, 1.0])
def test_pattern_matmul_equals_the_dense_product_and_its_gradients(density: float) -> None:
    mask, dense, weight = _case(density=density)
    p = RowPattern.from_mask(mask)
    values = dense[p.rows, p.cols].clone().requires_grad_()
    w1 = weight.clone().requires_grad_()
    out = pattern_matmul(p, values, w1)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()

    d = dense.clone().requires_grad_()
    w2 = weight.clone().requires_grad_()
    ref = d @ w2
    (ref * grad).sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(w1.grad, w2.grad)
    torch.testing.assert_close(values.grad, d.grad[p.rows, p.cols])


@pytest.mark.parametrize("density", [0.3, 0.0, 1.0])
def test_sampled_matmul_equals_the_dense_product_at_the_entries(density: float) -> None:
    mask, _, weight = _case(density=density)
    p = RowPattern.from_mask(mask)
    code = torch.randn(mask.shape[0], weight.shape[1])
    a1, b1 = code.clone().requires_grad_(), weight.clone().requires_grad_()
    out = sampled_matmul(p, a1, b1)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()

    a2, b2 = code.clone().requires_grad_(), weight.clone().requires_grad_()
    ref = (a2 @ b2.T)[p.rows, p.cols]
    (ref * grad).sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(a1.grad, a2.grad)
    torch.testing.assert_close(b1.grad, b2.grad)
