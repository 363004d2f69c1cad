"""Process-wide settings a reclight fit changes, and restores when it ends.

:class:`FitSettings` is a Lightning callback every :class:`~reclight.model.RecModel` brings
along (``configure_callbacks``), so the settings hold for any Trainer, the CLI's or a user's:

- denormal floats are flushed to zero: L2-regularised weights drift into subnormal values that
  CPUs process 20-50x more slowly (measured: an MF fit on MovieLens 100K went from 2 s to 47 s);
- torch's intra-op threads follow a model's ``cpu_threads`` on a CPU fit (models whose steps are
  a few sub-millisecond ops lose more to thread wake-ups than they gain);
- Lightning warnings that say nothing actionable about a reclight run are ignored: a solver has
  no optimiser, data without a validation set give Lightning an empty list of validation loaders
  (Lightning's documented way to have none), one full batch per epoch is less than the logging
  interval, and Lightning's own pytree code trips a deprecation of torch's.

Each is put back as it was at ``teardown``.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch

QUIET = (
    (r".*isinstance\(treespec, LeafSpec\)` is deprecated.*", FutureWarning),
    (r".*`LightningModule.configure_optimizers` returned `None`.*", UserWarning),
    (r".*is smaller than the logging interval.*", UserWarning),
    # an empty epoch on degenerate data (one user or item: no pairs, no negatives to draw)
    (r"Total length of `\w+` across ranks is zero.*", UserWarning),
)


def flush_denormal_enabled() -> bool:
    """Whether denormal results are flushed to zero on this thread right now."""
    return (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() == 0.0


class FitSettings(L.Callback):
    """Set the process-wide settings for a fit or test of ``model``, restore them after."""

    def __init__(self, cpu_threads: int | None = None) -> None:
        self.cpu_threads = cpu_threads
        self._saved: dict[str, Any] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._saved is not None:  # fit then test in one trainer: settings already in place
            return
        quiet = warnings.catch_warnings()  # the public way to save and restore the filters
        quiet.__enter__()
        self._saved = {"denormal": flush_denormal_enabled(), "warnings": quiet}
        torch.set_flush_denormal(True)
        for message, category in QUIET:
            warnings.filterwarnings("ignore", message=message, category=category)
        if stage == "fit" and self.cpu_threads and trainer.strategy.root_device.type == "cpu":
            self._saved["threads"] = torch.get_num_threads()
            torch.set_num_threads(self.cpu_threads)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        torch.set_flush_denormal(saved["denormal"])
        saved["warnings"].__exit__(None, None, None)
        if "threads" in saved:
            torch.set_num_threads(saved["threads"])
