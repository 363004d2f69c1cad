"""Write examples/configs/<model>.yaml: a model's documented defaults on MovieLens 100K u1.

    python examples/configs/generate.py mf autorec deeprec      # (re)write those configs

Each file holds what ``reclight fit --model NAME --print_config`` resolves for the model (every
hyper-parameter at its default, the model's ``trainer_defaults`` and ``data_defaults``), with
the data set to MovieLens 100K's canonical fold u1. Run one with
``reclight fit --config examples/configs/NAME.yaml`` (``--data DIR`` points at another copy of
the data; any flag after the config overrides it). ``tests/test_examples.py`` checks that
every config parses and still holds the model's current defaults.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DATA = {"source": "ml-100k", "split": "u1"}
TRAINER_KEYS = ("max_epochs",)


def resolved(name: str, *extra: str) -> dict[str, Any]:
    """The configuration ``reclight fit --model NAME --print_config`` prints, as a dict."""
    from reclight import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.main(["fit", "--model", name, *extra, "--print_config"])
    return yaml.safe_load(out.getvalue())


def config_for(name: str) -> dict[str, Any]:
    """The example config of model ``name``: its defaults, the u1 data, the epochs it trains."""
    full = resolved(name)
    model = {"name": name, **{k: v for k, v in full["model"].items() if k != "name"}}
    data = {**DATA, **{k: full["data"][k] for k in ("batch_size",) if k in full["data"]}}
    return {"seed_everything": full["seed_everything"], "model": model, "data": data,
            "trainer": {k: full["trainer"][k] for k in TRAINER_KEYS}}


def write(name: str) -> Path:
    path = HERE / f"{name}.yaml"
    header = (f"# `{name}` with its documented defaults on MovieLens 100K, fold u1 (train u1.base,\n"
              f"# test u1.test). Run: reclight fit --config examples/configs/{name}.yaml "
              "[--data DIR]\n# Written by examples/configs/generate.py; flags after --config "
              "override any value.\n")
    path.write_text(header + yaml.safe_dump(config_for(name), sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    for model in sys.argv[1:] or sys.exit("name the models, e.g. mf autorec deeprec"):
        print(write(model))
