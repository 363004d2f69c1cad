"""`reclight compare`: several models, the same data and folds, learning curves and a summary.

Each model is fitted with its defaults (plus the flags every model gets, plus its own section
of an overrides file) on every fold, with a :class:`~reclight.curves.LearningCurve` on the
Trainer and the fit inside :class:`~reclight.curves.PeakMemory`. Everything a user can get
wrong (model names, folds, the output folder, the overrides file) is checked before anything
trains; a model that fails is reported with its error and the others carry on. Output:

- ``results.csv``: one row per model, fold and epoch (seconds, train/val/test RMSE);
- ``summary.csv`` (and the table printed): per model, mean and standard deviation over the
  folds of test RMSE, MAE and NDCG@k, mean fit seconds, peak memory, the error if any;
- ``runs.csv``: one row per model and fold with its final test metrics;
- ``rmse_vs_time.png``/``.svg`` (:mod:`reclight.compare_plot`, needs matplotlib);
- ``compare.json``: what was compared, on which data and machine (the picture's title).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reclight.errors import ConfigError, RecLightError
from reclight.lightning_cli import expand_shorthands
from reclight.registry import get_registry
from reclight.yamlfiles import read_yaml

OUTPUTS = ("results.csv", "summary.csv", "runs.csv", "compare.json", "rmse_vs_time.png",
           "rmse_vs_time.svg")
CURVE_COLUMNS = ["model", "fold", "epoch", "seconds", "train_rmse", "val_rmse", "test_rmse"]


@dataclass
class ComparePlan:
    """What `reclight compare` will run, checked before anything trains."""

    models: list[str]
    folds: list[str | None]
    flags: list[str]
    overrides: dict[str, list[str]] = field(default_factory=dict)
    model_folds: dict[str, list[str]] = field(default_factory=dict)
    output: Path | None = None
    overwrite: bool = False

    def runs(self) -> list[tuple[str, str | None]]:
        return [(model, fold) for model in self.models for fold in self.folds
                if model not in self.model_folds or fold in self.model_folds[model]]

    def args_for(self, model: str, fold: str | None) -> list[str]:
        """The flags of one run: the common flags, the model's overrides, then the fold."""
        args = ["--model", model, *self.flags, *self.overrides.get(model, [])]
        if fold is not None:
            args += ["--data.split", fold]
        if self.output is not None and not _has_flag(args, "--trainer.default_root_dir"):
            args += ["--trainer.default_root_dir", str(self.output / "runs")]
        for flag in ("--trainer.enable_progress_bar", "--trainer.enable_model_summary"):
            if not _has_flag(args, flag):  # one progress line per run instead
                args += [flag, "false"]
        return args


def _has_flag(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _flag_value(args: list[str], flag: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def split_names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--{what} '{text}' names nothing; give comma-separated names")
    return names


def check_models(names: list[str]) -> list[str]:
    """The registered names of ``names`` (aliases resolved); one line for an unknown one."""
    registry = get_registry()
    resolved = []
    for name in names:
        try:
            resolved.append(registry.get(name).name)
        except RecLightError as exc:
            raise ConfigError(f"--models: {exc}") from None
    return resolved


def check_folds(folds: list[str], flags: list[str]) -> None:
    """Every fold must be a split strategy or a fold with X.base/X.test beside the source."""
    from reclight.data.sources import fold_files, resolve_source, unknown_split
    from reclight.data.splits import STRATEGIES

    if _has_flag(flags, "--data.split"):
        raise ConfigError("--folds and --data.split both choose the split; drop --data.split "
                          "(each fold is used as the split in turn)")
    named = [f for f in folds if f not in STRATEGIES]
    if not named:
        return
    source = _flag_value(flags, "--data.source")
    if source is None and _has_flag(flags, "--config"):
        return  # the source is in a config file; an unknown fold fails its runs instead
    columns, sep = _flag_value(flags, "--data.columns"), _flag_value(flags, "--data.sep")
    kwargs = {k: v for k, v in (("columns", columns), ("sep", sep)) if v is not None}
    src = resolve_source(source or "synthetic", **kwargs)
    directory = getattr(src, "directory", None)
    for fold in named:
        if fold_files(directory, fold) is not None:
            continue
        if directory is None:
            raise ConfigError(f"--folds: {unknown_split(fold, directory)}")
        there = sorted(f.stem for f in Path(directory).glob("*.base")
                       if fold_files(directory, f.stem) is not None)
        raise ConfigError(f"--folds: unknown fold '{fold}': '{directory}' has no {fold}.base/"
                          f"{fold}.test; its folds are {', '.join(there) or 'none'}, the "
                          f"strategies {', '.join(STRATEGIES)}")


def _as_flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _flatten(prefix: str, value: Any) -> list[str]:
    if isinstance(value, dict) and value:
        return [flag for key, sub in value.items() for flag in _flatten(f"{prefix}.{key}", sub)]
    return [f"--{prefix}", _as_flag_value(value)]


def read_overrides(path: str | Path, models: list[str],
                   folds: list[str | None]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per-model flags from a YAML file of sections named after models, each holding
    ``model``/``trainer``/``data`` settings, nested or dotted, and optionally ``folds``, a
    subset of ``--folds`` for that model (for a slow one)::

        deeprec:
          trainer.max_epochs: 30
          model: {lr: 0.005}
          folds: u1,u2

    Returns the flags and the fold subsets by model."""
    path = Path(path)
    loaded = read_yaml(path, "--overrides file", "pass a YAML file with one section per "
                       "model, e.g. 'mf: {model: {dim: 32}}'")
    if not isinstance(loaded, dict):
        raise ConfigError(f"--overrides file '{path}' must map model names to settings, e.g. "
                          "'mf: {model: {dim: 32}}'")
    registry = get_registry()
    out: dict[str, list[str]] = {}
    subsets: dict[str, list[str]] = {}
    for key, settings in loaded.items():
        try:
            name = registry.get(str(key)).name
        except RecLightError:
            name = str(key)
        if name not in models:
            raise ConfigError(f"--overrides file '{path}' has a section for '{key}', which is not "
                              f"in --models ({', '.join(models)}); add it to --models or remove "
                              "the section")
        if not isinstance(settings, dict):
            raise ConfigError(f"--overrides file '{path}': section '{key}' must map settings to "
                              "values, e.g. 'trainer.max_epochs: 30'")
        settings = dict(settings)
        if "folds" in settings:
            subsets[name] = _fold_subset(settings.pop("folds"), folds, path, str(key))
        flags = [flag for sub, value in settings.items() for flag in _flatten(str(sub), value)]
        out[name] = [*out.get(name, []), *flags]
    return out, subsets


def _fold_subset(value: Any, folds: list[str | None], path: Path, key: str) -> list[str]:
    chosen = split_names(value, "overrides folds") if isinstance(value, str) else \
        [str(v) for v in (value or [])]
    extra = [f for f in chosen if f not in folds]
    if extra or not chosen:
        raise ConfigError(f"--overrides file '{path}': folds of '{key}' must be some of --folds "
                          f"({', '.join(f for f in folds if f) or 'none given'}); got "
                          f"{', '.join(chosen) or 'none'}")
    return chosen


def check_output_dir(output: str | Path, overwrite: bool) -> Path:
    """The output folder; refuses one that holds results of an earlier compare."""
    path = Path(output)
    if path.suffix.lower() in (".csv", ".tsv"):
        raise ConfigError(f"--output '{path}' looks like a file; it names a folder now, which "
                          "gets results.csv, summary.csv and rmse_vs_time.png, e.g. "
                          "--output runs/compare")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output '{path}' is a file; name a folder, e.g. --output runs/compare")
    held = [name for name in OUTPUTS if (path / name).exists()]
    if held and not overwrite:
        raise ConfigError(f"--output '{path}' already holds results ({', '.join(held)}); pass "
                          "--overwrite to replace them or choose another folder")
    return path


def plan_compare(models: str, flags: list[str], folds: str | None = None,
                 overrides: str | None = None, output: str | None = None,
                 overwrite: bool = False) -> ComparePlan:
    """Check everything the user gave before anything trains."""
    flags = expand_shorthands(list(flags))
    if _has_flag(flags, "--model.name"):
        raise ConfigError("compare takes its models from --models; drop --model")
    names = check_models(split_names(models, "models"))
    fold_list: list[str | None] = [None]
    if folds is not None:
        fold_list = list(split_names(folds, "folds"))
        check_folds(fold_list, flags)  # type: ignore[arg-type]
    plan = ComparePlan(names, fold_list, flags, overwrite=overwrite)
    if overrides is not None:
        plan.overrides, plan.model_folds = read_overrides(overrides, names, fold_list)
    if output is not None:
        plan.output = check_output_dir(output, overwrite)
    return plan


def machine() -> str:
    """The hardware in a few words: GPU name, or CPU model and core count."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


@dataclass
class RunResult:
    model: str
    fold: str | None
    curve: list[dict[str, float]]
    metrics: dict[str, float]
    peak_mb: float
    data: str = ""
    error: str = ""


def run_one(plan: ComparePlan, model: str, fold: str | None) -> RunResult:
    """Fit and test one model on one fold; an error is caught and kept, never raised."""
    from reclight.curves import LearningCurve, PeakMemory
    from reclight.runner import run_fit

    curve = LearningCurve()
    peak = PeakMemory()
    label = f"reclight compare ({model}{', ' + fold if fold else ''})"
    try:
        with peak, _quiet_lightning():
            record = run_fit(plan.args_for(model, fold), prog=label, quiet=True, callbacks=[curve])
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - one model's failure is reported
        message = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, RecLightError):
            message = f"{type(exc).__name__}: {message}"
        return RunResult(model, fold, curve.rows, {}, peak.megabytes, error=message[:300])
    return RunResult(model, fold, curve.rows, record["metrics"], peak.megabytes,
                     data=record.get("data", ""))


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's info lines ("`Trainer.fit` stopped ...") off during a run: compare prints
    one line per run instead."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def curves_frame(results: list[RunResult]) -> pd.DataFrame:
    rows = [{"model": r.model, "fold": r.fold or "", **point} for r in results for point in r.curve]
    return pd.DataFrame(rows).reindex(columns=CURVE_COLUMNS)


def runs_frame(results: list[RunResult], k: int) -> pd.DataFrame:
    keys = ["test_rmse", "test_mae", f"test_ndcg@{k}", "fit_seconds"]
    rows = [{"model": r.model, "fold": r.fold or "",
             **{key: r.metrics.get(key, math.nan) for key in keys},
             "peak_memory_mb": r.peak_mb, "error": r.error} for r in results]
    return pd.DataFrame(rows)


def summary_frame(runs: pd.DataFrame, models: list[str], k: int) -> pd.DataFrame:
    """Per model: mean and standard deviation over its successful folds, mean fit seconds,
    the largest peak memory, and the first error."""
    rows = []
    for model in models:
        mine = runs[runs["model"] == model]
        ok = mine[mine["error"] == ""]
        row: dict[str, Any] = {"model": model, "folds": len(ok), "failed": len(mine) - len(ok)}
        for key in ("test_rmse", "test_mae", f"test_ndcg@{k}"):
            values = ok[key].dropna()
            row[f"{key}_mean"] = values.mean() if len(values) else math.nan
            row[f"{key}_std"] = values.std(ddof=0) if len(values) else math.nan
        row["fit_seconds_mean"] = ok["fit_seconds"].mean() if len(ok) else math.nan
        row["peak_memory_mb"] = ok["peak_memory_mb"].max() if len(ok) else math.nan
        errors = mine.loc[mine["error"] != "", "error"]
        row["error"] = errors.iloc[0] if len(errors) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame, k: int) -> str:
    """The summary as an aligned terminal table (mean ± std; a failed model shows its error)."""
    def pm(row: pd.Series, key: str) -> str:
        mean, std = row[f"{key}_mean"], row[f"{key}_std"]
        if pd.isna(mean):
            return "-"
        return f"{mean:.4f} ± {std:.4f}" if row["folds"] > 1 else f"{mean:.4f}"

    lines = []
    for _, row in summary.iterrows():
        total = row["folds"] + row["failed"]
        line = {"model": row["model"], "folds": f"{row['folds']}/{total}",
                "test RMSE": pm(row, "test_rmse"), "test MAE": pm(row, "test_mae"),
                f"NDCG@{k}": pm(row, f"test_ndcg@{k}"),
                "fit s": "-" if pd.isna(row["fit_seconds_mean"]) else f"{row['fit_seconds_mean']:.1f}",
                "peak MB": "-" if pd.isna(row["peak_memory_mb"]) else f"{row['peak_memory_mb']:.0f}",
                "error": row["error"] or ""}
        lines.append(line)
    return pd.DataFrame(lines).to_string(index=False).rstrip()


def _eval_k(flags: list[str]) -> int:
    from reclight.metrics import parse_ks

    value = _flag_value(flags, "--eval_k")
    return parse_ks(value)[0] if value else 10


def write_tables(out: Path, results: list[RunResult], summary: pd.DataFrame, runs: pd.DataFrame,
                 meta: dict[str, Any]) -> list[Path]:
    """results.csv, summary.csv, runs.csv and compare.json (each replaced atomically)."""
    from reclight.tables import write_table

    out.mkdir(parents=True, exist_ok=True)
    written = [write_table(curves_frame(results), out / "results.csv", True),
               write_table(summary, out / "summary.csv", True),
               write_table(runs, out / "runs.csv", True)]
    (out / "compare.json").write_text(json.dumps(meta, indent=2) + "\n")
    return [*written, out / "compare.json"]


def write_outputs(plan: ComparePlan, results: list[RunResult], summary: pd.DataFrame,
                  runs: pd.DataFrame, meta: dict[str, Any],
                  echo: Callable[[str], None]) -> list[Path]:
    """Write the CSVs, compare.json and (with matplotlib) the picture into ``plan.output``."""
    out = plan.output
    assert out is not None
    written = write_tables(out, results, summary, runs, meta)
    try:
        from reclight.compare_plot import plot_curves
    except ImportError:
        echo("reclight: note: matplotlib is not installed, so rmse_vs_time.png was not drawn; "
             f"pip install 'reclight[plot]', then `reclight compare --replot {out}`")
        return written
    written += plot_curves(curves_frame(results), out, title_of(meta))
    return written


def data_label(description: str) -> str:
    """``ml-100k: 943 users, 1650 items`` from a DataModule's one-line description (the
    folder's name instead of its path, without the per-fold counts)."""
    head = description.split(";")[0]
    source, _, sizes = head.rpartition(": ")
    name = Path(source).name if source else head
    return f"{name}: {sizes}" if source else head


def title_of(meta: dict[str, Any]) -> str:
    folds = [f for f in meta.get("folds", []) if f]
    where = f", folds {','.join(folds)}" if folds else ""
    return (f"RMSE against training time: {data_label(meta.get('data', ''))}{where}\n"
            f"machine: {meta.get('machine', '')}")


def compare_models(plan: ComparePlan, echo: Callable[[str], None] = print,
                   progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run the plan; print and (with an output folder) write the results. Returns the summary."""
    progress = progress or (lambda line: print(line, file=sys.stderr))
    k = _eval_k(plan.flags)
    results: list[RunResult] = []
    runs = plan.runs()

    def meta() -> dict[str, Any]:
        return {"models": plan.models, "folds": [f or "" for f in plan.folds],
                "flags": plan.flags, "overrides": plan.overrides,
                "data": next((r.data for r in results if r.data), ""), "machine": machine()}

    for index, (model, fold) in enumerate(runs, 1):
        result = run_one(plan, model, fold)
        results.append(result)
        if plan.output is not None and index < len(runs):  # what is done survives a stop
            table = runs_frame(results, k)
            write_tables(plan.output, results, summary_frame(table, plan.models, k), table, meta())
        where = f" {fold}" if fold else ""
        if result.error:
            progress(f"[{index}/{len(runs)}] {model}{where}: failed: {result.error}")
        else:
            # A top-N model has no RMSE: it is reported by its NDCG@k instead.
            name, key = (("test RMSE", "test_rmse") if "test_rmse" in result.metrics
                         else (f"NDCG@{k}", f"test_ndcg@{k}"))
            progress(f"[{index}/{len(runs)}] {model}{where}: {name} "
                     f"{result.metrics.get(key, math.nan):.4f}, "
                     f"fit {result.metrics.get('fit_seconds', math.nan):.1f} s")
    runs_table = runs_frame(results, k)
    summary = summary_frame(runs_table, plan.models, k)
    echo(format_summary(summary, k))
    if plan.output is not None:
        paths = write_outputs(plan, results, summary, runs_table, meta(), echo)
        echo(f"wrote {', '.join(p.name for p in paths)} to {plan.output}")
    return summary


def replot(output: str | Path, echo: Callable[[str], None] = print) -> list[Path]:
    """Draw the picture again from a compare folder's results.csv and compare.json."""
    out = Path(output)
    if not (out / "results.csv").is_file():
        raise ConfigError(f"'{out}' holds no results.csv; run `reclight compare --output {out}` "
                          "first")
    try:
        from reclight.compare_plot import plot_curves
    except ImportError:
        raise ConfigError("drawing needs matplotlib; pip install 'reclight[plot]'") from None
    meta_path = out / "compare.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    paths = plot_curves(pd.read_csv(out / "results.csv", keep_default_na=True), out, title_of(meta))
    echo(f"wrote {', '.join(p.name for p in paths)} to {out}")
    return paths
