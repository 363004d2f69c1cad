"""A real `reclight fit` process killed mid-epoch resumes to the metrics of an uninterrupted run,
and SIGTERM / Ctrl-C end in one line naming the last checkpoint and the resume command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Small synthetic data and small batches: an epoch takes a second or two, long enough to be
# killed in the middle (the kill comes within milliseconds of the first last.ckpt), short
# enough for the default suite. A validation carve makes the best-epoch checkpoint differ
# from last.ckpt, the case where Lightning alone would skip writing last.ckpt.
FLAGS = ["--model", "mf", "--data.synthetic_ratings", "6000", "--data.batch_size", "16",
         "--data.val_size", "0.1", "--trainer.max_epochs", "3",
         "--trainer.enable_progress_bar", "false", "--seed_everything", "7"]
CMD = [sys.executable, "-c", "from reclight.cli import main; main()", "fit"]


def _fit(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *FLAGS, "--trainer.default_root_dir", str(root), *extra],
                          capture_output=True, text=True, timeout=400)


def _start(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*CMD, *FLAGS, "--trainer.default_root_dir", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(root: Path, proc: subprocess.Popen[str]) -> Path:
    """The first last.ckpt, as soon as it is there (Lightning writes it atomically: a temporary
    file moved into place), while the run goes on into its next epoch."""
    deadline = time.monotonic() + 400  # a loaded box takes tens of seconds to start torch
    while time.monotonic() < deadline:
        found = list(root.glob("mf/version_*/checkpoints/last.ckpt"))
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("no last.ckpt within 400 s")


def _epoch_of(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])


def _test_metrics(run: subprocess.CompletedProcess[str]) -> dict[str, float]:
    assert run.returncode == 0, run.stderr[-2000:]
    run_dir = Path(run.stdout.split("run dir: ")[1].split()[0])
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    return {k: v for k, v in metrics.items() if k.startswith("test_")}


def test_a_killed_fit_resumes_to_the_uninterrupted_metrics(tmp_path: Path) -> None:
    whole_run = _start(tmp_path / "whole")  # side by side: one start-up's wait for both
    proc = _start(tmp_path / "killed")
    last = _wait_for_checkpoint(tmp_path / "killed", proc)
    proc.send_signal(signal.SIGKILL)  # no handler can run: the power-cut case
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    killed_at = _epoch_of(last)
    assert killed_at < 2, "the run got to its last epoch before the kill"
    assert not list((tmp_path / "killed").glob("mf/version_*/metrics.json"))
    out, err = whole_run.communicate(timeout=400)
    whole = _test_metrics(subprocess.CompletedProcess(whole_run.args, whole_run.returncode,
                                                      out, err))
    resumed = _fit(tmp_path / "killed", "--ckpt_path", "last")
    assert f"resuming from {last}" in resumed.stderr
    again = _test_metrics(resumed)
    assert set(again) == set(whole) and "test_rmse" in whole
    difference = max(abs(again[key] - whole[key]) for key in whole)
    print(f"SIGKILL in epoch {killed_at + 2}, resumed from the end of epoch {killed_at + 1}: "
          f"largest test-metric difference {difference:.3g} over {len(whole)} metrics")
    # The same seed, the same epochs: the same numbers, to the last bit on CPU.
    assert difference == 0.0, {k: (whole[k], again[k]) for k in whole if whole[k] != again[k]}


def test_sigterm_exits_non_zero_naming_the_checkpoint_and_the_resume_command(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    _wait_for_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("reclight:")]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "Traceback" not in err, err[-2000:]
    assert "last.ckpt" in lines[0] and "--ckpt_path" in lines[0] and "config.yaml" in lines[0]
    assert not list(tmp_path.glob("mf/version_*/metrics.json"))  # no record of a success


def test_ctrl_c_exits_non_zero_naming_the_checkpoint(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    _wait_for_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("reclight:")]
    assert len(lines) == 1 and "Ctrl-C" in lines[0] and "last.ckpt" in lines[0], err[-2000:]
    assert "Traceback" not in err and "attempting graceful shutdown" not in err


def test_ckpt_path_last_without_a_checkpoint_is_one_line(tmp_path: Path) -> None:
    run = _fit(tmp_path, "--ckpt_path", "last")
    assert run.returncode == 2 and "no last.ckpt of model 'mf'" in run.stderr
    assert "Traceback" not in run.stderr


if os.name == "nt":  # pragma: no cover - POSIX signals
    pytestmark = pytest.mark.skip("POSIX signals")
