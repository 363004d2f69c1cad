"""Defaults across data shapes: every explicit model's DEFAULTS against the baseline.

Rows: MovieLens 100K ``u1`` and the seeded synthetic shapes of :mod:`reclight.shapes` (like
MovieLens 100K, 10x more items than users, 10x more users than items, half-star ratings), each
with a 90/10 random split. Every registered explicit-feedback model is fitted exactly as
``reclight fit --model NAME`` fits it (its data and trainer defaults, seed 0) and its test RMSE
is printed next to the baseline's (global mean + damped biases, the core's fallback) on the same
test ratings; Surprise SVD (defaults) runs on the same split in the same run when installed,
with the ratio of fit times. Target: every model beats the baseline in every row.

    .venv/bin/python benchmarks/default_shapes.py
    .venv/bin/python benchmarks/default_shapes.py --models autorec,deeprec --scale 0.1 --write
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import reclight  # noqa: F401  first: it sets OMP_WAIT_POLICY before anything loads torch
from reclight.shapes import SHAPES, DefaultsResult, explicit_models, fit_defaults

sys.path.insert(0, str(Path(__file__).resolve().parent))
from movielens_folds import default_data_dir, machine, surprise_available, write_section  # noqa: E402

TITLE = "Issue 18: defaults across data shapes"


def surprise_svd(data_args: dict) -> DefaultsResult:
    """Surprise SVD (defaults) on the same split as the models: its test RMSE and fit time."""
    import numpy as np
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    from reclight.data import RatingDataModule
    from reclight.shapes import baseline_rmse

    dm = RatingDataModule(**data_args)
    lo, hi = dm.rating_range
    tr = dm.train
    frame = pd.DataFrame({"u": tr.users.numpy(), "i": tr.items.numpy(), "r": tr.ratings.numpy()})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(lo, hi))).build_full_trainset()
    algo = SVD(random_state=0)
    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    test = dm.test
    # Unseen ids get an index Surprise never saw, so it predicts its own fallback for them.
    pred = np.array([algo.predict(int(u), int(i)).est for u, i in
                     zip(test.users.tolist(), test.items.tolist())])
    rmse = float(np.sqrt(np.mean((pred - test.ratings.numpy()) ** 2)))
    return DefaultsResult("Surprise SVD", rmse, baseline_rmse(
        dm.training_data, test.users, test.items, test.ratings), seconds)


def data_sets(scale: float, ml100k: Path | None) -> list[tuple[str, dict]]:
    rows = []
    if ml100k is not None:
        rows.append(("MovieLens 100K u1", {"source": str(ml100k), "split": "u1"}))
    for shape in SHAPES:
        s = shape.scaled(scale) if scale != 1 else shape
        rows.append((f"synthetic, {s.name}: {s.users} x {s.items}, {s.ratings:,} ratings",
                     s.data_args()))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="", help="comma-separated models (default: every "
                        "registered explicit-feedback model)")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the synthetic shapes")
    parser.add_argument("--no-ml100k", action="store_true", help="skip the MovieLens 100K row")
    parser.add_argument("--write", action="store_true", help="record the table in RESULTS.md")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    models = [m.strip() for m in args.models.split(",") if m.strip()] or explicit_models()
    ml = None if args.no_ml100k else default_data_dir()
    if ml is not None and not (ml / "u1.base").is_file():
        print(f"default_shapes: MovieLens 100K not found at {ml}; set RECLIGHT_DATA or pass "
              "--no-ml100k", file=sys.stderr)
        return 2
    with_svd = surprise_available()
    head = "| data | baseline RMSE | " + " | ".join(f"{m} RMSE (gain)" for m in models)
    head += " | Surprise SVD RMSE |" if with_svd else " |"
    times = "| data | " + " | ".join(f"{m} fit s" for m in models)
    times += " | Surprise SVD fit s | " + " | ".join(f"{m} / SVD" for m in models) + " |" \
        if with_svd else " |"
    lines, tlines, losers = [head, "|---" * (head.count("|") - 1) + "|"], \
        [times, "|---" * (times.count("|") - 1) + "|"], []
    for label, data_args in data_sets(args.scale, ml):
        results = [fit_defaults(m, data_args) for m in models]
        svd = surprise_svd(data_args) if with_svd else None
        base = results[0].baseline
        cells = [f"{r.rmse:.4f} ({100 * r.gain:+.1f}%)" + ("" if r.rmse < r.baseline else " **loses**")
                 for r in results]
        losers += [f"{r.model} on {label}" for r in results if r.rmse >= r.baseline]
        line = f"| {label} | {base:.4f} | " + " | ".join(cells)
        line += f" | {svd.rmse:.4f} |" if svd else " |"
        tline = f"| {label} | " + " | ".join(f"{r.fit_seconds:.1f}" for r in results)
        tline += (f" | {svd.fit_seconds:.2f} | " + " | ".join(
            f"{r.fit_seconds / svd.fit_seconds:.1f}" for r in results) + " |") if svd else " |"
        lines.append(line)
        tlines.append(tline)
        print(line, file=sys.stderr, flush=True)
    load = os.getloadavg()
    body = lines + ["", "Fit seconds (and the ratio to Surprise SVD's in the same run):", ""] + tlines
    body += ["", f"Load average during the run (1/5/15 min at the end): {load[0]:.1f} / "
             f"{load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores.",
             "Every model beats the baseline in every row." if not losers else
             "Losing to the baseline: " + "; ".join(losers) + "."]
    print("\n".join(body))
    if args.write:
        command = "python benchmarks/default_shapes.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
        write_section(TITLE, [f"Machine: {machine()}.", f"Command: `{command.strip()}`", ""] + body)
    return 1 if losers else 0


if __name__ == "__main__":
    sys.exit(main())
