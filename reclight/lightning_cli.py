"""`reclight fit` on Lightning's own CLI machinery.

:class:`RecLightCLI` is a ``LightningCLI`` (with ``run=False``: it parses, seeds and
instantiates, the runner calls ``fit``/``test``) for one registered model class: Lightning's
flag conventions (``--trainer.*``, ``--model.*``, ``--data.*``, ``--config``), its
``link_arguments`` handing the DataModule's :class:`~reclight.data.TrainingData` to the model's
``data`` argument at instantiation, and its ``SaveConfigCallback`` writing ``config.yaml`` into
the run directory. Defaults stack as core defaults < the model's ``trainer_defaults`` and
``data_defaults`` < config files < flags. ``--model NAME`` and ``--data SOURCE`` are short for
``--model.name`` and ``--data.source``; ``model.name`` is the registered name (kept in saved
configs, never passed to the model's constructor).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


from reclight.errors import ConfigError
from reclight.yamlfiles import read_yaml

# Trainer settings every run starts from. The data views shard batches per rank themselves
# (exact evaluation, no padded duplicates), so Lightning must not add a DistributedSampler.
CORE_TRAINER_DEFAULTS: dict[str, Any] = {
    "default_root_dir": "runs",
    "use_distributed_sampler": False,
    "num_sanity_val_steps": 0,
    "max_epochs": 20,
}
SHORTHANDS = {"--model": "--model.name", "--data": "--data.source"}
PARSER_KWARGS = {"exit_on_error": False, "env_prefix": "RECLIGHT", "default_env": False}


def expand_shorthands(args: list[str]) -> list[str]:
    """Turn ``--model X``/``--model=X`` into ``--model.name X`` (and ``--data`` likewise), and
    ``--model.name=X`` into ``--model.name X``."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, eq, value = arg.partition("=")
        key = SHORTHANDS.get(key, key)
        if key in SHORTHANDS.values():
            if eq:
                out += [key, value]
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                out += [key, args[i + 1]]
                i += 1
            else:
                example = "mf" if key == "--model.name" else "ml-100k"
                raise ConfigError(f"{arg} needs a value, e.g. {arg} {example}")
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
    """The model named by ``--model.name`` (after :func:`expand_shorthands`), else by the last
    config file that names one."""
    name = None
    for path in _config_files(args):
        loaded = read_yaml(path, "config file", "pass the path of a YAML file such as the "
                           "config.yaml that every run writes")
        model = loaded.get("model") if isinstance(loaded, dict) else None
        if isinstance(model, dict) and model.get("name"):
            name = str(model["name"])
    for i, arg in enumerate(args):
        if arg == "--model.name" and i + 1 < len(args):
            name = args[i + 1]
    return name


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__


@contextmanager
def user_errors(prog: str) -> Iterator[None]:
    """Turn what Lightning and jsonargparse raise for bad settings into one ConfigError line."""
    from jsonargparse import ArgumentError
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        yield
    except ArgumentError as exc:
        raise ConfigError(f"{_one_line(exc)} (see `{prog} --help`)") from None
    except MisconfigurationException as exc:
        raise ConfigError(f"bad trainer settings: {_one_line(exc)}") from None


def trainer_defaults_for(model_cls: type | None) -> dict[str, Any]:
    return {**CORE_TRAINER_DEFAULTS, **(getattr(model_cls, "trainer_defaults", None) or {})}


def add_run_arguments(parser: Any) -> None:
    """Arguments of every run besides the trainer, data and model groups."""
    from jsonargparse import ActionYesNo

    parser.add_argument("--eval_k", type=str, default="10",
                        help="cut-offs of the top-N metrics, e.g. 10 or 5,10,20")
    parser.add_argument("--verbose", action=ActionYesNo, default=False,
                        help="also print Lightning's start-up lines (devices, seed, tips) and "
                             "the model summary")
    parser.add_argument("--eval_users", type=int | None, default=None,
                        help="rank a seeded sample of this many test users instead of all "
                             "(the sample size is recorded in metrics.json)")
    parser.add_argument("--ckpt_path", type=str | None, default=None,
                        help="resume training from this checkpoint (Lightning's resume), or "
                             "'last': the newest last.ckpt of this model under "
                             "--trainer.default_root_dir")
    parser.add_argument("--checkpoint_every", type=int, default=1,
                        help="save last.ckpt (and the best validation epoch) every N epochs; "
                             "a killed run loses at most N epochs")
    parser.add_argument("--overwrite", action=ActionYesNo, default=False,
                        help="replace config.yaml and metrics.json of an earlier run in the "
                             "same run directory (with --trainer.logger false)")


def make_loggers(root: str, name: str) -> list[Any]:
    """CSV logging, plus TensorBoard in the same run directory when it is installed."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    csv = CSVLogger(save_dir=root, name=name)
    loggers: list[Any] = [csv]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return loggers
    loggers.append(TensorBoardLogger(save_dir=root, name=name, version=csv.version,
                                     default_hp_metric=False))
    return loggers


def trainer_overrides(config: dict[str, Any], model: Any, name: str,
                      has_validation: bool, verbose: bool = False,
                      every: int = 1) -> dict[str, Any]:
    """What reclight adds to the parsed Trainer settings: default loggers, the model's strategy,
    a ``last.ckpt`` every ``every`` epochs (so a killed run can resume, losing at most that
    many epochs; with a validation set also the best validation epoch), no model summary
    unless ``verbose``, and one line per epoch instead of a progress bar when stdout is not
    a terminal."""
    from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar

    from reclight.console import stdout_is_terminal
    from reclight.progress import EpochLines
    from reclight.strategies import resolve_strategy

    extra: dict[str, Any] = {}
    if config.get("logger") in (None, True):
        extra["logger"] = make_loggers(config.get("default_root_dir") or "runs", name)
    strategy = resolve_strategy(model, config.get("strategy", "auto"), config.get("devices", "auto"),
                                int(config.get("num_nodes") or 1))
    if strategy is not config.get("strategy"):
        extra["strategy"] = strategy
    callbacks = list(config.get("callbacks") or [])
    if every < 1:
        raise ConfigError(f"--checkpoint_every {every}; it must be a number of epochs >= 1")
    added = []
    if config.get("enable_checkpointing") is not False and not any(
            isinstance(c, ModelCheckpoint) for c in callbacks):
        from reclight.checkpoints import every_epoch_checkpoint

        added.append(every_epoch_checkpoint(every, model.monitor if has_validation else None,
                                            model.monitor_mode))
    if config.get("enable_progress_bar") is not False and not stdout_is_terminal() and not any(
            isinstance(c, ProgressBar) for c in callbacks):
        added.append(EpochLines())
    if added:
        extra["callbacks"] = [*callbacks, *added]
    if not verbose and config.get("enable_model_summary") is None:
        extra["enable_model_summary"] = False
    return extra


def resolve_resume(ckpt_path: str | None, root: str, name: str, model_cls: type) -> str | None:
    """The checkpoint ``--ckpt_path`` names: a file, or for ``last`` the newest ``last.ckpt``
    of model ``name`` under ``root``; it must hold the same model class (ConfigError if not)."""
    if not ckpt_path:
        return None
    if ckpt_path == "last":
        found = [*Path(root).glob(f"{name}/version_*/checkpoints/last.ckpt"),
                 *Path(root).glob("checkpoints/last.ckpt")]
        if not found:
            raise ConfigError(f"--ckpt_path last: no last.ckpt of model '{name}' under '{root}' "
                              f"(looked in {root}/{name}/version_*/checkpoints/); pass the "
                              "checkpoint's path or the --trainer.default_root_dir of that run")
        path = max(found, key=lambda p: p.stat().st_mtime)
    else:
        path = Path(ckpt_path)
    from reclight.checkpoints import read_checkpoint
    from reclight.errors import CheckpointError

    try:
        info = read_checkpoint(path)["reclight"]
    except CheckpointError as exc:
        raise ConfigError(f"--ckpt_path: {exc}") from None
    target = f"{model_cls.__module__}:{model_cls.__qualname__}"
    if info.get("class") != target:
        raise ConfigError(f"--ckpt_path '{path}' holds a {info.get('class')} model, not "
                          f"'{name}' ({target}); resume with the --model of that run")
    return str(path)


def atomic_save_config_class() -> type:
    """Lightning's SaveConfigCallback writing ``config.yaml`` atomically (reclight.files):
    a run killed while saving leaves the old file or the new one, never half of one. Whether
    an earlier run's file may be replaced is decided by the runner before training starts."""
    from lightning.pytorch.cli import SaveConfigCallback

    from reclight.files import write_atomic

    class AtomicSaveConfig(SaveConfigCallback):
        def __init__(self, parser: Any, config: Any, **kwargs: Any) -> None:
            kwargs.update(save_to_log_dir=False, overwrite=True)
            super().__init__(parser, config, **kwargs)

        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            # trainer.log_dir broadcasts under DDP: every rank must ask, rank 0 writes.
            self._log_dir = Path(trainer.log_dir or trainer.default_root_dir)
            super().setup(trainer, pl_module, stage)

        def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            text = self.parser.dump(self.config, skip_none=False)
            write_atomic(self._log_dir / self.config_filename, text)

    return AtomicSaveConfig


def _cli_class() -> type:
    from lightning.pytorch.cli import LightningCLI

    class RecLightCLI(LightningCLI):
        """LightningCLI for one registered model (see the module docstring)."""

        def __init__(self, model_cls: type, name: str, args: list[str], prog: str,
                     callbacks: list[Any] | None = None) -> None:
            from reclight.data import RatingDataModule

            self.model_name = name
            self.extra_callbacks = list(callbacks or [])
            super().__init__(
                model_class=model_cls, datamodule_class=RatingDataModule, run=False, args=args,
                save_config_callback=atomic_save_config_class(),
                save_config_kwargs={"overwrite": True},
                trainer_defaults=trainer_defaults_for(model_cls), seed_everything_default=0,
                auto_configure_optimizers=False, load_from_checkpoint_support=False,
                parser_kwargs={"prog": prog, **PARSER_KWARGS})

        def add_arguments_to_parser(self, parser: Any) -> None:
            add_run_arguments(parser)
            parser.add_argument("--model.name", type=str, default=self.model_name,
                                help="registered model name (see `reclight models`)")
            parser.link_arguments("data", "model.data", compute_fn=_training_data,
                                  apply_on="instantiate")
            defaults = getattr(self.model_class, "data_defaults", None) or {}
            parser.set_defaults({f"data.{k}": v for k, v in defaults.items()})

        def parse_arguments(self, parser: Any, args: Any) -> None:
            # LightningCLI warns when args are given while sys.argv is not empty, which is
            # always the case under `reclight fit`: the args are sys.argv, shorthands expanded.
            self.config = parser.parse_args(args)

        def before_instantiate_classes(self) -> None:
            # The model is built through a size check first (see _SizeChecked).
            self.parser.add_instantiator(_SizeChecked(self.model_name), self.model_class,
                                         subclasses=True)

        def instantiate_classes(self) -> None:
            name = self.config.model.pop("name")  # the registry's key, not a constructor argument
            try:
                super().instantiate_classes()
            finally:
                self.config.model["name"] = name

        def instantiate_trainer(self, **kwargs: Any) -> Any:
            # The cut-offs decide the name of an implicit model's monitor (val_ndcg@k), which
            # the checkpoint callback below watches.
            self.model.set_eval_k(self.config.eval_k)
            self.datamodule.set_eval_users(self.config.eval_users)
            config = dict(self._get(self.config_init, "trainer", default={}))
            extra = trainer_overrides(config, self.model, self.model_name,
                                      self.datamodule.val is not None,
                                      verbose=bool(self.config.get("verbose")),
                                      every=int(self.config.checkpoint_every))
            if self.extra_callbacks:  # given by the caller (compare's learning curves)
                extra["callbacks"] = [*extra.get("callbacks", config.get("callbacks") or []),
                                      *self.extra_callbacks]
            return super().instantiate_trainer(**{**extra, **kwargs})

    return RecLightCLI


class _SizeChecked:
    """Builds the model after a build on the meta device has shown that its parameters fit in
    memory: a huge ``--model.dim`` is refused in one line saying how much it needs, instead
    of failing inside the allocator (or, under overcommit, swapping)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, class_type: type, *args: Any, **kwargs: Any) -> Any:
        from reclight.memory import check_fits

        kwargs.pop("applied_instantiation_links", None)
        check_fits(lambda: class_type(*args, **kwargs), f"model '{self.name}' with these "
                   "hyper-parameters", "pass smaller sizes (--model.dim and the like)")
        return class_type(*args, **kwargs)


def _training_data(datamodule: Any) -> Any:
    return datamodule.training_data


def build_cli(model_cls: type, name: str, args: list[str], prog: str,
              callbacks: list[Any] | None = None) -> Any:
    """Parse ``args`` for ``model_cls``, seed, and build the DataModule, model and Trainer
    (with ``callbacks`` added to the Trainer's)."""
    with user_errors(prog):
        return _cli_class()(model_cls, name, args, prog, callbacks)



def help_without_model(prog: str, names: list[str]) -> None:
    """`reclight fit --help` before a model is chosen: the data and Trainer flags, and how to
    see a model's own."""
    from jsonargparse import ActionConfigFile
    from lightning import Trainer
    from lightning.pytorch.cli import LightningArgumentParser

    from reclight.data import RatingDataModule

    parser = LightningArgumentParser(prog=prog, description=(
        f"Choose a model with --model NAME ({', '.join(names) or 'none installed'}); "
        f"`{prog} --model NAME --help` lists that model's --model.* flags too."), **PARSER_KWARGS)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="YAML config file(s)")
    parser.add_argument("--seed_everything", type=int, default=0, help="global random seed")
    add_run_arguments(parser)
    parser.add_lightning_class_args(Trainer, "trainer")
    parser.add_lightning_class_args(RatingDataModule, "data")
    parser.print_help()
