"""EASE on MovieLens 100K u1: lambda chosen on a validation carve of u1.base, then u1.test.

    python benchmarks/u1.py --data /path/to/ml-100k [--grid 50,100,250,500,1000]

1. Validation: trains on a seeded random 80% of u1.base (``split="random"``, ``test_size=0.2``,
   ``seed=0``: u1.test is never read here) and scores NDCG@10 on the other 20%, for every
   lambda of the grid, the protocol of the test below (full ranking, training items excluded,
   every held-out rating relevant).
2. Test: the lambda with the best validation NDCG@10 trains on all of u1.base and is scored on
   u1.test, as ``reclight fit --model ease --data DIR --data.split u1 --model.l2 L`` does.

Everything goes through reclight's public API: ``RatingDataModule``, the registry's model
class, ``configure_for`` and a plain ``lightning.Trainer``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightning as L

from reclight.data import RatingDataModule
from reclight_ease.model import EASE


def score(source: str, split: str, l2: float, **data: object) -> tuple[dict[str, float], float]:
    """Test metrics and fit seconds of EASE(l2) on one split."""
    dm = RatingDataModule(source=source, split=split, seed=0, **data)
    model = EASE(dm.training_data, l2=l2)
    dm.configure_for(model)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    trainer.test(model, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the MovieLens 100K folder (u1.base, u1.test)")
    parser.add_argument("--grid", default="25,50,100,150,200,250,300,400,500,750,1000,2000",
                        help="comma-separated lambdas")
    args = parser.parse_args()
    folder = Path(args.data)
    grid = [float(v) for v in args.grid.split(",")]
    print("validation carve of u1.base (80/20, seed 0):")
    print("| lambda | val NDCG@10 | val Recall@10 | fit s |\n|---|---|---|---|")
    best = (-1.0, grid[0])
    for l2 in grid:
        metrics, seconds = score(str(folder / "u1.base"), "random", l2, test_size=0.2)
        print(f"| {l2:g} | {metrics['test_ndcg@10']:.4f} | {metrics['test_recall@10']:.4f} "
              f"| {seconds:.2f} |", flush=True)
        best = max(best, (metrics["test_ndcg@10"], l2))
    l2 = best[1]
    metrics, seconds = score(str(folder), "u1", l2)
    print(f"\nu1 (train u1.base, test u1.test), lambda {l2:g} chosen on validation:")
    print("| model | NDCG@10 | Recall@10 | Precision@10 | HR@10 | fit s |\n|---|---|---|---|---|---|")
    print(f"| reclight-ease, lambda {l2:g} | {metrics['test_ndcg@10']:.4f} | "
          f"{metrics['test_recall@10']:.4f} | {metrics['test_precision@10']:.4f} | "
          f"{metrics['test_hit@10']:.4f} | {seconds:.2f} |")
    print("| RecBole 1.2.1 ItemKNN (anchor, ANCHORS.md) | 0.4920 | 0.1615 | 0.4505 | 0.9434 | 0.6 |")


if __name__ == "__main__":
    main()
