"""DeepRec's per-step cost levers, measured apart from Lightning: threads, bf16, a sparse first
layer and narrower layers (issue 18, "Autoencoders near the compute bound").

One training step of the DeepRec network (reclight_deeprec.network.DeepAutoencoder, selu,
dropout 0.5, fused SGD with momentum, masked MSE) on a batch shaped like the default on
MovieLens 100K: 256 item rows of 943 users, 5.5% observed. Each line gives the wall and CPU
milliseconds per step (CPU time is steadier than wall time on a shared box) and the dense
GFLOP/s (6 x weights x batch per step). The first-layer lines time the encoder's first layer
(forward and weight gradient) dense against ``F.embedding_bag`` over the observed entries
(sparse @ dense) and torch's sparse COO matmul.

    .venv/bin/python benchmarks/deeprec_levers.py            # 1 and 2 threads
    .venv/bin/python benchmarks/deeprec_levers.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from reclight.losses import masked_mse
from reclight_deeprec.network import DeepAutoencoder

BATCH, WIDTH, DENSITY = 256, 943, 0.055


def timed(step: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Wall and CPU milliseconds per call, after one untimed call."""
    step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        step()
    return ((time.perf_counter() - wall) * 1e3 / repeat, (time.process_time() - cpu) * 1e3 / repeat)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(BATCH, WIDTH, generator=gen) < DENSITY
    values = torch.zeros(BATCH, WIDTH)
    values[mask] = torch.randn(int(mask.sum()), generator=gen)
    return values, mask


def network_step(hidden: list[int], bf16: bool) -> tuple[Callable[[], object], int]:
    torch.manual_seed(0)
    net = DeepAutoencoder(WIDTH, hidden, nn.SELU(), dropout=0.5)
    opt = torch.optim.SGD(net.parameters(), lr=0.04, momentum=0.9, weight_decay=0.005, fused=True)
    x, mask = batch()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = masked_mse(out.float(), x, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()

    weights = sum(p.numel() for p in net.parameters() if p.dim() == 2)
    return step, weights


def first_layer_steps() -> dict[str, Callable[[], object]]:
    x, _ = batch()
    w = nn.Parameter(torch.randn(512, WIDTH) * 0.03)
    b = nn.Parameter(torch.zeros(512))

    def dense() -> None:
        F.linear(x, w, b).sum().backward()

    def embedding_bag() -> None:
        rows, cols = x.nonzero(as_tuple=True)
        offsets = torch.searchsorted(rows, torch.arange(BATCH))
        h = F.embedding_bag(cols, w.t(), offsets, mode="sum", per_sample_weights=x[rows, cols])
        (h + b).sum().backward()

    def sparse_coo() -> None:
        (torch.sparse.mm(x.to_sparse(), w.t()) + b).sum().backward()

    return {"dense F.linear": dense, "F.embedding_bag over observed": embedding_bag,
            "torch.sparse.mm (COO)": sparse_coo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="intra-op thread counts to try")
    parser.add_argument("--repeat", type=int, default=10)
    opts = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; batch {BATCH} rows "
          f"of {WIDTH}, {DENSITY:.1%} observed")
    print("| threads | what | wall ms / step | CPU ms / step | dense GFLOP/s (wall) |")
    print("|---|---|---|---|---|")
    for threads in [int(t) for t in opts.threads.split(",")]:
        torch.set_num_threads(threads)
        for label, hidden, bf16 in [("step, hidden 512,512,943 (today's capped default)", [512, 512, 943], False),
                                    ("step, hidden 512,512,943, bf16 autocast", [512, 512, 943], True),
                                    ("step, hidden 256,256,512", [256, 256, 512], False)]:
            step, weights = network_step(hidden, bf16)
            wall, cpu = timed(step, opts.repeat)
            print(f"| {threads} | {label} | {wall:.1f} | {cpu:.1f} | "
                  f"{6 * weights * BATCH / wall / 1e6:.1f} |", flush=True)
        for label, step in first_layer_steps().items():
            wall, cpu = timed(step, 2 * opts.repeat)
            print(f"| {threads} | first layer forward + weight gradient: {label} | {wall:.1f} | "
                  f"{cpu:.1f} | - |", flush=True)


if __name__ == "__main__":
    main()
