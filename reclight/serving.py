"""Predictions and recommendations from a checkpoint, in raw ids."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from reclight.checkpoints import load_model
from reclight.data.schema import normalise_id
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
                    exclude_seen: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Top-k (user, rank, item, score) rows; users unseen in training get the fallback ranking
    and are returned by id. Ids are normalised as training normalises them and each user is
    ranked once (``["1", "1 ", "2"]`` gives the rows of 1 and of 2)."""
    users = unique_ids(users)
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
    return rows, [u for u, i in zip(users, index.tolist()) if i < 0]


def unique_ids(users: list[str]) -> list[str]:
    """Raw user ids normalised (see :func:`reclight.data.schema.normalise_id`), each once, in
    the order given."""
    return list(dict.fromkeys(normalise_id(str(u)) for u in users))


def score_meaning(model: Any) -> str:
    """What ``recommend``'s score column holds for ``model``."""
    if model.feedback == "explicit":
        lo, hi = model.rating_range
        return f"the predicted rating, clipped to the rating range [{lo:g}, {hi:g}]"
    return "the model's ranking score (higher ranks first; not a rating, not clipped)"


@torch.no_grad()
def recommend_to_file(ckpt: str | Path, users: list[str] | None, k: int, output: str | Path,
                      exclude_seen: bool = True, progress: bool = True) -> tuple[int, list[str]]:
    """Top-k rows for ``users`` (None: every user known to the model) streamed to ``output``
    (CSV or Parquet by extension) in bounded memory; returns the rows written and the ids
    unknown to the model (which get the fallback ranking)."""
    from reclight.streaming import TopKWriter, progress_line, stream_recommendations

    model = load_model(ckpt).eval()
    if users is None:
        raw: Any = model.user_map.raw
        index = torch.arange(model.num_users)
        unknown: list[str] = []
    else:
        raw = users = unique_ids(users)
        index = torch.as_tensor(model.user_map.to_index(users))
        unknown = [u for u, i in zip(users, index.tolist()) if i < 0]
    writer = TopKWriter(output)
    try:
        rows = stream_recommendations(model, raw, index, k, writer, exclude_seen,
                                      progress=progress_line(time.perf_counter()) if progress
                                      else None)
        writer.commit(pd.DataFrame({"user": pd.Series([], dtype=str),
                                    "rank": pd.Series([], dtype="int32"),
                                    "item": pd.Series([], dtype=str),
                                    "score": pd.Series([], dtype="float32")}))
    except BaseException:
        writer.abort()
        raise
    return rows, unknown
