"""reclight models on the canonical MovieLens 100K folds u1..u5, beside Surprise SVD.

Each model is built exactly as ``reclight fit`` builds it: the class comes from the plugin
registry, the data from ``RatingDataModule(source=DIR, split="uN", **cls.data_defaults)``,
the model from the DataModule's training data, and it trains under a Lightning
Trainer with the core and model ``trainer_defaults`` (logger, checkpoints and progress bar
off, so that the fit time is the training itself). No model is special-cased. The test
metrics are the core's ``trainer.test`` RMSE/MAE on uN.test.

When ``scikit-surprise`` is importable, Surprise's SVD with its default settings trains on
the same folds in the same process, its fits interleaved with the models' fits so that a
busy machine slows both alike; the headline is the ratio of fit times. Fit seconds are the
median of ``--repeats`` fits. ``reclight fit --model NAME --data DIR --data.split u1`` runs
as a subprocess (the ``reclight`` script beside this Python) ``--repeats`` times per model and
its median wall time, start-up included, is reported.

    python benchmarks/movielens_folds.py --models mf
    python benchmarks/movielens_folds.py --models mf,autorec --folds u1,u2 --write

Exit status 2, with one line on stderr, when the data folder or a model is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import reclight  # noqa: F401  first: it sets OMP_WAIT_POLICY before anything loads torch

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SURPRISE = "Surprise SVD"


def default_data_dir() -> Path:
    root = os.environ.get("RECLIGHT_DATA")
    return Path(root) / "ml-100k" if root else REPO.parent / "shared" / "data" / "ml-100k"


@dataclass
class FoldResult:
    rmse: float
    mae: float
    fit_seconds: list[float] = field(default_factory=list)

    @property
    def fit(self) -> float:
        return statistics.median(self.fit_seconds)


# ---- reclight ---------------------------------------------------------------------------
def fit_reclight(name: str, data_dir: Path, fold: str, workdir: str,
                 evaluate: bool) -> tuple[float, float | None, float | None]:
    """Fit one registered model on one fold; (fit seconds, test RMSE, test MAE)."""
    import lightning as L

    from reclight.data import RatingDataModule
    from reclight.registry import get_registry
    from reclight.lightning_cli import trainer_defaults_for

    cls = get_registry().get(name).load()
    L.seed_everything(0, verbose=False)  # the CLI's default --seed_everything
    dm = RatingDataModule(source=str(data_dir), split=fold, **cls.data_defaults)
    model = cls(dm.training_data)  # the DataModule reads the model's view in setup
    settings = {**trainer_defaults_for(cls), "default_root_dir": workdir,
                "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                "enable_model_summary": False}
    trainer = L.Trainer(**settings)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    if not evaluate:
        return seconds, None, None
    trainer.test(model, datamodule=dm, verbose=False)
    metrics = trainer.callback_metrics
    return seconds, float(metrics["test_rmse"]), float(metrics["test_mae"])


def end_to_end(name: str, data_dir: Path, workdir: str) -> tuple[float, list[str]]:
    """Wall seconds of one ``reclight fit`` subprocess (start-up included) and its command."""
    script = Path(sys.executable).parent / "reclight"
    command = [str(script), "fit", "--model", name, "--data", str(data_dir), "--data.split", "u1"]
    start = time.perf_counter()
    proc = subprocess.run(command + ["--trainer.default_root_dir", workdir],
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"`{shlex.join(command)}` failed ({proc.returncode}): {tail[0]}")
    return seconds, command


# ---- Surprise ---------------------------------------------------------------------------
def surprise_available() -> bool:
    try:
        import surprise  # noqa: F401
    except ImportError:
        return False
    return True


def surprise_fold(data_dir: Path, fold: str) -> tuple[Any, Any]:
    from surprise import Dataset, Reader
    from surprise.model_selection import PredefinedKFold

    reader = Reader(line_format="user item rating timestamp", sep="\t", rating_scale=(1, 5))
    data = Dataset.load_from_folds([(str(data_dir / f"{fold}.base"), str(data_dir / f"{fold}.test"))],
                                   reader=reader)
    return next(iter(PredefinedKFold().split(data)))


def fit_surprise(trainset: Any, testset: Any, evaluate: bool) -> tuple[float, float | None, float | None]:
    from surprise import SVD, accuracy

    algo = SVD(random_state=0)
    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    if not evaluate:
        return seconds, None, None
    predictions = algo.test(testset)
    return seconds, accuracy.rmse(predictions, verbose=False), accuracy.mae(predictions, verbose=False)


# ---- reporting --------------------------------------------------------------------------
def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def fold_table(name: str, folds: list[str], results: dict[str, dict[str, FoldResult]],
               with_surprise: bool) -> list[str]:
    head = f"| fold | {name} RMSE | {name} MAE | {name} fit s |"
    rule = "|---|---|---|---|"
    if with_surprise:
        head += f" {SURPRISE} RMSE | {SURPRISE} MAE | {SURPRISE} fit s | fit ratio |"
        rule += "---|---|---|---|"
    lines = [head, rule]
    rows = [(fold, results[name][fold], results.get(SURPRISE, {}).get(fold)) for fold in folds]
    for fold, ours, theirs in rows:
        line = f"| {fold} | {ours.rmse:.4f} | {ours.mae:.4f} | {ours.fit:.2f} |"
        if with_surprise and theirs is not None:
            line += f" {theirs.rmse:.4f} | {theirs.mae:.4f} | {theirs.fit:.2f} | {ours.fit / theirs.fit:.2f} |"
        lines.append(line)
    ours_all = [r[1] for r in rows]
    line = (f"| **mean** | **{mean([r.rmse for r in ours_all]):.4f}** | {mean([r.mae for r in ours_all]):.4f} "
            f"| {mean([r.fit for r in ours_all]):.2f} |")
    if with_surprise:
        theirs_all = [r[2] for r in rows]
        line += (f" {mean([r.rmse for r in theirs_all]):.4f} | {mean([r.mae for r in theirs_all]):.4f} "
                 f"| {mean([r.fit for r in theirs_all]):.2f} "
                 f"| **{mean([r.fit for r in ours_all]) / mean([r.fit for r in theirs_all]):.2f}** |")
    lines.append(line)
    return lines


def report(models: list[str], folds: list[str], results: dict[str, dict[str, FoldResult]],
           e2e: dict[str, tuple[float, list[str]]], with_surprise: bool, repeats: int) -> list[str]:
    lines: list[str] = []
    for name in models:
        lines += fold_table(name, folds, results, with_surprise) + [""]
    lines.append(f"Fit seconds: median of {repeats} fit(s) per fold; fit ratio: the model's fit "
                 f"time over {SURPRISE}'s in the same run (mean row: ratio of the mean times).")
    if not with_surprise:
        lines.append("scikit-surprise is not installed: no side-by-side anchor "
                     "(`pip install scikit-surprise`).")
    for name, (seconds, command) in e2e.items():
        lines.append(f"End to end, `{shlex.join(['reclight'] + command[1:])}`: {seconds:.2f} s wall, "
                     f"median of {repeats} (process start-up, data loading, fit with the CLI's "
                     "checkpoints and logs, test).")
    return lines


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    return (f"{os.cpu_count()} cores, CPU only ({cpu}), Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def write_section(title: str, body: list[str], path: Path = RESULTS) -> None:
    """Replace the section headed ``title`` in RESULTS.md, or append it."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\nWritten by the scripts in this folder (`--write`).\n"
    section = f"## {title}\n\n" + "\n".join(body).rstrip() + "\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


# ---- main -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mf", help="comma-separated registered model names")
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5", help="comma-separated folds")
    parser.add_argument("--data", type=Path, default=None,
                        help="MovieLens 100K folder (default $RECLIGHT_DATA/ml-100k, else "
                             "../shared/data/ml-100k beside the repository)")
    parser.add_argument("--repeats", type=int, default=3, help="fits per fold for the timings")
    parser.add_argument("--no-surprise", action="store_true", help="skip the Surprise anchor")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end CLI timing")
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args(argv)

    data_dir = (args.data or default_data_dir()).resolve()
    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    missing = [f for f in folds for ext in ("base", "test") if not (data_dir / f"{f}.{ext}").is_file()]
    if missing:
        print(f"movielens_folds: MovieLens 100K fold files not found in {data_dir} (missing "
              f"{missing[0]}.base/.test); pass --data DIR or set RECLIGHT_DATA", file=sys.stderr)
        return 2
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    from reclight.errors import RecLightError
    from reclight.registry import get_registry

    try:
        for name in models:
            get_registry().get(name)
    except RecLightError as exc:
        print(f"movielens_folds: {exc}", file=sys.stderr)
        return 2

    import logging

    import lightning  # noqa: F401  (configures its loggers on import; quieten them after)

    warnings.filterwarnings("ignore")
    for logger in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    with_surprise = not args.no_surprise and surprise_available()
    repeats = max(1, args.repeats)
    results: dict[str, dict[str, FoldResult]] = {name: {} for name in models}
    if with_surprise:
        results[SURPRISE] = {}
    with tempfile.TemporaryDirectory(prefix="reclight-bench-") as workdir:
        for fold in folds:
            split = surprise_fold(data_dir, fold) if with_surprise else None
            for rep in range(repeats):
                # Interleaved, so that a busy machine slows every contender alike.
                runs = [(name, lambda n=name: fit_reclight(n, data_dir, fold, workdir, rep == 0))
                        for name in models]
                if split is not None:
                    runs.append((SURPRISE, lambda: fit_surprise(split[0], split[1], rep == 0)))
                for name, run in runs:
                    seconds, rmse, mae = run()
                    if rep == 0:
                        results[name][fold] = FoldResult(rmse, mae)
                    results[name][fold].fit_seconds.append(seconds)
            summary = ", ".join(f"{name} RMSE {res[fold].rmse:.4f} fit {res[fold].fit:.2f}s"
                                for name, res in results.items())
            print(f"{fold}: {summary}", file=sys.stderr, flush=True)
        e2e: dict[str, tuple[float, list[str]]] = {}
        if not args.no_e2e:
            for name in models:
                try:
                    walls = [end_to_end(name, data_dir, workdir) for _ in range(repeats)]
                except RuntimeError as exc:
                    print(f"movielens_folds: end-to-end run skipped: {exc}", file=sys.stderr)
                    continue
                command = walls[0][1]
                e2e[name] = (statistics.median(w[0] for w in walls),
                             [command[0]] + [c.replace(str(data_dir), "<ml-100k>") for c in command[1:]])
    lines = report(models, folds, results, e2e, with_surprise, repeats)
    print("\n".join(lines))
    if args.write:
        command = "python benchmarks/movielens_folds.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
        body = [f"Date: {dt.date.today().isoformat()}. Machine: {machine()}.",
                f"Command: `{command.strip()}`", ""] + lines
        write_section(f"MovieLens 100K folds: {', '.join(models)}", body)
        print(f"written to {RESULTS.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
