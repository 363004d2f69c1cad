"""DeepRec ablation on MovieLens 100K: activation, depth, code dropout, weight decay, re-feeding.

Each row changes one setting of the DEFAULT configuration (everything else at its default)
and reports test RMSE, MAE, fit seconds and the peak resident memory of the run. Every run is
a fresh child process (so peak memory is that run's alone) going through the same code path
as `reclight fit` (reclight.runner.run_fit).

    .venv/bin/python benchmarks/deeprec_ablation.py                  # u1 fold
    .venv/bin/python benchmarks/deeprec_ablation.py --folds u1,u2,u3,u4,u5
    .venv/bin/python benchmarks/deeprec_ablation.py --data /path/to/ml-100k --json out.json

``--compare autorec,deeprec`` instead runs each named model with its DEFAULT settings on every
fold, next to Surprise SVD (when installed) in the same run, with fit seconds and peak memory
per fold (for the temporal split: ``--folds temporal --extra "--data.time_cut 0.8"``), then
each model's mean RMSE and fit seconds with their ratios to Surprise SVD's, and the load average.
``--also "LABEL=MODEL FLAGS..."`` (repeatable) adds a non-default setting as its own rows, e.g.
``--also "deeprec-paper=deeprec --model.dropout 0.8 --model.weight_decay 0"``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = os.environ.get("RECLIGHT_DATA", str(ROOT.parent / "shared" / "data")) + "/ml-100k"

# (group, label, flags that differ from the defaults). The defaults are selu, hidden
# 512,512,1024 (6 layers), dropout 0.5, weight decay 0.005 and refeed_steps 1, so each group's
# remaining setting is the "defaults" row.
ABLATION: list[tuple[str, str, list[str]]] = [
    ("all", "defaults (selu, 6 layers, dropout 0.5, weight decay 0.005, refeed 1)", []),
    ("activation", "elu", ["--model.activation", "elu"]),
    ("activation", "relu", ["--model.activation", "relu"]),
    ("activation", "sigmoid", ["--model.activation", "sigmoid"]),
    ("activation", "sigmoid, linear last layer",
     ["--model.activation", "sigmoid", "--model.linear_last", "true"]),
    ("depth", "2 layers (hidden 512)", ["--model.hidden", "512"]),
    ("depth", "4 layers (hidden 512,512)", ["--model.hidden", "512,512"]),
    ("dropout", "dropout 0", ["--model.dropout", "0.0"]),
    ("dropout", "dropout 0.8", ["--model.dropout", "0.8"]),
    ("weight decay", "weight decay 0", ["--model.weight_decay", "0.0"]),
    ("weight decay", "the paper's: dropout 0.8, weight decay 0",
     ["--model.dropout", "0.8", "--model.weight_decay", "0.0"]),
    ("re-feeding", "refeed_steps 0", ["--model.refeed_steps", "0"]),
]


def run_child(args: list[str]) -> dict:
    """One `reclight fit` in a fresh process: its metrics plus peak RSS in MiB."""
    # The fit's CPU seconds (this process, all threads) beside its wall seconds: on a shared box
    # the wall time follows the other jobs, the CPU time much less.
    code = ("import json, resource, sys, time, warnings; warnings.filterwarnings('ignore');"
            "import lightning as L; from reclight.runner import run_fit;\n"
            "class CPU(L.Callback):\n"
            "    def on_train_start(self, *a): self.t = time.process_time()\n"
            "    def on_train_end(self, *a): self.s = time.process_time() - self.t\n"
            "cpu = CPU(); r = run_fit(json.loads(sys.argv[1]), quiet=True, callbacks=[cpu])['metrics'];"
            "r['fit_cpu_seconds'] = cpu.s;"
            "r['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
            "print('RESULT ' + json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True,
                         text=True, cwd=ROOT, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"run failed: {' '.join(args)}\n{out.stderr[-2000:]}")


def fit_args(model: str, data: str, fold: str, extra: list[str]) -> list[str]:
    return ["--model", model, "--data", data, "--data.split", fold,
            "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            # Every child writes its metrics.json into ./runs; each run replaces the last one's
            # (the figures are collected from the child's return value, not from the files).
            "--overwrite", *extra]


SURPRISE = r"""
import json, resource, sys, time
from surprise import SVD, Dataset, Reader
import pandas as pd
from reclight.data import RatingDataModule
dm = RatingDataModule(**json.loads(sys.argv[1]))
def frame(r):
    return pd.DataFrame({"u": r.users.numpy(), "i": r.items.numpy(), "r": r.ratings.numpy()})
tr = frame(dm.train)
data = Dataset.load_from_df(tr[["u", "i", "r"]], Reader(rating_scale=dm.rating_range))
algo = SVD(random_state=0)
t, c = time.perf_counter(), time.process_time(); algo.fit(data.build_full_trainset())
fit_s, fit_cpu = time.perf_counter() - t, time.process_time() - c
te = frame(dm.test)
pred = [algo.predict(u, i).est if u >= 0 and i >= 0 else dm.global_mean for u, i in zip(te.u, te.i)]
err = pd.Series(pred) - te.r
print("RESULT " + json.dumps({"test_rmse": float((err ** 2).mean() ** 0.5), "test_mae": float(err.abs().mean()),
      "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_surprise(data: str, fold: str, extra: list[str]) -> dict | None:
    """Surprise SVD (defaults, seed 0) on the same train/test parts; None if not installed."""
    kwargs: dict = {"source": data, "split": fold}
    for i in range(0, len(extra) - 1, 2):
        if extra[i].startswith("--data."):
            kwargs[extra[i][7:]] = float(extra[i + 1])
    out = subprocess.run([sys.executable, "-c", SURPRISE, json.dumps(kwargs)], capture_output=True,
                         text=True, cwd=ROOT, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return None


def parse_also(spec: str) -> tuple[str, str, list[str]]:
    """``"LABEL=MODEL FLAGS..."`` -> (label, model, flags)."""
    label, sep, rest = spec.partition("=")
    words = rest.split()
    if not sep or not label.strip() or not words:
        raise SystemExit(f"--also '{spec}' must look like 'LABEL=MODEL --model.flag value ...'")
    return label.strip(), words[0], words[1:]


def compare(models: list[str], data: str, folds: list[str], extra: list[str],
            also: list[tuple[str, str, list[str]]] = ()) -> list[dict]:
    """Default settings of each model, each ``also`` setting, and Surprise SVD on each fold."""
    rows = []
    print(f"load average {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / "
          f"{os.getloadavg()[2]:.1f} (1 / 5 / 15 min) on {os.cpu_count()} cores at the start\n")
    print("| model | fold | test RMSE | test MAE | fit s | fit CPU s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    runs = [(m, m, []) for m in models] + list(also) + [("surprise-svd", "surprise-svd", [])]
    for name, model, flags in runs:
        per = []
        for fold in folds:
            r = (run_surprise(data, fold, extra) if model == "surprise-svd"
                 else run_child(fit_args(model, data, fold, [*extra, *flags])))
            if r is None:
                break
            per.append(r)
            rows.append({"model": name, "fold": fold, **{k: r[k] for k in
                         ("test_rmse", "test_mae", "fit_seconds", "fit_cpu_seconds",
                          "peak_rss_mib")}})
            print(f"| {name} | {fold} | {r['test_rmse']:.4f} | {r['test_mae']:.4f} | "
                  f"{r['fit_seconds']:.1f} | {r['fit_cpu_seconds']:.1f} | "
                  f"{r['peak_rss_mib']:.0f} |", flush=True)
        if len(per) > 1:
            mean = {k: sum(r[k] for r in per) / len(per) for k in per[0]}
            print(f"| **{name}** | **mean** | **{mean['test_rmse']:.4f}** | {mean['test_mae']:.4f} | "
                  f"{mean['fit_seconds']:.1f} | {mean['fit_cpu_seconds']:.1f} | "
                  f"{max(r['peak_rss_mib'] for r in per):.0f} (max) |", flush=True)
    print_ratios(rows)
    return rows


def print_ratios(rows: list[dict]) -> None:
    """Each model's mean test RMSE and fit seconds over the folds, and their ratios to Surprise
    SVD's in the same run (when it ran)."""
    names = list(dict.fromkeys(r["model"] for r in rows))
    means = {n: {k: sum(r[k] for r in rows if r["model"] == n) / sum(r["model"] == n for r in rows)
                 for k in ("test_rmse", "fit_seconds", "fit_cpu_seconds")} for n in names}
    svd = means.get("surprise-svd")
    print(f"\nload average {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / "
          f"{os.getloadavg()[2]:.1f} (1 / 5 / 15 min) on {os.cpu_count()} cores at the end")
    print("| model | mean test RMSE | RMSE / SVD's | fit s per fold | fit time / SVD's | "
          "fit CPU s per fold |")
    print("|---|---|---|---|---|---|")
    for n in names:
        m = means[n]
        ratio = (f"{m['test_rmse'] / svd['test_rmse']:.3f} | {m['fit_seconds']:.1f} | "
                 f"{m['fit_seconds'] / svd['fit_seconds']:.1f}x") if svd else \
            f"- | {m['fit_seconds']:.1f} | -"
        ratio += f" | {m['fit_cpu_seconds']:.1f}"
        print(f"| {n} | {m['test_rmse']:.4f} | {ratio} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="MovieLens 100K folder")
    parser.add_argument("--folds", default="u1", help="comma-separated predefined folds")
    parser.add_argument("--model", default="deeprec")
    parser.add_argument("--json", default=None, help="also write all results here")
    parser.add_argument("--compare", default=None, help="models to run with defaults, e.g. autorec,deeprec")
    parser.add_argument("--also", action="append", default=[],
                        help="with --compare: 'LABEL=MODEL FLAGS...' rows beside the defaults")
    parser.add_argument("--extra", default="", help="extra flags for every run, e.g. '--data.time_cut 0.8'")
    opts = parser.parse_args()
    folds = opts.folds.split(",")
    if opts.compare:
        rows = compare(opts.compare.split(","), opts.data, folds, opts.extra.split(),
                       [parse_also(a) for a in opts.also])
        if opts.json:
            Path(opts.json).write_text(json.dumps(rows, indent=2) + "\n")
        return
    rows = []
    print(f"| setting | changed flags | test RMSE | test MAE | fit s | peak RSS MiB |  ({opts.model}, folds {opts.folds})")
    print("|---|---|---|---|---|---|")
    for group, label, extra in ABLATION:
        key = json.dumps(extra)
        results = [run_child(fit_args(opts.model, opts.data, f, extra)) for f in folds]
        mean = {k: sum(r[k] for r in results) / len(results)
                for k in ("test_rmse", "test_mae", "fit_seconds", "peak_rss_mib")}
        rows.append({"group": group, "label": label, "flags": extra, "folds": folds, **mean})
        print(f"| {group}: {label} | {' '.join(extra) or '-'} | {mean['test_rmse']:.4f} | "
              f"{mean['test_mae']:.4f} | {mean['fit_seconds']:.1f} | {mean['peak_rss_mib']:.0f} |",
              flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
