"""cdae's step cap (``max_steps`` beside ``max_epochs`` in its trainer defaults) on the two
synthetic shapes of :mod:`reclight.shapes` whose steps per epoch differ most.

    python benchmarks/cdae_steps.py --steps 320,480

Each shape is read as interactions (ratings >= 4), split 80/20 at random (seed 0), and fitted
through a Lightning Trainer as ``reclight fit`` does (CDAE's data defaults, one torch thread)
with ``max_epochs 40`` and each ``max_steps`` listed; it prints training popularity's NDCG@10
and each fit's steps, epochs, NDCG@10 (full ranking, training items excluded) and seconds.
These are the figures of the plugin README's "step cap" table.
"""

from __future__ import annotations

import argparse
import time

import torch

from reclight.data import RatingDataModule
from reclight.shapes import SHAPES
from reclight.testing import heldout_ndcg, popularity_ndcg, quiet_trainer
from reclight_cdae.model import CDAE

SHAPE_NAMES = ("10x more users than items", "10x more items than users")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="320,480", help="max_steps values, comma-separated")
    parser.add_argument("--epochs", type=int, default=40, help="max_epochs of every fit")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in SHAPE_NAMES:
        shape = next(s for s in SHAPES if s.name == name)
        dm = RatingDataModule(**{**shape.data_args(), "implicit_threshold": 4, "test_size": 0.2,
                                 **CDAE.data_defaults})
        print(f"{name}: popularity NDCG@10 {popularity_ndcg(dm):.4f}", flush=True)
        for steps in (int(s) for s in args.steps.split(",")):
            torch.manual_seed(0)
            model = CDAE(dm.training_data)
            start = time.perf_counter()
            trainer = quiet_trainer(max_epochs=args.epochs, max_steps=steps)
            trainer.fit(model, datamodule=dm)
            print(f"  max_steps {steps}: steps {trainer.global_step} epochs {trainer.current_epoch}"
                  f" NDCG@10 {heldout_ndcg(model, dm):.4f} fit {time.perf_counter() - start:.1f} s",
                  flush=True)


if __name__ == "__main__":
    main()
