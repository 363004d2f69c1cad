"""``reclight ease-similar``: the items an EASE checkpoint links most strongly to given items.

EASE's weight B[i, j] is how much an interaction with item i adds to item j's score, so the
largest entries of row i are "people who took i are recommended these". The command reads a
checkpoint through reclight's public loader (:func:`reclight.checkpoints.load_model`, which
builds only registered model classes) and raises :class:`reclight.errors.ConfigError`, which
reclight prints as one line, for an id or checkpoint it cannot use.
"""

from __future__ import annotations

import click


@click.command(name="ease-similar")
@click.option("--ckpt", required=True, help="a checkpoint written by `reclight fit --model ease`")
@click.option("--items", required=True, help="comma-separated raw item ids, e.g. 50,181")
@click.option("-k", "k", default=10, show_default=True, help="items to list per item")
def similar(ckpt: str, items: str, k: int) -> None:
    """Items that EASE weights most from each given item (CSV: item,rank,similar_item,weight)."""
    import torch

    from reclight.checkpoints import load_model
    from reclight.errors import ConfigError
    from reclight_ease.model import EASE

    if k < 1:
        raise click.BadParameter(f"k={k}; it must be >= 1", param_hint="-k")
    model = load_model(ckpt)
    if not isinstance(model, EASE):
        raise ConfigError(f"'{ckpt}' holds a {type(model).__name__} model, not EASE; pass a "
                          "checkpoint written by `reclight fit --model ease`")
    raw = [part.strip() for part in items.split(",") if part.strip()]
    if not raw:
        raise ConfigError(f"--items {items!r} names no item; give raw ids such as 50,181")
    index = model.item_map.to_index(raw)
    unknown = [r for r, i in zip(raw, index) if i < 0]
    if unknown:
        raise ConfigError(f"item(s) {', '.join(unknown)} were not in the checkpoint's training "
                          f"data ({model.num_items} items); pass ids it was trained on")
    rows = torch.as_tensor(index, dtype=torch.int64)
    weights = model.weights[rows].clone()
    weights[torch.arange(len(rows)), rows] = float("-inf")  # an item is not similar to itself
    top = torch.topk(weights, min(k, model.num_items - 1), dim=1)
    click.echo("item,rank,similar_item,weight")
    for r, values, cols in zip(raw, top.values.tolist(), top.indices.tolist()):
        for rank, (value, col) in enumerate(zip(values, cols), start=1):
            click.echo(f"{r},{rank},{model.item_map.to_raw([col])[0]},{value:.6f}")
