"""Validation search for the ``cdae`` defaults: MovieLens 100K ``u1.base`` only, never ``u1.test``.

    python benchmarks/cdae_search.py --epochs 10,20,40 --grid '[{}, {"hidden": 64}]'

``u1.base`` is carved into training and validation interactions, seeded:

- ``users`` (the default): half of the users, drawn at random, each hold out 40% of their
  interactions; the other half keep all of theirs. This is the shape of ``u1.test`` itself
  (it holds 39-43% of the ratings of 459 of the 943 users, and none of the others'), so a
  validation NDCG here is on the same footing as the test figure.
- ``random``: 20% of all interactions at random (``benchmarks/topn.py tune``'s carve, which
  overstated the gain over popularity on ``u1.test``).

Each setting trains the model exactly as ``reclight fit`` would (its own ``training_loss`` on
the view it declares, its optimiser, one torch thread as the model declares), with
``batch_size`` taken from the setting or the model's ``data_defaults``, and is scored with
reclight's top-N metric function (NDCG@10, full ranking, training items excluded) at each epoch
listed. The first row is training popularity on the same carve; ``--recbole EPOCHS`` adds
RecBole's CDAE (its defaults, scored by its own evaluator, in this process's one thread) on the
same carve; ``--synthetic USERS,ITEMS,RATINGS`` checks settings on synthetic data instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import reclight  # noqa: F401  first: it sets OMP_WAIT_POLICY before anything loads torch

import numpy as np
import pandas as pd
import torch

from reclight.data import RatingDataModule
from reclight.metrics import topn_at
from reclight.registry import get_registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from topn import data_dir, recbole_rows  # noqa: E402  (the benchmark's data lookup, RecBole)


def carve(base: pd.DataFrame, kind: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, validation) interactions of ``u1.base``, seeded."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        held = rng.random(len(base)) < 0.2
    elif kind == "users":
        users = base["user"].unique()
        chosen = set(rng.choice(users, size=len(users) // 2, replace=False).tolist())
        held = np.zeros(len(base), dtype=bool)
        for user, rows in base.groupby("user").indices.items():
            if user in chosen:
                take = rng.choice(rows, size=int(round(0.4 * len(rows))), replace=False)
                held[take] = True
    else:
        sys.exit(f"unknown carve '{kind}'; choose users or random")
    return base[~held], base[held]


def validation_data(fold: str, kind: str, seed: int, tmp: Path) -> RatingDataModule:
    cols = ["user", "item", "rating", "timestamp"]
    base = pd.read_csv(data_dir() / f"{fold}.base", sep="\t", names=cols)
    train, val = carve(base, kind, seed)
    paths = []
    for name, part in (("base", train), ("test", val)):  # u1.base's format, for RecBole too
        paths.append(tmp / f"carve.{name}")
        part.to_csv(paths[-1], sep="\t", header=False, index=False)
    return RatingDataModule(train=str(paths[0]), test=str(paths[1]))


def val_ndcg(dm: RatingDataModule, scores_of, k: int = 10) -> float:
    held = dm.test
    known = held.known()
    users = torch.unique(held.users[known])
    targets = torch.zeros(dm.num_users, dm.num_items, dtype=torch.bool)
    targets[held.users[known], held.items[known]] = True
    _, seen = dm.training_data.matrix.dense(users)
    with torch.no_grad():
        scores = torch.as_tensor(scores_of(users)).float().masked_fill(seen, float("-inf"))
    return float(topn_at(scores, targets[users], [k])[k]["ndcg"].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cdae")
    parser.add_argument("--fold", default="u1")
    parser.add_argument("--carve", default="users", help="users (default) or random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the carve and the model")
    parser.add_argument("--epochs", default="10,20,40", help="epochs at which to score")
    parser.add_argument("--grid", default="[{}]", help="JSON list of hyper-parameter dicts")
    parser.add_argument("--synthetic", default="", metavar="USERS,ITEMS,RATINGS",
                        help="instead of the carve: synthetic ratings of that shape, ratings >= 4 "
                             "as the interactions, a random 20%% held out (a shape to check the "
                             "defaults on, not to tune them)")
    parser.add_argument("--recbole", type=int, default=0, metavar="EPOCHS",
                        help="also RecBole's CDAE (its defaults) on the same carve, EPOCHS epochs")
    args = parser.parse_args()
    report = sorted(int(e) for e in args.epochs.split(","))
    cls = get_registry().get(args.model).load()
    torch.set_num_threads(cls.cpu_threads or torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            users, items, ratings = (int(v) for v in args.synthetic.split(","))
            dm = RatingDataModule("synthetic", synthetic_users=users, synthetic_items=items,
                                  synthetic_ratings=ratings, implicit_threshold=4,
                                  test_size=0.2, seed=args.seed)
            args.carve = f"synthetic {users}x{items}, {ratings} ratings, >= 4"
        else:
            dm = validation_data(args.fold, args.carve, args.seed, Path(tmp))
        pop = dm.training_data.matrix.dense(torch.arange(dm.num_users))[1].sum(0).float()
        print(f"{'' if args.synthetic else args.fold + '.base '}carve '{args.carve}' seed {args.seed}: {len(dm.train)} training "
              f"/ {len(dm.test)} validation interactions; load {os.getloadavg()[0]:.1f}; "
              f"{torch.get_num_threads()} thread(s)\n| settings | "
              + " | ".join(f"ep {e}" for e in report) + " | s/epoch |\n|---|"
              + "---|" * (len(report) + 1))
        print(f"| training popularity | {val_ndcg(dm, lambda u: pop.expand(len(u), -1)):.4f} |",
              flush=True)
        if args.recbole:
            start = time.perf_counter()
            row = recbole_rows(Path(tmp), "carve", ["CDAE"], {"CDAE": args.recbole}, dm)["CDAE"]
            print(f"| RecBole CDAE, its defaults, {args.recbole} epochs (its evaluator) | "
                  f"{row['ndcg']:.4f} | {(time.perf_counter() - start) / args.recbole:.3f} |",
                  flush=True)
        for settings in json.loads(args.grid):
            shown = dict(settings)
            torch.manual_seed(args.seed)
            batch = settings.pop("batch_size", None)
            model = cls(dm.training_data, **settings)
            dm.batch_size = batch or model.data_defaults.get("batch_size", 1024)
            dm.configure_for(model)
            optimizer = model.configure_optimizers()
            curve, train_s = [], 0.0
            for epoch in range(1, report[-1] + 1):
                start = time.perf_counter()
                model.train()
                dm.trainer = SimpleNamespace(current_epoch=epoch - 1)  # a fresh shuffle
                for batch_data in dm.train_dataloader():
                    loss = model.training_loss(batch_data)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                train_s += time.perf_counter() - start
                if epoch in report:
                    model.eval()
                    curve.append(val_ndcg(dm, model.score_items))
            print(f"| {json.dumps(shown)} | " + " | ".join(f"{v:.4f}" for v in curve)
                  + f" | {train_s / report[-1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
