"""Trainer precisions: every model trains and tests under 16-mixed and bf16-mixed on CPU, and a
precision a model does not declare is refused in one line naming the ones it supports
(:attr:`reclight.model.RecModel.precisions`, a capability the model declares, not a list of
model names)."""

from __future__ import annotations

import math
from pathlib import Path
import pytest

from reclight import cli
from reclight.data import RatingDataModule
from reclight.errors import ConfigError
from reclight.testing import low_rank_ratings, quiet_trainer

from .toy_plugin import MODELS, ToyBiases


# On CPU Lightning runs 16-mixed as bf16-mixed (it says so in a warning): one case of it.
@pytest.mark.parametrize("name, precision", [*((n, "bf16-mixed") for n in sorted(MODELS)),
                                             ("toy", "16-mixed")])
def test_every_model_trains_under_mixed_precision_on_cpu(name: str, precision: str) -> None:
    model_cls = MODELS[name]
    implicit = model_cls.feedback == "implicit"
    settings = {"test_size": 0.2, "batch_size": 64, **model_cls.data_defaults}
    dm = RatingDataModule(low_rank_ratings(30, 20, density=0.5, implicit=implicit), **settings)
    model = model_cls(dm.training_data)
    if precision == "16-mixed":  # Lightning says it runs bf16 instead: expected, and checked
        with pytest.warns(UserWarning, match="Using `precision='bf16-mixed'` instead"):
            trainer = quiet_trainer(max_epochs=1, precision=precision)
    else:
        trainer = quiet_trainer(max_epochs=1, precision=precision)
    trainer.fit(model, datamodule=dm)
    metrics = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert metrics and all(math.isfinite(float(v)) for v in metrics.values())


def test_an_undeclared_precision_is_refused_naming_the_supported_ones() -> None:
    dm = RatingDataModule(low_rank_ratings(30, 20, density=0.5), test_size=0.2)
    with pytest.raises(ConfigError, match=r"--trainer.precision bf16-true: ToyBiases supports "
                                          r"32-true, 16-mixed, bf16-mixed"):
        quiet_trainer(max_epochs=1, precision="bf16-true").fit(ToyBiases(dm.training_data),
                                                               datamodule=dm)


class BFloat16Biases(ToyBiases):
    precisions = (*ToyBiases.precisions, "bf16-true")


def test_a_model_declaring_a_true_precision_runs_under_it() -> None:
    dm = RatingDataModule(low_rank_ratings(30, 20, density=0.5), test_size=0.2)
    model = BFloat16Biases(dm.training_data)
    trainer = quiet_trainer(max_epochs=1, precision="bf16-true")
    trainer.fit(model, datamodule=dm)
    assert math.isfinite(trainer.test(model, datamodule=dm, verbose=False)[0]["test_rmse"])


@pytest.mark.usefixtures("toy_registry")
def test_the_cli_refusal_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fit", "--model", "toy", "--data.synthetic_ratings", "1000",
                  "--trainer.max_epochs", "1", "--trainer.precision", "bf16-true",
                  "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
                  "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("reclight: error:")]
    assert len(errors) == 1 and "supports 32-true, 16-mixed, bf16-mixed" in errors[0], err
