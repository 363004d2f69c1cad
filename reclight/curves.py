"""Learning curves: rating errors against wall-clock training time, for any model.

:class:`LearningCurve` is a Lightning callback: after every training epoch it measures the
RMSE of the model on the training ratings, the validation ratings (when the data have a
validation carve) and the test ratings, with the core's metric (:class:`~reclight.metrics.
RatingErrors`: clipped predictions, unseen ids on the fallback), and records them against the
seconds the fit has run. Its own measuring is kept off the clock, so the seconds are what the
fit costs without it (validation epochs the Trainer runs are part of the fit and count).
Because it only calls ``predict_with_fallback``, every installed model gets curves without
code of its own. Implicit models have no ratings to measure: their rows hold only times.

:class:`PeakMemory` measures the most memory a block of code held above what it started
with: resident memory sampled from a thread on a CPU (torch's allocator keeps no statistics
there, and ``ru_maxrss`` is a high-water mark of the whole process, which the first of
several runs in one process would set), the allocator's peak on CUDA.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import lightning as L
import torch

from reclight.metrics import RatingErrors

# Pairs per prediction call. Small chunks keep each temporary in memory the allocator reuses:
# on the 2-core test box, scoring 72,000 MF pairs at once took 0.5-0.8 s (fresh pages for
# every 18 MB temporary), in chunks of 8192 about 10 ms.
CHUNK = 1 << 13


def rating_rmse(model: Any, ratings: Any) -> float:
    """RMSE of ``model`` on a :class:`~reclight.data.Ratings` set (NaN when empty), computed
    as the core's evaluation computes it, in eval mode and without gradients."""
    if ratings is None or len(ratings) == 0:
        return math.nan
    # Measured on rank 0 alone: no other rank would join a synchronisation.
    metric = RatingErrors(sync_on_compute=False).to(model.device)
    with torch.no_grad():
        for start in range(0, len(ratings), CHUNK):
            users = ratings.users[start:start + CHUNK].to(model.device)
            items = ratings.items[start:start + CHUNK].to(model.device)
            pred, unseen = model.predict_with_fallback(users, items)
            metric.update(pred, ratings.ratings[start:start + CHUNK].to(model.device), unseen)
    return float(metric.compute()["rmse"])


class LearningCurve(L.Callback):
    """Records ``{"epoch", "seconds", "train_rmse", "val_rmse", "test_rmse"}`` after every
    training epoch in ``rows`` (rank 0 only; see the module docstring)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self._start = 0.0
        self._paused = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rows = []
        self._start, self._paused = time.perf_counter(), 0.0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        now = time.perf_counter()
        row: dict[str, float] = {"epoch": trainer.current_epoch + 1,
                                 "seconds": now - self._start - self._paused}
        data = trainer.datamodule
        if getattr(pl_module, "feedback", "explicit") == "explicit" and data is not None:
            was_training = pl_module.training
            pl_module.eval()
            try:
                for name in ("train", "val", "test"):
                    row[f"{name}_rmse"] = rating_rmse(pl_module, getattr(data, name, None))
            finally:
                pl_module.train(was_training)
        self.rows.append(row)
        self._paused += time.perf_counter() - now


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.megabytes``: the most memory held above
    the level at entry (see the module docstring)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.megabytes = math.nan
        self._cuda = torch.cuda.is_available()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = self._peak = 0

    @staticmethod
    def resident_bytes() -> int | None:
        """The process's resident memory now (Linux /proc; None elsewhere)."""
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self.resident_bytes() or 0)

    def __enter__(self) -> PeakMemory:
        if self._cuda:
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        base = self.resident_bytes()
        if base is not None:
            self._base = self._peak = base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._cuda:
            self.megabytes = (torch.cuda.max_memory_allocated() - self._base) / 2**20
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self.resident_bytes() or 0)
            self.megabytes = (self._peak - self._base) / 2**20
