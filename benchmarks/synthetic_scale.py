"""Row autoencoders at scale on the seeded synthetic data: seconds per epoch and peak memory.

Row views densify one batch of rows at a time (reclight.data.views.RowBatches), so memory
grows with batch size x row width (items for user rows), never with users x items: the dense
10M-rating matrix (200k users x 100k items, float32) would need 80 GB. Each configuration runs
in a fresh process; an epoch is timed over the first ``--batches`` training batches and
extrapolated to the whole epoch (a full 10M-rating epoch takes too long for a 2-core box).

    .venv/bin/python benchmarks/synthetic_scale.py                       # 1M and 10M ratings
    .venv/bin/python benchmarks/synthetic_scale.py --ratings 1000000 --batch-sizes 32,256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import logging; logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
from reclight.data import RatingDataModule  # reclight before torch: it sets OMP_WAIT_POLICY
from reclight.registry import get_registry
from reclight.testing import quiet_trainer

cfg = json.loads(sys.argv[1])
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
dm = RatingDataModule(source="synthetic", synthetic_ratings=cfg["ratings"], split="none",
                      batch_size=cfg["batch_size"], seed=0)
cls = get_registry().get(cfg["model"]).load()
model = cls(dm.training_data, **cfg["kwargs"])
dm.configure_for(model)  # the view the model trains on, for the batch count below
data_s, data_rss = time.perf_counter() - t0, rss()
full = len(dm.train_dataloader())
n = min(cfg["batches"], full)
import lightning as L

class EpochTimer(L.Callback):
    def on_train_epoch_start(self, trainer, pl_module): self.t = time.perf_counter()
    def on_train_epoch_end(self, trainer, pl_module): self.s = time.perf_counter() - self.t

timer = EpochTimer()
trainer = quiet_trainer(max_epochs=1, limit_train_batches=n, limit_val_batches=0, callbacks=[timer])
trainer.fit(model, datamodule=dm)
fit_s = timer.s
params = sum(p.numel() for p in model.parameters())
print("RESULT " + json.dumps({"users": dm.num_users, "items": dm.num_items,
    "batches_timed": n, "batches_per_epoch": full, "seconds_timed": fit_s,
    "epoch_seconds": fit_s * full / n, "data_seconds": data_s, "rss_after_data_mib": data_rss,
    "peak_rss_mib": rss(), "params": params}))
"""

MODELS = {
    "autorec": {"hidden": 500},                       # item-based: rows are items, width = users
    "deeprec": {"hidden": "512,512,1024", "dropout": 0.8},  # user-based: width = items
}


def run(model: str, ratings: int, batch_size: int, batches: int) -> dict:
    cfg = {"model": model, "ratings": ratings, "batch_size": batch_size, "batches": batches,
           "kwargs": MODELS[model]}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True,
                         text=True, cwd=ROOT, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**cfg, **json.loads(line[7:])}
    raise RuntimeError(f"{cfg} failed:\n{out.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", default="1000000,10000000")
    parser.add_argument("--models", default="autorec,deeprec")
    parser.add_argument("--batch-sizes", default="32,256")
    parser.add_argument("--batches", type=int, default=40, help="batches timed per run")
    parser.add_argument("--json", default=None)
    opts = parser.parse_args()
    rows = []
    print("| model | ratings | users x items | batch | s/epoch (timed batches) | peak RSS MiB "
          "| RSS after data MiB | training adds MiB | dense users x items would be MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for ratings in (int(r) for r in opts.ratings.split(",")):
        for model in opts.models.split(","):
            for bs in (int(b) for b in opts.batch_sizes.split(",")):
                r = run(model, ratings, bs, opts.batches)
                rows.append(r)
                dense = r["users"] * r["items"] * 4 / 2**20
                print(f"| {model} | {ratings:,} | {r['users']:,} x {r['items']:,} | {bs} | "
                      f"{r['epoch_seconds']:.0f} ({r['batches_timed']}/{r['batches_per_epoch']}) | "
                      f"{r['peak_rss_mib']:.0f} | {r['rss_after_data_mib']:.0f} | "
                      f"{r['peak_rss_mib'] - r['rss_after_data_mib']:.0f} | {dense:,.0f} |", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
