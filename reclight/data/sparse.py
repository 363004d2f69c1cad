"""SparseRows: a compressed-sparse-row matrix over torch tensors.

Row models (AutoRec, DeepRec) read users' training rows through :meth:`SparseRows.dense`,
and top-N evaluation masks training items with it, so densifying a batch of rows is a few
bulk tensor operations (one ``repeat_interleave`` over the row segments, one scatter).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from reclight.errors import DataError


class SparseRows:
    """CSR matrix: row ``r`` holds ``indices[indptr[r]:indptr[r+1]]`` (sorted columns) with
    ``values`` at the same positions. int64 ``indptr``/``indices``, float32 ``values``."""

    def __init__(self, indptr: Tensor, indices: Tensor, values: Tensor,
                 shape: tuple[int, int]) -> None:
        """Wrap ready CSR arrays; use :meth:`from_coo` to build from (row, col, value) triples."""
        self.indptr = indptr.to(torch.int64)
        self.indices = indices.to(torch.int64)
        self.values = values.to(torch.float32)
        self.shape = (int(shape[0]), int(shape[1]))
        if len(self.indptr) != self.shape[0] + 1 or len(self.indices) != len(self.values):
            raise DataError(f"inconsistent CSR arrays for shape {self.shape}: indptr has "
                            f"{len(self.indptr)} entries, indices {len(self.indices)}, "
                            f"values {len(self.values)}")

    @classmethod
    def from_coo(cls, rows: Tensor, cols: Tensor, values: Tensor,
                 shape: tuple[int, int]) -> SparseRows:
        """Build from coordinate triples (any order). Pairs are expected to be distinct (the
        DataModule deduplicates); a repeated pair would keep an arbitrary one in :meth:`dense`."""
        rows = torch.as_tensor(rows, dtype=torch.int64)
        cols = torch.as_tensor(cols, dtype=torch.int64)
        values = torch.as_tensor(values, dtype=torch.float32)
        nrows, ncols = int(shape[0]), int(shape[1])
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= nrows
                          or int(cols.min()) < 0 or int(cols.max()) >= ncols):
            raise DataError(f"sparse entries fall outside the shape {nrows} x {ncols}; "
                            "indices must be in 0..rows-1 and 0..cols-1")
        # A stable sort is the fastest torch CPU sort for tens of millions of keys.
        order = torch.sort(rows * max(ncols, 1) + cols, stable=True).indices
        counts = torch.bincount(rows, minlength=nrows)
        indptr = torch.zeros(nrows + 1, dtype=torch.int64)
        torch.cumsum(counts, 0, out=indptr[1:])
        return cls(indptr, cols[order], values[order], (nrows, ncols))

    @property
    def nnz(self) -> int:
        """Number of stored entries."""
        return len(self.indices)

    @property
    def device(self) -> torch.device:
        return self.indptr.device

    def to(self, device: torch.device | str) -> SparseRows:
        """The same matrix with its tensors on ``device``."""
        return SparseRows(self.indptr.to(device), self.indices.to(device),
                          self.values.to(device), self.shape)

    def row_lengths(self) -> Tensor:
        """int64 [nrows]: stored entries per row."""
        return self.indptr[1:] - self.indptr[:-1]

    def row_ids(self) -> Tensor:
        """int64 [nnz]: the row of every stored entry (COO rows, in CSR order)."""
        return torch.repeat_interleave(torch.arange(self.shape[0], device=self.device),
                                       self.row_lengths())

    def to_coo(self) -> tuple[Tensor, Tensor, Tensor]:
        """(rows, cols, values) of all entries, sorted by row then column."""
        return self.row_ids(), self.indices, self.values

    def transpose(self) -> SparseRows:
        """The transposed matrix (columns become rows), also in CSR."""
        rows, cols, values = self.to_coo()
        return SparseRows.from_coo(cols.cpu(), rows.cpu(), values.cpu(),
                                   (self.shape[1], self.shape[0])).to(self.device)

    def dense(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Dense float32 values [B, ncols] and the bool observed mask [B, ncols] of ``rows``.

        Built in bulk: the entries of all requested rows are gathered with one
        ``repeat_interleave`` over their CSR segments and written with one scatter.
        """
        rows = torch.as_tensor(rows, dtype=torch.int64).to(self.device)
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= self.shape[0]):
            raise DataError(f"row index out of range 0..{self.shape[0] - 1} (got "
                            f"{int(rows.min())}..{int(rows.max())}); unknown ids map to -1")
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        batch = torch.repeat_interleave(torch.arange(len(rows), device=self.device), lengths)
        # Position of each gathered entry inside its row segment: global offset minus the
        # offset at which its segment starts in the gathered list.
        seg_start = torch.cumsum(lengths, 0) - lengths
        within = torch.arange(len(batch), device=self.device) - seg_start[batch]
        pos = starts[batch] + within
        cols = self.indices[pos]
        values = torch.zeros(len(rows), self.shape[1], dtype=torch.float32, device=self.device)
        mask = torch.zeros(len(rows), self.shape[1], dtype=torch.bool, device=self.device)
        values[batch, cols] = self.values[pos]
        mask[batch, cols] = True
        return values, mask

    def state_dict(self) -> dict[str, Any]:
        """Tensors and shape for checkpoints."""
        return {"indptr": self.indptr.cpu(), "indices": self.indices.cpu(),
                "values": self.values.cpu(), "shape": list(self.shape)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SparseRows:
        """Rebuild a matrix saved by :meth:`state_dict`."""
        return cls(state["indptr"], state["indices"], state["values"], tuple(state["shape"]))

    def __repr__(self) -> str:
        return f"SparseRows(shape={self.shape}, nnz={self.nnz})"
