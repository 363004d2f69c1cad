"""The picture of `reclight compare`: held-out RMSE against training seconds (matplotlib).

Importing this module needs matplotlib (the ``reclight[plot]`` extra); :mod:`reclight.compare`
writes its CSVs without it. One colour per model; per epoch, the mean over the folds of the
seconds and of the RMSE, with a band from the lowest to the highest fold; held-out RMSE solid
(test, or validation where there is no test), training RMSE dotted and faint. Seconds are on a
log axis, because models differ by orders of magnitude in cost.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
import pandas as pd  # noqa: E402

# 10 x 6 inches at 120 dpi: 1200 x 720 pixels, readable when shown at half size.
FIGSIZE = (10.0, 6.0)
DPI = 120


def _per_epoch(curve: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean seconds and mean/min/max of ``column`` over the folds, per epoch."""
    valid = curve.dropna(subset=[column])
    grouped = valid.groupby("epoch")
    return pd.DataFrame({"seconds": grouped["seconds"].mean(), "mean": grouped[column].mean(),
                         "low": grouped[column].min(), "high": grouped[column].max()})


def held_out_column(curves: pd.DataFrame) -> str:
    for column in ("test_rmse", "val_rmse"):
        if column in curves and curves[column].notna().any():
            return column
    return "test_rmse"


def plot_curves(curves: pd.DataFrame, out: Path, title: str) -> list[Path]:
    """Draw ``rmse_vs_time.png`` and ``.svg`` into ``out`` from results.csv rows; returns
    the paths written (none when no model has an RMSE curve)."""
    held = held_out_column(curves)
    models = [m for m in dict.fromkeys(curves["model"]) if curves.loc[curves["model"] == m, held].notna().any()]
    if not models:
        return []
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    colours = plt.get_cmap("tab10")
    finals, lows = [], []
    # Say the number of folds where there are several: a model run on a subset shows it.
    several = curves["fold"].nunique() > 1
    for index, model in enumerate(models):
        colour = colours(index % 10)
        curve = curves[curves["model"] == model]
        folds = curve["fold"].nunique()
        line = _per_epoch(curve, held)
        label = (f"{model} ({line['mean'].iloc[-1]:.4f}"
                 + (f", {folds} fold{'s' if folds > 1 else ''})" if several else ")"))
        ax.plot(line["seconds"], line["mean"], color=colour, lw=2.0, label=label)
        ax.fill_between(line["seconds"], line["low"], line["high"], color=colour, alpha=0.18, lw=0)
        finals.append(line["mean"].iloc[-1])
        lows.append(line["low"].min())
        if curve["train_rmse"].notna().any():
            train = _per_epoch(curve, "train_rmse")
            ax.plot(train["seconds"], train["mean"], color=colour, lw=1.2, ls=":", alpha=0.6)
            lows.append(train["mean"].min())
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    # From just below the lowest curve to a little above the worst final held-out figure:
    # the first epochs of a model (often far above) would otherwise flatten every curve.
    top = max(finals) + max(0.12, 0.5 * (max(finals) - min(finals)))
    bottom = min(lows) - 0.02
    if math.isfinite(top) and math.isfinite(bottom) and top > bottom:
        ax.set_ylim(bottom, top)
    ax.set_xlabel("training seconds (wall clock, log scale)", fontsize=12)
    name = "test" if held == "test_rmse" else "validation"
    ax.set_ylabel(f"RMSE ({name} solid, training dotted)", fontsize=12)
    ax.set_title(title, fontsize=12)
    ax.grid(True, which="both", alpha=0.3)
    ax.tick_params(labelsize=11)
    # Beside the axes, not on them: with many models any corner inside holds some curve.
    ax.legend(title=f"model (final mean\n{name} RMSE)", fontsize=11, title_fontsize=11,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    paths = [out / "rmse_vs_time.png", out / "rmse_vs_time.svg"]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths
