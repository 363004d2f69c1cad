"""Progress for logs: one line per training epoch when stdout is not a terminal.

Lightning's progress bars redraw one line with carriage returns, which a log file (CI, ``> log``,
``nohup``) keeps as hundreds of frames. :class:`EpochLines` is a Lightning ``ProgressBar``, so
the Trainer uses it instead of its own bar; in a terminal reclight leaves Lightning's bar.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from lightning.pytorch.callbacks import ProgressBar


class EpochLines(ProgressBar):
    """One line per training epoch on stdout: ``epoch 3/50  train_loss 0.8123  val_rmse 0.9345
    1.21s`` (the model's validation metric when there is a validation set);
    ``--trainer.enable_progress_bar false`` silences it like any progress bar."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._enabled = True
        self._stream = stream
        self._start = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        metrics = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}"
                 + (f"/{trainer.max_epochs}" if (trainer.max_epochs or -1) > 0 else "")]
        monitor = getattr(pl_module, "monitor", None)
        for key in ("train_loss", monitor):
            if key and key in metrics:
                parts.append(f"{key} {float(metrics[key]):.4f}")
        parts.append(f"{time.perf_counter() - self._start:.2f}s")
        print("  ".join(parts), file=self._stream or sys.stdout, flush=True)
