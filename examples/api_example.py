"""reclight from Python, without the `reclight` command: a DataFrame, a model, a Lightning
Trainer, predictions and recommendations.

    python examples/api_example.py                      # a small generated data set
    python examples/api_example.py --ratings u.data     # any ratings file pandas can read

Every name used here is reclight's public API (see the README's "Using reclight from Python").
"""

from __future__ import annotations

import argparse

import lightning as L
import numpy as np
import pandas as pd
import torch

from reclight.data import RatingDataModule
from reclight.registry import get_registry


def example_frame(num_users: int = 200, num_items: int = 100, seed: int = 0) -> pd.DataFrame:
    """Ratings 1..5 from user and item tastes in two dimensions, 30% of the cells observed."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(num_users, 2)) @ rng.normal(size=(2, num_items))
    users, items = np.nonzero(rng.random((num_users, num_items)) < 0.3)
    ratings = np.clip(np.rint(3 + taste[users, items]), 1, 5)
    return pd.DataFrame({"user": [f"u{u}" for u in users], "item": [f"i{i}" for i in items],
                         "rating": ratings})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", help="a tab-separated user, item, rating file (MovieLens u.data)")
    parser.add_argument("--model", default="mf", help="any installed model (`reclight models`)")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    frame = (pd.read_csv(args.ratings, sep="\t", names=["user", "item", "rating", "timestamp"])
             if args.ratings else example_frame())
    # The DataModule reads the DataFrame (columns user, item, rating[, timestamp]), maps the
    # ids, and holds out a seeded 10% of the ratings for the test.
    dm = RatingDataModule(source=frame, split="random", test_size=0.1, seed=0)

    L.seed_everything(0, verbose=False)
    model_class = get_registry().get(args.model).load()  # or import the class from its plugin
    model = model_class(dm.training_data)                 # the model's documented defaults
    dm.configure_for(model)                               # the data view the model trains on

    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    metrics = trainer.test(model, datamodule=dm, verbose=False)[0]
    shown = {k: round(v, 4) for k, v in metrics.items() if k in ("test_rmse", "test_ndcg@10")}
    print(f"{args.model} test metrics: {shown}")

    # Predictions for raw ids: map them with the training data's id maps (-1: unseen, which
    # the fallback predicts from the global mean and the known side's bias).
    users, items = frame["user"].astype(str)[:3].tolist(), frame["item"].astype(str)[:3].tolist()
    pairs = (torch.as_tensor(model.user_map.to_index(users + ["new-user"])),
             torch.as_tensor(model.item_map.to_index(items + items[:1])))
    predictions, unseen = model.predict_with_fallback(*pairs)
    for user, item, value in zip(users + ["new-user"], items + items[:1], predictions.tolist()):
        print(f"predicted {user} x {item}: {value:.3f}")
    print(f"{unseen} prediction(s) used the fallback for unseen ids")

    # Top-5 items for one user, items they rated in training excluded.
    top_items, scores = model.recommend(torch.as_tensor(model.user_map.to_index(users[:1])), k=5)
    recommended = model.item_map.to_raw(top_items[0].numpy()).tolist()
    print(f"top 5 for {users[0]}: {recommended}")


if __name__ == "__main__":
    main()
