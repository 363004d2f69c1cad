"""Batched closed-form ALS solves on tensors (no Lightning, no Python loop over users).

Explicit feedback: weighted-lambda regularisation of Zhou, Wilkinson, Schreiber and Pan,
"Large-Scale Parallel Collaborative Filtering for the Netflix Prize", AAIM 2008: row u's ridge
penalty is ``reg * n_u`` (its number of ratings). With biases, each row solves for the
augmented vector ``[p_u, b_u]`` against the other side's ``[q_i, 1]`` (target
``r - mu - b_i``), so factors and bias are one exact least-squares solve.

Implicit feedback: Hu, Koren and Volinsky, "Collaborative Filtering for Implicit Feedback
Datasets", ICDM 2008: confidence ``c = 1 + alpha * r``, preference 1 on observed entries and 0
elsewhere. Row u solves ``(Y^T Y + Y^T (C_u - I) Y + reg I) x_u = Y^T C_u p_u``: the Gram matrix
``Y^T Y`` is computed once per half-sweep, the correction touches observed entries only, so a
sweep costs O(ratings k^2 + rows k^3), or O(ratings k) per conjugate-gradient step (Takacs,
Pilaszy and Tikk, "Applications of the Conjugate Gradient Method for Implicit Feedback
Collaborative Filtering", RecSys 2011) warm-started from the previous factors.

Implicit ALS of small rank forms every row's system with one sparse product (see
:func:`solve_implicit`). Otherwise rows are grouped into :class:`Bucket` s of rows of similar
length (lengths within a factor 1.25), padded to the bucket's longest row, so each bucket's
normal equations are built with one batched matrix product and solved with one batched
Cholesky factorisation. Rows without any
entry get zero factors and a zero bias (never NaN).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from reclight.data.sparse import SparseRows

# Rows of one length class whose lengths are within this factor of each other share a bucket:
# padding wastes at most 20% of the cells.
LENGTH_RATIO = 1.25
# Gathered cells (padded entries x vector width) per bucket: about 16 MiB of float32.
BUCKET_FLOATS = 1 << 22
# The exact implicit solve of small ranks holds the fixed side's outer products y y^T
# (upper triangles, ncols x k(k+1)/2 floats, at most 128 MiB) and the systems of a chunk of
# rows (as many floats).
OUTER_FLOATS = 1 << 25
OUTER_MAX_RANK = 32


@dataclass(frozen=True)
class Bucket:
    """Rows of similar length, padded: ``cols``/``values`` are [B, L], ``lengths`` [B]."""

    rows: Tensor
    cols: Tensor
    values: Tensor
    lengths: Tensor

    @property
    def mask(self) -> Tensor:
        """float32 [B, L]: 1 on real entries, 0 on padding."""
        width = self.cols.shape[1]
        return (torch.arange(width, device=self.cols.device)[None, :]
                < self.lengths[:, None]).to(torch.float32)

    @property
    def cells(self) -> int:
        return int(self.cols.numel())


def plan_buckets(matrix: SparseRows, rows: Tensor, width: int) -> list[Bucket]:
    """Buckets over ``rows`` of ``matrix`` (rows without entries are left out), each holding
    at most about ``BUCKET_FLOATS / width`` padded cells; built once per data and shard."""
    rows = torch.as_tensor(rows, dtype=torch.int64)
    lengths = matrix.row_lengths()[rows]
    keep = lengths > 0
    rows, lengths = rows[keep], lengths[keep]
    if not len(rows):
        return []
    # Length classes: ceil(log_1.25(length)), so a class's lengths differ by at most 1.25x.
    classes = torch.ceil(torch.log(lengths.double()) / math.log(LENGTH_RATIO)).long()
    order = torch.argsort(classes * (int(lengths.max()) + 1) + lengths, stable=True)
    rows, lengths, classes = rows[order], lengths[order], classes[order]
    budget = max(1, BUCKET_FLOATS // max(width, 1))
    buckets = []
    # One iteration per bucket (a few dozen), never per row.
    bounds = torch.unique_consecutive(classes, return_counts=True)[1].cumsum(0).tolist()
    start = 0
    for stop in bounds:
        longest = int(lengths[stop - 1])
        per_bucket = max(1, budget // longest)
        for s in range(start, stop, per_bucket):
            e = min(stop, s + per_bucket)
            buckets.append(_bucket(matrix, rows[s:e], lengths[s:e], longest))
        start = stop
    return buckets


def _bucket(matrix: SparseRows, rows: Tensor, lengths: Tensor, width: int) -> Bucket:
    offsets = torch.arange(width)[None, :]
    inside = offsets < lengths[:, None]
    positions = torch.where(inside, matrix.indptr[rows][:, None] + offsets, 0)
    cols = torch.where(inside, matrix.indices[positions], 0)
    values = torch.where(inside, matrix.values[positions], 0.0)
    return Bucket(rows, cols, values, lengths)


def _spd_solve(a: Tensor, b: Tensor) -> Tensor:
    """Solve the batch of symmetric positive (semi-)definite systems ``a x = b`` ([B, d, d],
    [B, d]) by Cholesky; systems that are singular (no regularisation, fewer entries than
    unknowns) get the least-squares minimum-norm solution instead."""
    chol, info = torch.linalg.cholesky_ex(a)
    x = torch.cholesky_solve(b.unsqueeze(-1), chol).squeeze(-1)
    bad = info != 0
    if bool(bad.any()):
        x[bad] = (torch.linalg.pinv(a[bad], hermitian=True) @ b[bad].unsqueeze(-1)).squeeze(-1)
    return x


def solve_explicit(buckets: list[Bucket], fixed: Tensor, fixed_bias: Tensor | None,
                   mean: float, reg: float, bias_reg: float, out: Tensor,
                   allow_dual: bool = True, row_weights: Tensor | None = None) -> Tensor:
    """One half-sweep of explicit weighted-lambda ALS.

    Args:
        buckets: the rows to solve (of the matrix whose columns index ``fixed``).
        fixed: [ncols, k] the other side's factors, held fixed.
        fixed_bias: [ncols] the other side's biases, or None for a model without biases.
        mean: the global mean, subtracted from every rating.
        reg: factor penalty per rating of the row (``reg * n_u``).
        bias_reg: bias penalty per rating of the row (only with biases).
        out: [nrows, k] (or [nrows, k + 1] with biases: factors then bias) written in place for
            the buckets' rows; rows not in any bucket are left as they are.
        allow_dual: solve rows shorter than the vector width in the dual form (the same
            solution, cheaper; used when every penalty is positive). False: always primal.
        row_weights: [nrows] what each row's penalties are multiplied by; None: its number of
            ratings (weighted-lambda).

    Returns ``out``.
    """
    k = fixed.shape[1]
    if fixed_bias is not None:
        fixed = torch.cat([fixed, torch.ones_like(fixed[:, :1])], dim=1)
        penalty = torch.full((k + 1,), float(reg), dtype=fixed.dtype, device=fixed.device)
        penalty[k] = bias_reg
    else:
        penalty = torch.full((k,), float(reg), dtype=fixed.dtype, device=fixed.device)
    # Short rows take the dual (L x L) form of the same solve; it needs every penalty > 0.
    dual = allow_dual and bool((penalty > 0).all())
    for bucket in buckets:
        mask = bucket.mask.to(fixed.device)
        cols = bucket.cols.to(fixed.device)
        gathered = fixed[cols] * mask.unsqueeze(-1)  # [B, L, d], zero rows on padding
        target = bucket.values.to(fixed.device) - mean
        if fixed_bias is not None:
            target = target - fixed_bias[cols]
        target = target * mask
        counts = (bucket.lengths if row_weights is None
                  else row_weights[bucket.rows]).to(fixed.device, fixed.dtype)
        if dual and gathered.shape[1] < gathered.shape[2]:
            out[bucket.rows.to(out.device)] = _dual_ridge(gathered, target,
                                                          counts[:, None] * penalty[None, :])
            continue
        a = gathered.transpose(1, 2) @ gathered  # [B, d, d]
        b = (gathered.transpose(1, 2) @ target.unsqueeze(-1)).squeeze(-1)
        a.diagonal(dim1=1, dim2=2).add_(counts[:, None] * penalty[None, :])
        out[bucket.rows.to(out.device)] = _spd_solve(a, b)
    return out


def solve_explicit_cg(matrix: SparseRows, start: int, stop: int, fixed: Tensor,
                      fixed_bias: Tensor | None, mean: float, reg: float, bias_reg: float,
                      out: Tensor, steps: int, row_weights: Tensor | None = None) -> Tensor:
    """One half-sweep of explicit weighted-lambda ALS over rows ``start:stop`` of ``matrix``
    with ``steps`` conjugate-gradient steps per row instead of the exact solve.

    Each row's ridge system ``(G^T G + D) x = G^T t`` (the rows of ``G`` are the other side's
    ``[q_i, 1]`` for the row's entries, ``D`` the diagonal penalty) is solved approximately by
    batched CG warm-started from the row's current ``out`` and preconditioned by the system's
    diagonal (Jacobi). The d x d matrices are never formed: a product ``A v`` is one sampled
    dense-dense product (``v . q_i`` on the stored entries only) and one sparse-dense product,
    so a step costs O(ratings d), against O(ratings d^2 + rows d^3) to form and factor the
    systems. This is ALS with conjugate gradient (Takacs, Pilaszy and Tikk, RecSys 2011; for
    explicit ALS: Tan, Cao and Fong, "Faster and Cheaper: Parallelizing Large-Scale Matrix
    Factorization on GPUs", HPDC 2016); a fixed point of it is one of exact ALS, and enough
    steps reach the exact solution (tested). Arguments as :func:`solve_explicit`; returns
    ``out`` with rows ``start:stop`` replaced.
    """
    if stop <= start:
        return out
    lo, hi = int(matrix.indptr[start]), int(matrix.indptr[stop])
    device = fixed.device
    crow = (matrix.indptr[start:stop + 1] - lo).to(device)
    cols = matrix.indices[lo:hi].to(device)
    shape = (stop - start, fixed.shape[0])
    k = fixed.shape[1]
    target = matrix.values[lo:hi].to(device) - mean
    penalty = torch.full((k,), float(reg), dtype=fixed.dtype, device=device)
    if fixed_bias is not None:
        fixed = torch.cat([fixed, torch.ones_like(fixed[:, :1])], dim=1)
        penalty = torch.cat([penalty, penalty.new_full((1,), float(bias_reg))])
        target = target - fixed_bias[cols]
    weights = (crow[1:] - crow[:-1]) if row_weights is None else row_weights[start:stop]
    diag_penalty = weights.to(device, fixed.dtype)[:, None] * penalty[None, :]

    def rows_of(values: Tensor) -> Tensor:
        with warnings.catch_warnings():  # torch's CSR is "beta"; nothing for a user to act on
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
            return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)

    pattern = rows_of(torch.ones_like(target))
    fixed_t = fixed.T

    def apply(v: Tensor) -> Tensor:
        # v . q_i on every stored entry (never the dense rows x cols product), then G^T of it.
        dots = torch.sparse.sampled_addmm(pattern, v, fixed_t, beta=0.0).values()
        return rows_of(dots) @ fixed + diag_penalty * v

    inverse_diagonal = 1.0 / (pattern @ (fixed * fixed) + diag_penalty).clamp_min(1e-12)
    x = out[start:stop]
    # The residual b - A x = G^T (t - G x) - D x in one pass.
    residual_entries = target - torch.sparse.sampled_addmm(pattern, x, fixed_t, beta=0.0).values()
    r = rows_of(residual_entries) @ fixed - diag_penalty * x
    x = _conjugate_gradient(apply, None, x, steps, residual=r, inverse_diagonal=inverse_diagonal)
    out[start:stop] = x
    return out


def _dual_ridge(gathered: Tensor, target: Tensor, penalty: Tensor) -> Tensor:
    """The ridge solution ``(G^T G + D)^-1 G^T t`` of rows with fewer entries L than unknowns
    d, through the push-through identity ``(G^T G + D)^-1 G^T = D^-1 G^T (G D^-1 G^T + I)^-1``:
    an L x L system instead of d x d, so O(L^2 d + L^3) per row instead of O(L d^2 + d^3). The
    same solution, not an approximation (tested against the primal solve); ``D`` ([B, d],
    the diagonal penalty) must be positive. Padding rows of ``G`` and ``t`` are zero and add
    only identity rows to the system, so they change nothing."""
    scaled = gathered / penalty.unsqueeze(1)  # G D^-1, [B, L, d]
    kernel = scaled @ gathered.transpose(1, 2)  # [B, L, L]
    kernel.diagonal(dim1=1, dim2=2).add_(1.0)  # eigenvalues >= 1: Cholesky is safe in float32
    weights = torch.cholesky_solve(target.unsqueeze(-1), torch.linalg.cholesky(kernel))
    return (scaled.transpose(1, 2) @ weights).squeeze(-1)


def gram(factors: Tensor) -> Tensor:
    """``Y^T Y`` [k, k], computed once per half-sweep."""
    return factors.T @ factors


def row_slice(matrix: SparseRows, start: int, stop: int) -> SparseRows:
    """Rows ``start..stop`` of ``matrix`` (a rank's shard) as their own CSR matrix; shares
    the index and value storage."""
    lo, hi = int(matrix.indptr[start]), int(matrix.indptr[stop])
    return SparseRows(matrix.indptr[start:stop + 1] - lo, matrix.indices[lo:hi],
                      matrix.values[lo:hi], (stop - start, matrix.shape[1]))


def _csr(rows: SparseRows, values: Tensor) -> Tensor:
    """``rows``' pattern with ``values`` as a torch sparse CSR tensor (for its sparse kernels)."""
    with warnings.catch_warnings():  # torch's CSR is "beta"; nothing for a user to act on
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(rows.indptr, rows.indices, values, size=rows.shape,
                                       check_invariants=False)


def outer_fits(ncols: int, k: int) -> bool:
    """Whether the implicit solve may hold every column's outer product ``y y^T`` (its upper
    triangle, ``ncols x k(k+1)/2`` floats) and form every row's system with one sparse
    product; else CG works on the factors directly and the exact solve on padded buckets
    (cheaper from about rank 32, where batched GEMMs beat the wide sparse product)."""
    return k <= OUTER_MAX_RANK and ncols * k * (k + 1) // 2 <= OUTER_FLOATS


def solve_implicit(rows: SparseRows, fixed: Tensor, alpha: float, reg: float, out: Tensor,
                   cg_steps: int = 0, buckets: list[Bucket] | None = None) -> Tensor:
    """One half-sweep of implicit ALS (Hu, Koren and Volinsky 2008) with the Gram trick.

    Row u solves ``(Y^T Y + reg I + Y_u^T diag(c_u - 1) Y_u) x_u = Y^T c_u`` where ``c - 1 =
    alpha * r`` on its observed entries and 0 elsewhere: ``Y^T Y`` once per half-sweep, the
    rest over observed entries only, with no Python loop over rows or length buckets where it
    can be avoided:

    - small rank (:func:`outer_fits`): ``Y_u^T diag(c_u - 1) Y_u`` for every row is one sparse
      product of ``alpha r`` with the columns' outer products ``y_j y_j^T`` (upper triangles,
      in chunks of rows), O(entries k^2); then one batched Cholesky (exact), or ``cg_steps``
      conjugate-gradient steps (Takacs et al. 2011) on the formed systems, O(rows k^2) each;
    - larger rank, CG: each product ``A_u v_u`` is ``v_u Y^T Y`` plus one sampled dense-dense
      product (``v_u . y_j`` on the entries) and one sparse-dense product for all rows at once,
      never forming the systems: O(entries k) per step;
    - larger rank, exact: padded buckets, a batched GEMM and Cholesky per bucket.

    Args:
        rows: the rows to solve (row r of it is ``out[r]``); values are the raw observations r.
        fixed: [ncols, k] the other side's factors, held fixed.
        alpha: confidence slope.
        reg: ridge penalty (the paper's lambda, not scaled by counts).
        out: [rows, k] written in place; also the warm start of CG.
        cg_steps: 0 for the exact solve, else this many conjugate-gradient steps from ``out``.
        buckets: the exact solve by padded buckets with this plan of ``rows``; None: the
            formed systems where :func:`outer_fits`, else buckets planned here.

    Returns ``out``.
    """
    k = fixed.shape[1]
    yty = gram(fixed)
    yty.diagonal().add_(reg)  # Y^T Y + reg I, shared by every row
    extra = alpha * rows.values.to(fixed.device, fixed.dtype)  # c - 1 on the entries
    device_rows = rows.to(fixed.device)
    b = _csr(device_rows, 1.0 + extra) @ fixed  # Y^T C_u p_u: preference 1 on the entries
    if buckets is None and outer_fits(fixed.shape[0], k):
        upper_i, upper_j = torch.triu_indices(k, k, device=fixed.device)
        outer = fixed[:, upper_i] * fixed[:, upper_j]  # [ncols, k(k+1)/2]
        # Where each cell of a k x k matrix sits among the upper-triangle entries.
        position = torch.zeros(k, k, dtype=torch.int64, device=fixed.device)
        position[upper_i, upper_j] = torch.arange(len(upper_i), device=fixed.device)
        position = torch.maximum(position, position.T).reshape(-1)
        per_chunk = max(1, OUTER_FLOATS // (k * k))
        for s in range(0, rows.shape[0], per_chunk):  # bounds the [rows, k, k] systems
            e = min(rows.shape[0], s + per_chunk)
            chunk = row_slice(device_rows, s, e)
            half = _csr(chunk, extra[int(device_rows.indptr[s]):][:chunk.nnz]) @ outer
            a = half[:, position].reshape(-1, k, k) + yty
            if cg_steps > 0:
                x = _conjugate_gradient(lambda v, a=a: (a @ v.unsqueeze(-1)).squeeze(-1),
                                        b[s:e], out[s:e].to(fixed.device), cg_steps)
            else:
                x = _spd_solve(a, b[s:e])
            out[s:e] = x.to(out.device)
        return out
    if cg_steps > 0:
        out.copy_(_conjugate_gradient(_sparse_product(device_rows, extra, fixed, yty), b,
                                      out.to(fixed.device), cg_steps))
        return out
    if buckets is None:
        buckets = plan_buckets(rows, torch.arange(rows.shape[0]), k)
    for bucket in buckets:
        mask = bucket.mask.to(fixed.device)
        gathered = fixed[bucket.cols.to(fixed.device)]  # [B, L, k]
        weights = alpha * bucket.values.to(fixed.device) * mask  # c - 1 on entries, 0 on padding
        a = gathered.transpose(1, 2) @ (gathered * weights.unsqueeze(-1))  # [B, k, k]
        a += yty
        index = bucket.rows.to(fixed.device)
        out[bucket.rows.to(out.device)] = _spd_solve(a, b[index]).to(out.device)
    return out


def _sparse_product(rows: SparseRows, extra: Tensor, fixed: Tensor,
                    yty: Tensor) -> Callable[[Tensor], Tensor]:
    """``v -> (Y^T Y + reg I + Y_u^T diag(c_u - 1) Y_u) v_u`` for every row at once, without
    forming the systems: O(entries k + rows k^2) per product."""
    pattern = _csr(rows, extra)
    fixed_t = fixed.T  # a view: sampled_addmm reads each y_j contiguously

    def apply(v: Tensor) -> Tensor:
        # v_u . y_j on every entry (a sampled product), weighted by c - 1, summed back.
        along = torch.sparse.sampled_addmm(pattern, v, fixed_t, beta=0.0).values() * extra
        return v @ yty + _csr(rows, along) @ fixed

    return apply


def _conjugate_gradient(apply: Callable[[Tensor], Tensor], b: Tensor | None, x: Tensor,
                        steps: int, residual: Tensor | None = None,
                        inverse_diagonal: Tensor | None = None) -> Tensor:
    """``steps`` of batched CG on the systems ``apply(x) = b`` (one per row), from ``x``.

    ``residual`` is ``b - apply(x)`` when the caller has it cheaper (then ``b`` may be None);
    ``inverse_diagonal`` makes it Jacobi-preconditioned CG (one diagonal per row)."""
    r = residual if residual is not None else b - apply(x)

    def precondition(v: Tensor) -> Tensor:
        return v if inverse_diagonal is None else v * inverse_diagonal

    z = precondition(r)
    p = z
    rz = (r * z).sum(-1)
    for step in range(steps):
        ap = apply(p)
        denom = (p * ap).sum(-1)
        alpha = torch.where(denom > 0, rz / denom.clamp_min(1e-30), torch.zeros_like(rz))
        x = x + alpha[:, None] * p
        if step == steps - 1:  # the last residual update would go unused
            break
        r = r - alpha[:, None] * ap
        z = precondition(r)
        rz_new = (r * z).sum(-1)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-30), torch.zeros_like(rz))
        p = z + beta[:, None] * p
        rz = rz_new
    return x
