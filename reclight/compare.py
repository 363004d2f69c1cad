"""`reclight compare`: several models, one data setting, one table."""

from __future__ import annotations

import pandas as pd

from reclight.runner import run_fit

COLUMNS = ("test_rmse", "test_mae", "test_ndcg@10", "test_recall@10", "fit_seconds")


def compare_models(names: list[str], flags: list[str]) -> pd.DataFrame:
    """Fit and test each model with the same flags; one row per model."""
    rows = []
    for name in names:
        record = run_fit(["--model", name, *flags], prog=f"reclight compare ({name})", quiet=True)
        metrics = record["metrics"]
        rows.append({"model": name, **{c: metrics.get(c, float("nan")) for c in COLUMNS},
                     "run_dir": record["run_dir"]})
    return pd.DataFrame(rows)
