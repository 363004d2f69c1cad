"""Choose the ``mf`` defaults on validation data carved from the training folds.

For every configuration and every fold uN (MovieLens 100K u1..u5), trains on 90% of
uN.base and scores the other 10% (``RatingDataModule(split="uN", val_size=0.1, seed=0)``:
a seeded random carve of the training file). The uN.test files are never scored here;
``movielens_folds.py`` reports them once the defaults are fixed.

Each run goes through the real model class and a Lightning Trainer with the model's
``trainer_defaults`` (logging, checkpoints and the progress bar off; validation only after
the last epoch). A configuration is a JSON object of model arguments, plus optional
``max_epochs`` and ``batch_size``. Examples::

    python benchmarks/tune_mf.py --grid '{"dim": [32, 64], "reg": [0.1, 0.12]}'
    python benchmarks/tune_mf.py --configs '[{"lr": 0.05, "max_epochs": 40}]' --folds u1,u2

Output: one JSON line per configuration (mean and per-fold validation RMSE, mean fit
seconds), best last; ``--log FILE`` appends the lines to a file as well.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TRAINER_KEYS = ("max_epochs",)
DATA_KEYS = ("batch_size",)


def default_data_dir() -> Path:
    root = os.environ.get("RECLIGHT_DATA")
    return Path(root) / "ml-100k" if root else REPO.parent / "shared" / "data" / "ml-100k"


def validate_once(model_name: str, data_dir: Path, fold: str, config: dict[str, Any],
                  val_size: float, seed: int) -> tuple[float, float]:
    """Validation RMSE and fit seconds of one configuration on one fold."""
    import lightning as L

    from reclight.data import RatingDataModule
    from reclight.registry import get_registry

    cls = get_registry().get(model_name).load()
    model_kwargs = {k: v for k, v in config.items() if k not in TRAINER_KEYS + DATA_KEYS}
    data_kwargs = {**cls.data_defaults, **{k: config[k] for k in DATA_KEYS if k in config}}
    trainer_kwargs = {**cls.trainer_defaults, **{k: config[k] for k in TRAINER_KEYS if k in config}}
    L.seed_everything(seed, verbose=False)
    dm = RatingDataModule(source=str(data_dir), split=fold, val_size=val_size, seed=seed, **data_kwargs)
    model = cls(dm.training_data, **model_kwargs)
    epochs = trainer_kwargs.get("max_epochs") or 1
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, use_distributed_sampler=False,
                        check_val_every_n_epoch=epochs, **trainer_kwargs)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    return float(trainer.callback_metrics["val_rmse"]), seconds


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mf", help="registered model name (default mf)")
    parser.add_argument("--data", type=Path, default=None, help="MovieLens 100K folder")
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5")
    parser.add_argument("--grid", help="JSON object: argument -> list of values (all combinations)")
    parser.add_argument("--configs", help="JSON list of configurations")
    parser.add_argument("--val-size", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: robust timings on a shared 2-core machine)")
    parser.add_argument("--log", type=Path, help="also append the result lines to this file")
    args = parser.parse_args(argv)
    data_dir = args.data or default_data_dir()
    if not (data_dir / "u1.base").is_file():
        print(f"MovieLens 100K not found at {data_dir} (need u1.base ...); pass --data DIR or set "
              "RECLIGHT_DATA", file=sys.stderr)
        return 2
    configs: list[dict[str, Any]] = []
    if args.grid:
        configs += expand_grid(json.loads(args.grid))
    if args.configs:
        configs += json.loads(args.configs)
    configs = configs or [{}]
    import logging

    import lightning  # noqa: F401  (configures its loggers on import; quieten them after)
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    folds = args.folds.split(",")
    results = []
    for config in configs:
        runs = [validate_once(args.model, data_dir, fold, config, args.val_size, args.seed)
                for fold in folds]
        line = {"config": config, "val_rmse": round(statistics.mean(r[0] for r in runs), 4),
                "per_fold": [round(r[0], 4) for r in runs],
                "fit_s": round(statistics.median(r[1] for r in runs), 2)}
        results.append(line)
        print(json.dumps(line), flush=True)
        if args.log:
            with args.log.open("a") as fh:
                fh.write(json.dumps(line) + "\n")
    if len(results) > 1:
        best = min(results, key=lambda r: r["val_rmse"])
        print("best:", json.dumps(best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
