"""Where a row autoencoder's training step spends its time: a py-spy profile, split by job.

Runs ``reclight fit``'s code path (the model's defaults, flags after ``--`` override them) on
MovieLens 100K ``u1`` in a child process under ``py-spy record`` (sampling, 250 Hz, Python
stacks; ``pip install py-spy``), then attributes every sample inside Lightning's training loop
to one job by its stack: densifying batches (the view's ``SparseRows.dense``), forward and loss,
backward, optimiser, re-feeding (everything under :class:`reclight.refeed.DenseRefeeding`, itself
split into forward, backward and optimiser), logging (``self.log``), schedulers, and the rest of
Lightning's loop. Samples outside the loop (imports, data, test) are reported apart.

    .venv/bin/python benchmarks/profile_autoencoders.py deeprec --epochs 5
    .venv/bin/python benchmarks/profile_autoencoders.py autorec --epochs 10 -- --data.batch_size 256
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = os.environ.get("RECLIGHT_DATA", str(ROOT.parent / "shared" / "data")) + "/ml-100k"

# Innermost frame wins: a closure's forward runs inside the optimiser's step() call.
MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("densify batches", ("reclight/data/sparse.py", "reclight/data/views.py")),
    ("logging", ("LightningModule.log ", "_log_training", "result.py", "logger_connector")),
    ("schedulers", ("step_schedulers", "lr_scheduler.py")),
    ("backward", ("Tensor.backward", "_engine_run_backward")),
    ("optimiser", ("torch/optim/", "zero_grad")),
    ("forward and loss", ("training_loss", "Module._call_impl", "masked_mse", "regularization",
                          "reconstruct")),
)
LOOP = "_TrainingEpochLoop.run"


def job_of(frames: list[str]) -> str:
    """The job a sampled stack (root first) belongs to."""
    refeed = any("reclight/refeed.py" in f for f in frames)
    for frame in reversed(frames):
        for job, keys in MARKERS:
            if any(k in frame for k in keys):
                return f"re-feeding: {job}" if refeed else job
    return "re-feeding: rest" if refeed else "Lightning's loop (rest)"


def summarise(raw: Path, rate: int) -> tuple[dict[str, int], int, int]:
    """Samples per job inside the training loop, their total, and the samples outside it."""
    jobs: collections.Counter[str] = collections.Counter()
    outside = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(LOOP in f for f in frames):
            outside += int(count)
            continue
        jobs[job_of(frames)] += int(count)
    return dict(jobs.most_common()), sum(jobs.values()), outside


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--data", default=DATA)
    args, flags = parser.parse_known_args(argv)
    args.flags = [f for f in flags if f != "--"]  # extra `reclight fit` flags
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("profile_autoencoders: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    fit = ["--model", args.model, "--data", args.data, "--data.split", "u1",
           "--trainer.max_epochs", str(args.epochs), *args.flags]
    code = ("import json, sys, time, warnings; warnings.filterwarnings('ignore');"
            "from reclight.runner import run_fit; t = time.perf_counter();"
            "r = run_fit(json.loads(sys.argv[1]), quiet=True)['metrics'];"
            "print('RESULT ' + json.dumps(r))")
    with tempfile.TemporaryDirectory(prefix="reclight-profile-") as tmp:
        raw = Path(tmp) / "profile.txt"
        proc = subprocess.run([spy, "record", "-r", str(args.rate), "--format", "raw", "-o",
                               str(raw), "--", sys.executable, "-c", code,
                               json.dumps(fit + ["--trainer.default_root_dir", tmp])],
                              capture_output=True, text=True, cwd=ROOT, check=False)
        result = next((json.loads(line[7:]) for line in proc.stdout.splitlines()
                       if line.startswith("RESULT ")), None)
        if proc.returncode != 0 or result is None or not raw.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            print("profile_autoencoders: the profiled fit failed: " + " | ".join(tail),
                  file=sys.stderr)
            return 1
        jobs, total, outside = summarise(raw, args.rate)
    steps = result.get("global_step") or result.get("steps")
    print(f"`reclight fit {' '.join(fit[:2] + fit[4:])}` on u1: training loop "
          f"{total / args.rate:.1f} s sampled ({total} samples at {args.rate} Hz; "
          f"{outside / args.rate:.1f} s outside it: imports, data, test), "
          f"fit {result.get('fit_seconds', float('nan')):.1f} s"
          + (f", {steps} optimiser steps" if steps else "")
          + f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print()
    print("| job | share of the training loop | seconds |")
    print("|---|---|---|")
    for job, n in jobs.items():
        print(f"| {job} | {100 * n / total:.1f}% | {n / args.rate:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
