"""What `reclight fit` and `reclight test` do: parse Lightning-style flags, build, run, record.

Flags follow the Lightning CLI conventions through Lightning's own jsonargparse parser:
``--trainer.*`` (every Trainer argument), ``--data.*`` (RatingDataModule), ``--model.*`` (the
chosen model's constructor), ``--config file.yaml``. ``--model NAME`` and ``--data SOURCE``
are shorthands for ``--model.name`` and ``--data.source``. Defaults stack as
core defaults < the model's ``trainer_defaults``/``data_defaults`` < config files < flags.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from reclight.errors import ConfigError
from reclight.registry import get_registry

# Trainer settings every run starts from. The DataModule shards batches per rank itself
# (exact evaluation, no padded duplicates), so Lightning must not add a DistributedSampler.
CORE_TRAINER_DEFAULTS: dict[str, Any] = {
    "default_root_dir": "runs",
    "use_distributed_sampler": False,
    "num_sanity_val_steps": 0,
    "max_epochs": 20,
}
SHORTHANDS = {"--model": "--model.name", "--data": "--data.source"}

# Lightning warnings that say nothing actionable about a reclight run: our loaders are
# iterable datasets with a length by design, run in-process, and shard per rank themselves.
QUIET_WARNINGS = (
    r".*IterableDataset.*has `__len__` defined.*",
    r".*does not have many workers.*",
    r".*smaller than the logging interval.*",
    r".*Total length of .* across ranks is zero.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*GPU available but not used.*",
)


def quiet_lightning_warnings() -> None:
    import warnings

    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def expand_shorthands(args: list[str]) -> list[str]:
    """Turn ``--model X``/``--model=X`` into ``--model.name X`` (and ``--data`` likewise)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, eq, value = arg.partition("=")
        if key in SHORTHANDS:
            if eq:
                out += [SHORTHANDS[key], value]
            elif i + 1 < len(args):
                out += [SHORTHANDS[key], args[i + 1]]
                i += 1
            else:
                raise ConfigError(f"{key} needs a value, e.g. {key} "
                                  f"{'mf' if key == '--model' else 'ml-100k'}")
        else:
            out.append(arg)
        i += 1
    return out


def _config_files(args: list[str]) -> list[Path]:
    files = []
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            files.append(Path(args[i + 1]))
        elif arg.startswith("--config="):
            files.append(Path(arg.split("=", 1)[1]))
    return files


def model_name_from(args: list[str]) -> str | None:
    """The model named by ``--model.name`` on the command line, else by the last config file."""
    name = None
    for path in _config_files(args):
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist; pass the path of a YAML file "
                              "such as the config.yaml that every run writes")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file '{path}' is not valid YAML ({str(exc).splitlines()[0]})") from None
        model = loaded.get("model") if isinstance(loaded, dict) else None
        if isinstance(model, dict) and model.get("name"):
            name = str(model["name"])
    for i, arg in enumerate(args):
        if arg == "--model.name" and i + 1 < len(args):
            name = args[i + 1]
    return name


def build_parser(prog: str, model_cls: type | None, model_name: str | None,
                 data_defaults: dict[str, Any] | None = None) -> Any:
    """The jsonargparse parser for one command and one model class."""
    from jsonargparse import ActionConfigFile
    from lightning import Trainer
    from lightning.pytorch.cli import LightningArgumentParser

    from reclight.data import RatingDataModule
    from reclight.model import DATA_ARGS

    parser = LightningArgumentParser(prog=prog, exit_on_error=False, env_prefix="RECLIGHT",
                                     default_env=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="YAML config file(s)")
    parser.add_argument("--seed_everything", type=int, default=0, help="global random seed")
    parser.add_argument("--eval_k", type=int, default=10, help="cut-off k of the top-N test metrics")
    parser.add_lightning_class_args(Trainer, "trainer")
    parser.add_class_arguments(RatingDataModule, "data", instantiate=False, skip={"view"},
                               fail_untyped=False, sub_configs=True)
    trainer_defaults = dict(CORE_TRAINER_DEFAULTS)
    data = dict(data_defaults or {})
    if model_cls is not None:
        parser.add_argument("--model.name", type=str, default=model_name,
                            help="registered model name (see `reclight models`)")
        parser.add_class_arguments(model_cls, "model", instantiate=False, skip=set(DATA_ARGS),
                                   fail_untyped=False, sub_configs=True)
        trainer_defaults.update(model_cls.trainer_defaults)
        data = {**model_cls.data_defaults, **data}
    parser.set_defaults({f"trainer.{k}": v for k, v in trainer_defaults.items()})
    parser.set_defaults({f"data.{k}": v for k, v in data.items()})
    return parser


def parse(parser: Any, args: list[str]) -> Any:
    """Parse flags; a bad flag becomes one ConfigError line naming it."""
    from jsonargparse import ArgumentError

    try:
        return parser.parse_args(args)
    except (ArgumentError, ValueError, TypeError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        message = " ".join(lines[:2]) if lines else type(exc).__name__
        raise ConfigError(f"{message} (see `{parser.prog} --help`)") from None


def _namespace_dict(ns: Any) -> dict[str, Any]:
    return ns.as_dict() if hasattr(ns, "as_dict") else dict(ns)


def make_loggers(trainer_kwargs: dict[str, Any], name: str) -> None:
    """CSV logging by default, plus TensorBoard in the same run dir when it is installed."""
    if trainer_kwargs.get("logger") not in (None, True):
        return
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    root = trainer_kwargs.get("default_root_dir") or "runs"
    csv = CSVLogger(save_dir=root, name=name)
    loggers: list[Any] = [csv]
    try:
        import tensorboard  # noqa: F401

        loggers.append(TensorBoardLogger(save_dir=root, name=name, version=csv.version,
                                         default_hp_metric=False))
    except ImportError:
        pass
    trainer_kwargs["logger"] = loggers


def make_trainer(trainer_ns: Any, name: str) -> Any:
    """A Lightning Trainer from the parsed (and instantiated) trainer flags."""
    from lightning import Trainer
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    kwargs = _namespace_dict(trainer_ns)
    make_loggers(kwargs, name)
    try:
        return Trainer(**kwargs)
    except (MisconfigurationException, ValueError) as exc:
        raise ConfigError(f"bad trainer settings: {str(exc).splitlines()[0]}") from None


def run_dir_of(trainer: Any) -> Path:
    path = Path(trainer.log_dir or trainer.default_root_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_results(run_dir: Path, metrics: dict[str, Any], parser: Any, cfg: Any) -> None:
    """metrics.json and the resolved config.yaml of a run."""
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    parser.save(cfg, run_dir / "config.yaml", overwrite=True, skip_none=False, skip_check=True)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def metrics_table(metrics: dict[str, float]) -> str:
    """The test metrics as aligned lines (Lightning's own table repeats them per loader)."""
    rows = {k[5:]: v for k, v in metrics.items() if k.startswith("test_")}
    if not rows:
        return ""
    width = max(len(k) for k in rows)
    return "\n".join(f"  {k:<{width}}  {v:.4f}" if k != "unseen" else f"  {k:<{width}}  {int(v)}"
                     for k, v in rows.items())


def summary_line(metrics: dict[str, float]) -> str:
    parts = []
    for key, label in (("test_rmse", "RMSE"), ("test_mae", "MAE"), ("val_rmse", "val RMSE")):
        if key in metrics:
            parts.append(f"{label} {metrics[key]:.4f}")
    parts += [f"{k[5:]} {v:.4f}" for k, v in metrics.items() if k.startswith("test_ndcg@")]
    if "fit_seconds" in metrics:
        parts.append(f"fit {metrics['fit_seconds']:.2f}s")
    return ", ".join(parts)


def run_fit(args: list[str], prog: str = "reclight fit", quiet: bool = False) -> dict[str, Any]:
    """Train a model, test it when there is a test set, write metrics.json and config.yaml."""
    args = expand_shorthands(args)
    wants_help = any(a in ("-h", "--help") for a in args)
    name = model_name_from(args)
    registry = get_registry()
    if name is None:
        if wants_help:
            name = registry.names()[0] if registry.names() else None
        if name is None:
            raise ConfigError("no model chosen; pass --model NAME with one of: "
                              f"{', '.join(registry.names()) or 'none installed'}")
    spec = registry.get(name)
    model_cls = spec.load()
    parser = build_parser(prog, model_cls, spec.name)
    cfg = parse(parser, args)
    return _fit_with(parser, cfg, spec.name, model_cls, quiet)


def _fit_with(parser: Any, cfg: Any, name: str, model_cls: type, quiet: bool) -> dict[str, Any]:
    import lightning as L

    from reclight.data import RatingDataModule

    quiet_lightning_warnings()
    L.seed_everything(cfg.seed_everything, workers=True, verbose=False)
    data_kwargs = _namespace_dict(cfg.data)
    datamodule = RatingDataModule(**data_kwargs)
    if not quiet:
        origin = " (the embedded default; pass --data PATH or a built-in name for real data)" \
            if data_kwargs.get("source") == "synthetic" else ""
        print(f"data: {datamodule.describe()}{origin}", file=sys.stderr)
    model_kwargs = {k: v for k, v in _namespace_dict(cfg.model).items() if k != "name"}
    model = model_cls(num_users=datamodule.num_users, num_items=datamodule.num_items,
                      global_mean=datamodule.global_mean, rating_range=datamodule.rating_range,
                      **model_kwargs)
    datamodule.set_view(model.input_kind)  # from the instance: a hyper-parameter may choose it
    model.attach_data(datamodule)
    model.set_eval_k(cfg.eval_k)
    model.reclight_meta = {"model": name, "data": _storable(data_kwargs)}
    init = parser.instantiate_classes(cfg)
    trainer = make_trainer(init.trainer, name)
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    metrics: dict[str, Any] = _scalars(trainer.callback_metrics)
    metrics["fit_seconds"] = fit_seconds
    if datamodule.test is not None and len(datamodule.test) > 0:
        trainer.test(model, datamodule=datamodule, verbose=False)
        metrics.update(_scalars(trainer.callback_metrics))
        if not quiet and trainer.is_global_zero:
            print(f"test metrics:\n{metrics_table(metrics)}")
    run_dir = run_dir_of(trainer)
    ckpt = getattr(trainer.checkpoint_callback, "last_model_path", "") or \
        getattr(trainer.checkpoint_callback, "best_model_path", "")
    record = {"model": name, "data": datamodule.describe(), "metrics": metrics,
              "checkpoint": ckpt, "run_dir": str(run_dir)}
    if not trainer.is_global_zero:  # under DDP every rank runs this; one writes and prints
        return record
    write_results(run_dir, record, parser, cfg)
    if not quiet:
        print(f"{name}: {summary_line(metrics)}")
        print(f"run dir: {run_dir}" + (f"  checkpoint: {ckpt}" if ckpt else ""))
    return record


def _storable(data_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The data flags as plain values for a checkpoint (a DataFrame source is not stored)."""
    out = {}
    for key, value in data_kwargs.items():
        if isinstance(value, (str, int, float, bool, type(None))):
            out[key] = value
        elif isinstance(value, (tuple, list)):
            out[key] = list(value)
        else:
            out[key] = None
    return out


def run_test(ckpt_path: str, args: list[str], prog: str = "reclight test") -> dict[str, Any]:
    """Re-evaluate a checkpoint on its own data settings (overridable with ``--data.*``)."""
    import lightning as L

    from reclight.checkpoints import load_model
    from reclight.data import RatingDataModule

    model = load_model(ckpt_path)
    name = model.reclight_meta.get("model", type(model).__name__)
    stored = {k: v for k, v in (model.reclight_meta.get("data") or {}).items() if v is not None}
    if isinstance(stored.get("rating_range"), list):
        stored["rating_range"] = tuple(stored["rating_range"])
    parser = build_parser(prog, None, None, data_defaults=stored)
    cfg = parse(parser, expand_shorthands(args))
    quiet_lightning_warnings()
    L.seed_everything(cfg.seed_everything, workers=True, verbose=False)
    datamodule = RatingDataModule(**_namespace_dict(cfg.data))
    datamodule.set_view(model.input_kind)
    if datamodule.num_users != model.num_users or datamodule.num_items != model.num_items:
        raise ConfigError(f"the data ({datamodule.describe()}) is not the data this checkpoint was "
                          f"trained on ({model.num_users} users x {model.num_items} items); test on the "
                          "same source and split, or fit a new model")
    if datamodule.test is None or len(datamodule.test) == 0:
        raise ConfigError("this data setting has no test set; choose a split with held-out ratings, "
                          "e.g. --data.split random")
    model.set_eval_k(cfg.eval_k)
    init = parser.instantiate_classes(cfg)
    trainer = make_trainer(init.trainer, f"{name}-test")
    trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = _scalars(trainer.callback_metrics)
    if trainer.is_global_zero:
        print(f"test metrics:\n{metrics_table(metrics)}")
    run_dir = run_dir_of(trainer)
    record = {"model": name, "data": datamodule.describe(), "metrics": metrics,
              "checkpoint": str(ckpt_path), "run_dir": str(run_dir)}
    if not trainer.is_global_zero:
        return record
    write_results(run_dir, record, parser, cfg)
    print(f"{name}: {summary_line(metrics)}")
    print(f"run dir: {run_dir}")
    return record
