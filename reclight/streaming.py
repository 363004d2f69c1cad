"""Top-k recommendations for many users, streamed in batches to a CSV or Parquet file.

``reclight recommend --users all`` ranks every user of a checkpoint's model: users are taken in
batches small enough that a batch's users x items scores stay near ``CELLS`` values (64 MiB of
float32), each batch's top-k rows (raw user id, rank, raw item id, score) are appended to the
output and dropped, so memory is bounded by one batch whatever the catalogue size; a users x
items score matrix never exists. The file is written under a temporary name in the output's
folder and renamed when complete, so an interrupted run leaves no half-written output and an
existing file is only replaced with ``overwrite``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from reclight.errors import ConfigError

CELLS = 1 << 24
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def output_format(path: str | Path) -> str:
    """"csv" or "parquet" from the file name's extension; ConfigError otherwise."""
    if Path(path).is_dir():  # said first: a folder is the real problem, not its extension
        raise ConfigError(f"--output '{path}' is a folder; give a file name, e.g. "
                          f"{Path(path) / 'recs.csv'}")
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"cannot tell the format of --output '{path}' from its extension "
                          f"'{suffix}'; use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


class TopKWriter:
    """Appends (user, rank, item, score) frames to a temporary file; ``commit`` renames it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent or ".")
        os.close(fd)
        self.tmp = Path(tmp)
        self.rows = 0
        self._parquet: Any = None
        self._csv: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table)
        else:
            if self._csv is None:
                self._csv = open(self.tmp, "w", newline="")  # noqa: SIM115 - closed in commit
                frame.iloc[:0].to_csv(self._csv, index=False)
            frame.to_csv(self._csv, index=False, header=False)
        self.rows += len(frame)

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._csv is not None:
            self._csv.close()
            self._csv = None

    def commit(self, empty: pd.DataFrame) -> None:
        """Finish the file (with a header even without rows) and move it into place."""
        if self.rows == 0:
            self.write(empty)
        self._close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._close()
        if self.tmp.exists():
            self.tmp.unlink()


def user_batches(index: torch.Tensor, num_items: int, cells: int = CELLS) -> Iterator[slice]:
    """Slices of ``index`` holding at most ``cells`` users x items scores each."""
    step = max(1, cells // max(num_items, 1))
    for start in range(0, len(index), step):
        yield slice(start, start + step)


@torch.no_grad()
def stream_recommendations(model: Any, raw_users: Sequence[str] | np.ndarray, index: torch.Tensor,
                           k: int, writer: TopKWriter, exclude_seen: bool = True,
                           cells: int = CELLS,
                           progress: Callable[[int, int], None] | None = None) -> int:
    """Rank ``index`` (user indices, -1 for unknown ids, with their raw ids) in batches and
    write each batch's top-k rows; returns the number of rows written."""
    raw = np.asarray(raw_users, dtype=object)
    items_raw = np.asarray(model.item_map.raw, dtype=object)
    done = 0
    for part in user_batches(index, model.num_items, cells):
        top, scores = model.recommend(index[part], k, exclude_seen=exclude_seen)
        width = top.shape[1]
        finite = torch.isfinite(scores).reshape(-1).numpy()
        frame = pd.DataFrame({
            "user": np.repeat(raw[part], width),
            "rank": np.tile(np.arange(1, width + 1, dtype=np.int32), len(top)),
            "item": items_raw[top.reshape(-1).numpy()],
            "score": scores.reshape(-1).numpy().round(4),
        })
        writer.write(frame[finite] if not finite.all() else frame)
        done += len(top)
        if progress is not None:
            progress(done, len(index))
    return writer.rows


def progress_line(start: float) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` that rewrites one stderr line (users ranked, rate)."""

    def report(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - start, 1e-9)
        end = "\n" if done >= total else "\r"
        print(f"ranking users: {done}/{total} ({rate:,.0f} users/s)", end=end, file=sys.stderr,
              flush=True)

    return report
