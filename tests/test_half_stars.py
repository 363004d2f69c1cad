"""Half stars and other non-integer rating scales: read exactly, the range inferred, every
prediction clipped to it (pairs, evaluation, predict, recommend), metrics exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reclight import cli
from reclight.data import RatingDataModule
from reclight.fallback import predict_with_fallback
from reclight.testing import low_rank_ratings

from . import toy_plugin

pytestmark = pytest.mark.usefixtures("toy_registry")
SCALES = [(0.5, 5.0, 0.5), (1.0, 10.0, 0.25), (-2.0, 2.0, 0.1)]


def scaled(lo: float, hi: float, step: float) -> pd.DataFrame:
    """Low-rank ratings mapped onto [lo, hi] in multiples of step from lo."""
    frame = low_rank_ratings(40, 30)
    r = frame["rating"].to_numpy(dtype=np.float64)
    unit = (r - r.min()) / (r.max() - r.min())
    frame["rating"] = lo + np.round(unit * (hi - lo) / step) * step
    return frame


@pytest.mark.parametrize("lo, hi, step", SCALES)
def test_scale_is_read_exactly_and_predictions_are_clipped_to_it(lo: float, hi: float,
                                                                 step: float, tmp_path: Path) -> None:
    frame = scaled(lo, hi, step)
    frame.to_csv(tmp_path / "r.csv", index=False)
    dm = RatingDataModule(source=str(tmp_path / "r.csv"), test_size=0.2)
    assert dm.rating_range == pytest.approx((lo, hi))
    got = np.sort(np.concatenate([dm.train.ratings.numpy(), dm.test.ratings.numpy()]))
    assert np.allclose(got, np.sort(frame["rating"].to_numpy(np.float32)), atol=1e-6)

    model = toy_plugin.ToyMF(dm.training_data)
    wild = torch.linspace(lo - 3.0, hi + 3.0, len(dm.test))  # far outside the scale both ways
    model.predict_ratings = lambda users, items: wild[: len(users)]  # type: ignore[method-assign]
    pred, _ = predict_with_fallback(model, dm.test.users, dm.test.items)
    assert float(pred.min()) == pytest.approx(lo) and float(pred.max()) == pytest.approx(hi)

    # The evaluation's exact RMSE/MAE on the clipped predictions.
    batch = {"users": dm.test.users, "items": dm.test.items, "ratings": dm.test.ratings}
    model.evaluation.update("test", model, batch)
    results = model.evaluation.results("test")
    err = (pred - dm.test.ratings).double()
    assert float(results["test_rmse"]) == pytest.approx(float(err.pow(2).mean().sqrt()), rel=1e-5)
    assert float(results["test_mae"]) == pytest.approx(float(err.abs().mean()), rel=1e-5)


def test_half_stars_through_fit_predict_and_recommend(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    frame = scaled(0.5, 5.0, 0.5)
    frame.to_csv(tmp_path / "half.csv", index=False)

    def run(*args: str) -> tuple[str, str]:
        with pytest.raises(SystemExit) as done:
            cli.main(list(args))
        out, err = capsys.readouterr()
        assert done.value.code in (0, None), err
        return out, err

    out, _ = run("fit", "--model", "toy", "--data", str(tmp_path / "half.csv"),
                 "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.max_epochs", "20")
    record = json.loads((Path(out.split("run dir: ")[1].split()[0]) / "metrics.json").read_text())
    assert record["metrics"]["test_rmse"] < record["baseline"]["test_rmse"] * 1.5
    ckpt = record["checkpoint"]
    pairs = tmp_path / "pairs.csv"
    frame[["user", "item"]].head(50).to_csv(pairs, index=False)
    run("predict", "--ckpt", ckpt, "--input", str(pairs), "--output", str(tmp_path / "p.csv"))
    preds = pd.read_csv(tmp_path / "p.csv")["prediction"]
    assert preds.between(0.5, 5.0).all()
    out, err = run("recommend", "--ckpt", ckpt, "--users", "1,2,3", "-k", "5")
    scores = pd.read_csv(__import__("io").StringIO(out))["score"]
    assert len(scores) == 15 and scores.between(0.5, 5.0).all()
    assert "score: the predicted rating, clipped to the rating range [0.5, 5]" in err
