"""Predictions and recommendations from a checkpoint, in raw ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from reclight.checkpoints import load_model
from reclight.tables import read_pairs

CHUNK = 65536


@torch.no_grad()
def predict_pairs(ckpt: str | Path, input_path: str | Path) -> tuple[pd.DataFrame, int]:
    """Predictions for the pairs in ``input_path`` (column ``prediction``: clipped ratings of an
    explicit model; ``score`` for an implicit one, empty for unseen ids); also returns how many
    pairs fell back."""
    pairs = read_pairs(input_path)
    model = load_model(ckpt)
    users = torch.as_tensor(model.user_map.to_index(pairs["user"].to_numpy()))
    items = torch.as_tensor(model.item_map.to_index(pairs["item"].to_numpy()))
    preds, unseen = [], 0
    for start in range(0, len(users), CHUNK):
        pred, n = model.predict_with_fallback(users[start:start + CHUNK], items[start:start + CHUNK])
        preds.append(pred)
        unseen += n
    out = pairs.copy()
    column = "prediction" if model.feedback == "explicit" else "score"
    out[column] = torch.cat(preds).numpy().round(4) if preds else []
    return out, unseen


@torch.no_grad()
def recommend_users(ckpt: str | Path, users: list[str], k: int,
                    exclude_seen: bool = True) -> tuple[pd.DataFrame, int]:
    """Top-k (user, rank, item, score) rows; users unseen in training get the fallback ranking.

    Items are ranked by the model's raw scores; the score column of an explicit model shows
    the predicted rating clipped to the rating range (so items tied at the top of the scale
    keep the model's order), of an implicit model the ranking score itself.
    """
    model = load_model(ckpt)
    index = torch.as_tensor(model.user_map.to_index(users))
    top, scores = model.recommend(index, k, exclude_seen=exclude_seen)
    finite = torch.isfinite(scores)
    if model.feedback == "explicit":  # ranked by the raw scores, shown as clipped ratings
        lo, hi = model.rating_range
        scores = torch.where(finite, scores.clamp(lo, hi), scores)
    rows = pd.DataFrame({
        "user": [u for u in users for _ in range(top.shape[1])],
        "rank": list(range(1, top.shape[1] + 1)) * len(users),
        "item": model.item_map.to_raw(top.reshape(-1).numpy()),
        "score": scores.reshape(-1).numpy().round(4),
    })
    rows = rows[finite.reshape(-1).numpy()].reset_index(drop=True)
    rows.attrs["score"] = score_meaning(model)  # for the command to say what the column is
    return rows, int((index < 0).sum())


def score_meaning(model: Any) -> str:
    """What ``recommend``'s score column holds for ``model``."""
    if model.feedback == "explicit":
        lo, hi = model.rating_range
        return f"the predicted rating, clipped to the rating range [{lo:g}, {hi:g}]"
    return "the model's ranking score (higher ranks first; not a rating, not clipped)"
