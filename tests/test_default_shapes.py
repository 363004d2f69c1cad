"""Every registered explicit-feedback model's DEFAULTS beat the baseline (global mean + damped
biases) on small versions of the data shapes of reclight.shapes: like MovieLens 100K, ten times
more items than users, ten times more users than items, half-star ratings.

The full-size table is ``benchmarks/default_shapes.py`` (benchmarks/RESULTS.md); a model that
loses to the baseline on one of these shapes fails here. No model is named: the list is the
registry's.
"""

from __future__ import annotations

import pytest

from reclight.shapes import SHAPES, explicit_models, fit_defaults

# A tenth of the ratings (10,000; a fifth of the users and items, see Shape.scaled): enough
# ratings per row that the baseline's biases are well estimated, small enough that every
# model's full default fit takes seconds.
SCALE = 0.1


def test_the_shapes_are_the_documented_ones() -> None:
    small = {s.name: s.scaled(SCALE) for s in SHAPES}
    wide, tall = small["10x more items than users"], small["10x more users than items"]
    assert wide.items >= 9 * wide.users and tall.users >= 9 * tall.items
    assert small["half-star ratings (0.5..5)"].step == 0.5
    assert explicit_models(), "no explicit-feedback model is registered"


# In the default suite (issue 18: a model losing to the baseline is a failing test): 54 s
# on an idle 2-core box for the seven explicit models, the row autoencoders most of it.
@pytest.mark.parametrize("model", explicit_models())
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_defaults_beat_the_baseline(model: str, shape) -> None:
    result = fit_defaults(model, shape.scaled(SCALE).data_args())
    assert result.rmse < result.baseline, (
        f"{model}'s defaults lose to the baseline on synthetic data {shape.name} "
        f"({shape.scaled(SCALE)}): test RMSE {result.rmse:.4f} vs {result.baseline:.4f}")
