"""What `reclight fit` and `reclight test` do: build, run, record.

``fit`` parses its flags with :mod:`reclight.lightning_cli` (Lightning's CLI machinery), trains,
tests when the data have a test set and records the run. ``test`` rebuilds a checkpoint's model
(:func:`reclight.checkpoints.load_model`) and its data from the data settings Lightning stored in
the checkpoint (``datamodule_hyper_parameters``; ``--data.*`` flags override them). Both end in
the same record: ``metrics.json`` and a summary, written by rank 0 only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reclight.errors import ConfigError, DataError, RunInterrupted
from reclight.files import write_atomic
from reclight.lightning_cli import (
    PARSER_KWARGS,
    add_run_arguments,
    atomic_save_config_class,
    build_cli,
    expand_shorthands,
    help_without_model,
    model_name_from,
    resolve_resume,
    trainer_defaults_for,
    trainer_overrides,
    user_errors,
)
from reclight.registry import get_registry


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _run_dir(trainer: Any) -> Path:
    path = Path(trainer.log_dir or trainer.default_root_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _test(trainer: Any, model: Any, datamodule: Any, metrics: dict[str, Any], prog: str) -> None:
    with user_errors(prog):
        trainer.test(model, datamodule=datamodule, verbose=False)
    metrics.update(_scalars(trainer.callback_metrics))


def _record(trainer: Any, name: str, datamodule: Any, model: Any, metrics: dict[str, Any],
            checkpoint: str, quiet: bool) -> dict[str, Any]:
    """The run's record; rank 0 writes metrics.json and prints the summary
    (:mod:`reclight.summary`) with the baseline's metrics on the same test set."""
    from reclight.baseline import baseline_metrics
    from reclight.console import warn
    from reclight.summary import summary

    run_dir = _run_dir(trainer)
    record = {"model": name, "data": datamodule.describe(), "metrics": metrics,
              "eval_k": list(model.evaluation.ks), "checkpoint": checkpoint,
              "run_dir": str(run_dir), "baseline": {}}
    if getattr(datamodule, "ranking_sample", None):
        record["eval_users"] = datamodule.ranking_sample
    if not trainer.is_global_zero:  # under DDP every rank runs this; one writes and prints
        return record
    if any(k.startswith("test_") for k in metrics):
        record["baseline"] = baseline_metrics(model, datamodule)
    write_atomic(run_dir / "metrics.json", json.dumps(record, indent=2, sort_keys=True) + "\n")
    if not quiet:
        unseen = int(metrics.get("test_unseen", 0))
        if unseen:
            sys.stdout.flush()
            warn(f"{unseen} test ratings involve users or items unseen in training; they were "
                 "predicted by the baseline fallback (global mean + known biases)")
        users = [str(u) for u in model.user_map.to_raw(range(min(3, model.num_users)))]
        print(summary(name, model.feedback, metrics, record["baseline"], model.evaluation.ks,
                      run_dir, checkpoint, users), flush=True)
    return record


RUN_FILES = ("config.yaml", "metrics.json")


def check_run_dir(trainer: Any, overwrite: bool) -> None:
    """Refuse, before any work, to write over an earlier run's record (a fixed run directory,
    as with ``--trainer.logger false``) unless ``--overwrite`` is given."""
    run_dir = Path(trainer.log_dir or trainer.default_root_dir)
    earlier = [name for name in RUN_FILES if (run_dir / name).exists()]
    if earlier and not overwrite:
        raise ConfigError(f"'{run_dir}' already holds an earlier run's {' and '.join(earlier)}; "
                          "pass --overwrite to replace them or choose another "
                          "--trainer.default_root_dir")


class _DropLightningInterruptNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Detected KeyboardInterrupt" not in record.getMessage()


def _resume_hint(trainer: Any, config: Any, args: list[str]) -> tuple[str, str]:
    """(the newest checkpoint of this run or "none yet", the command that resumes it)."""
    callback = trainer.checkpoint_callback
    last = getattr(callback, "last_model_path", "") if callback is not None else ""
    saved = Path(trainer.log_dir or trainer.default_root_dir) / "config.yaml"
    if last and saved.is_file():
        command = f"reclight fit --config {saved} --ckpt_path {last}"
    else:
        kept = [a for a in args if a != "--ckpt_path"]
        command = "reclight fit " + " ".join(kept) + (f" --ckpt_path {last}" if last else "")
    return last or "none yet (no epoch finished)", command


@contextmanager
def interrupts(trainer: Any, config: Any, args: list[str], resume: str | None) -> Iterator[None]:
    """Turn Ctrl-C (Lightning exits 1 after its own notice) and SIGTERM (Lightning stops the
    loop and returns as if done) into one :class:`RunInterrupted` line naming the last
    checkpoint and the resume command."""
    notice = _DropLightningInterruptNotice()
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    logger.addFilter(notice)
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as exc:
        if isinstance(exc, SystemExit) and not trainer.interrupted:
            raise
        if not trainer.received_sigterm:  # Lightning 2.6 may also end a SIGTERM this way
            last, command = _resume_hint(trainer, config, args)
            raise RunInterrupted(f"interrupted (Ctrl-C) at epoch {trainer.current_epoch}; last "
                                 f"checkpoint: {last}; resume with: {command}", 130) from None
    finally:
        logger.removeFilter(notice)
    if trainer.received_sigterm:
        last, command = _resume_hint(trainer, config, args)
        raise RunInterrupted(f"stopped by SIGTERM at epoch {trainer.current_epoch}, before the "
                             f"run finished (not tested, no metrics.json); last checkpoint: "
                             f"{last}; resume with: {command}", 143) from None


def run_fit(args: list[str], prog: str = "reclight fit", quiet: bool = False,
            callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train a model, test it when there is a test set, write metrics.json and config.yaml;
    ``callbacks`` are added to the Trainer (``reclight compare`` records curves this way)."""
    from reclight.console import lightning_noise, wants_verbose

    with lightning_noise(wants_verbose(args)):
        return _fit(args, prog, quiet, callbacks)


def _fit(args: list[str], prog: str, quiet: bool, callbacks: list[Any] | None) -> dict[str, Any]:
    args = expand_shorthands(args)
    name = model_name_from(args)
    registry = get_registry()
    if name is None:
        if any(a in ("-h", "--help") for a in args):
            help_without_model(prog, registry.names())
            raise SystemExit(0)
        raise ConfigError("no model chosen; pass --model NAME with one of: "
                          f"{', '.join(registry.names()) or 'none installed'}")
    spec = registry.get(name)
    cli = build_cli(spec.load(), spec.name, args, prog, callbacks)
    model, datamodule, trainer = cli.model, cli.datamodule, cli.trainer
    check_run_dir(trainer, bool(cli.config.overwrite))
    if not quiet and trainer.is_global_zero:
        default = " (the embedded default; pass --data PATH or a built-in name for real data)" \
            if cli.config.data.source == "synthetic" else ""
        print(f"data: {datamodule.describe()}{default}", file=sys.stderr)
    resume = resolve_resume(cli.config.ckpt_path, str(trainer.default_root_dir), spec.name,
                            type(model))
    if resume and not quiet and trainer.is_global_zero:
        print(f"resuming from {resume}", file=sys.stderr)
    start = time.perf_counter()
    with user_errors(prog), interrupts(trainer, cli.config, args, resume):
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    metrics: dict[str, Any] = _scalars(trainer.callback_metrics)
    metrics["fit_seconds"] = time.perf_counter() - start
    if datamodule.test is not None and len(datamodule.test) > 0:
        _test(trainer, model, datamodule, metrics, prog)
    callback = trainer.checkpoint_callback
    checkpoint = (getattr(callback, "last_model_path", "") or
                  getattr(callback, "best_model_path", "")) if callback is not None else ""
    return _record(trainer, spec.name, datamodule, model, metrics, checkpoint, quiet)


def run_test(ckpt_path: str, args: list[str], prog: str = "reclight test") -> dict[str, Any]:
    """Re-evaluate a checkpoint on the data it was trained with (``--data.*`` overrides)."""
    from reclight.console import lightning_noise, wants_verbose

    with lightning_noise(wants_verbose(args)):
        return _test_checkpoint(ckpt_path, args, prog)


def _test_checkpoint(ckpt_path: str, args: list[str], prog: str) -> dict[str, Any]:
    import lightning as L
    from jsonargparse import ActionConfigFile
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningArgumentParser

    from reclight.checkpoints import load_model, read_checkpoint
    from reclight.data import RatingDataModule

    model = load_model(ckpt_path)
    name = model.registered_name
    stored = read_checkpoint(ckpt_path).get("datamodule_hyper_parameters") or {}
    parser = LightningArgumentParser(prog=prog, **PARSER_KWARGS)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="YAML config file(s)")
    parser.add_argument("--seed_everything", type=int, default=0, help="global random seed")
    add_run_arguments(parser)
    parser.add_lightning_class_args(L.Trainer, "trainer")
    parser.add_lightning_class_args(RatingDataModule, "data")
    parser.set_defaults({f"trainer.{k}": v for k, v in trainer_defaults_for(type(model)).items()})
    known = set(parser.get_defaults().data.keys())
    parser.set_defaults({f"data.{k}": (tuple(v) if isinstance(v, list) else v)
                         for k, v in dict(stored).items() if k in known and v is not None})
    with user_errors(prog):
        cfg = parser.parse_args(expand_shorthands(args))
        L.seed_everything(cfg.seed_everything, workers=True, verbose=False)
        init = parser.instantiate_classes(cfg)
    datamodule = init.data
    if not datamodule.training_data.same_ids(model.data):
        raise DataError(f"the data ({datamodule.describe()}) is not the data this checkpoint was "
                        f"trained on ({model.num_users} users x {model.num_items} items); test on "
                        "the same source and split, or fit a new model")
    if datamodule.test is None or len(datamodule.test) == 0:
        raise ConfigError("this data setting has no test set; choose a split with held-out "
                          "ratings, e.g. --data.split random")
    model.set_eval_k(cfg.eval_k)
    datamodule.set_eval_users(cfg.eval_users)
    trainer_config = dict(init.trainer)
    trainer_config.update(trainer_overrides(trainer_config, model, f"{name}-test", False,
                                            verbose=bool(cfg.get("verbose"))))
    trainer_config["callbacks"] = [c for c in (trainer_config.get("callbacks") or [])
                                   if not isinstance(c, ModelCheckpoint)]
    trainer_config["callbacks"].append(atomic_save_config_class()(parser, cfg))
    with user_errors(prog):
        trainer = L.Trainer(**trainer_config)
    check_run_dir(trainer, bool(cfg.overwrite))
    metrics: dict[str, Any] = {}
    _test(trainer, model, datamodule, metrics, prog)
    return _record(trainer, name, datamodule, model, metrics, str(ckpt_path), quiet=False)
