"""The closing summary of `reclight fit` and `reclight test`: what a user needs to judge a run.

The test metrics beside the baseline's on the same split (:mod:`reclight.baseline`), the
relative improvement of the headline metric (RMSE and MAE for explicit models, NDCG@k for
implicit ones), the fit time, where the run directory and the checkpoint are, and the next
commands to try with those real paths.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

COUNTS = ("unseen", "users")
BASELINE_NAME = {"explicit": "mean + biases", "implicit": "popularity"}


def metrics_table(name: str, metrics: dict[str, float], baseline: dict[str, float]) -> str:
    """Aligned lines: each test metric of the model, and of the baseline where it has one."""
    rows = {k[5:]: v for k, v in metrics.items() if k.startswith("test_")}
    if not rows:
        return ""
    width = max(len(k) for k in rows) + 2
    head = f"  {'test':<{width}}{name:>10}" + (f"  {'baseline':>10}" if baseline else "")
    lines = [head]
    for key, value in rows.items():
        if key in COUNTS:
            lines.append(f"  {key:<{width}}{int(value):>10}")
            continue
        base = baseline.get(f"test_{key}")
        lines.append(f"  {key:<{width}}{value:>10.4f}" + (f"  {base:>10.4f}" if base is not None
                                                            else ""))
    return "\n".join(lines)


def _change(value: float, base: float, lower_is_better: bool) -> str:
    """``3.6% better`` (relative to the baseline's value), ``2.0% worse`` or ``no change``."""
    if base == 0:
        return "no change" if value == 0 else ("worse" if lower_is_better else "better")
    change = (value - base) / abs(base) * 100.0
    if abs(change) < 0.05:
        return "no change"
    better = change < 0 if lower_is_better else change > 0
    return f"{abs(change):.1f}% {'better' if better else 'worse'}"


def headline(name: str, feedback: str, metrics: dict[str, float],
             baseline: dict[str, float], ks: tuple[int, ...]) -> str:
    """One line: the model's headline test metrics against the baseline's, and the fit time:
    ``mf: test RMSE 0.9111 (baseline 0.9450, 3.6% better), MAE ...; fit 0.83 s``."""
    keys = (("test_rmse", "RMSE", True), ("test_mae", "MAE", True)) if feedback == "explicit" \
        else ((f"test_ndcg@{ks[0]}", f"NDCG@{ks[0]}", False),)
    parts = []
    for key, label, lower in keys:
        if key not in metrics:
            continue
        part = f"{label} {metrics[key]:.4f}"
        if key in baseline:
            part += f" (baseline {baseline[key]:.4f}, {_change(metrics[key], baseline[key], lower)})"
        parts.append(part)
    line = f"{name}: " + (f"test {', '.join(parts)}" if parts else "no test set")
    if "val_rmse" in metrics and feedback == "explicit":
        line += f"; val RMSE {metrics['val_rmse']:.4f}"
    if "fit_seconds" in metrics:
        line += f"; fit {metrics['fit_seconds']:.2f} s"
    return line


def command_name() -> str:
    """How the user called reclight (``.venv/bin/reclight``), for commands to copy."""
    called = sys.argv[0] if sys.argv else ""
    return called if Path(called).name == "reclight" else "reclight"


def next_commands(checkpoint: str, users: list[str], k: int = 10) -> list[str]:
    """The commands to try next on this run's checkpoint."""
    if not checkpoint:
        return []
    prog, ckpt = command_name(), shlex.quote(checkpoint)
    lines = [f"{prog} test --ckpt {ckpt}"]
    if users:
        lines.append(f"{prog} recommend --ckpt {ckpt} --users {','.join(users)} -k {k}")
    return lines


def summary(name: str, feedback: str, metrics: dict[str, float], baseline: dict[str, float],
            ks: tuple[int, ...], run_dir: Path, checkpoint: str, users: list[str]) -> str:
    """The whole closing summary (see the module docstring)."""
    parts = []
    table = metrics_table(name, metrics, baseline)
    if table:
        parts.append(table)
    if baseline:
        parts.append(f"baseline: {BASELINE_NAME.get(feedback, 'baseline')} on the same split")
    parts.append(headline(name, feedback, metrics, baseline, ks))
    parts.append(f"run dir: {run_dir}")
    if checkpoint:
        parts.append(f"checkpoint: {checkpoint}")
    commands = next_commands(checkpoint, users)
    if commands:
        parts.append("next:\n" + "\n".join(f"  {line}" for line in commands))
    return "\n".join(parts)
