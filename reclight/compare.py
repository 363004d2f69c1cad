"""`reclight compare`: several models, one data setting, one table."""

from __future__ import annotations

import pandas as pd

from reclight.runner import run_fit


def columns_of(record: dict) -> list[str]:
    """The table's metric columns for one run: rating errors, the ranking metrics at the first
    cut-off the run computed (``--eval_k``), and the fit time."""
    k = record["eval_k"][0]
    return ["test_rmse", "test_mae", f"test_ndcg@{k}", f"test_recall@{k}", "fit_seconds"]


def compare_models(names: list[str], flags: list[str]) -> pd.DataFrame:
    """Fit and test each model with the same flags; one row per model (a metric a model does
    not compute, such as RMSE for an implicit model, is left empty)."""
    rows, columns = [], None
    for name in names:
        record = run_fit(["--model", name, *flags], prog=f"reclight compare ({name})", quiet=True)
        columns = columns or columns_of(record)
        metrics = record["metrics"]
        rows.append({"model": name, **{c: metrics.get(c, float("nan")) for c in columns},
                     "run_dir": record["run_dir"]})
    return pd.DataFrame(rows)
