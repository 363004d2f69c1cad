"""How long `reclight models` and `reclight plugins` take, and that they never import torch.

    .venv/bin/python benchmarks/listing_speed.py [--repeats 15]

Runs each listing command as a fresh subprocess (the `reclight` script beside this Python, as
a user runs it) ``--repeats`` times, interleaved with two references in the same run: the bare
interpreter start-up (``python -c pass``) and ``python -c "import torch"`` (what a listing
that imported torch would cost at least). Then one probe process runs each listing in-process
and reports which heavy modules it imported, and ``python -X importtime`` names the slowest
imports of ``reclight plugins``. Every installed plugin loads (RECLIGHT_LOAD_PLUGINS unset):
install the example plugin first (`reclight install -e examples/reclight-ease --no-deps`) to
measure with every plugin there is.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("reclight"))
HEAVY = ("torch", "lightning", "numpy", "pandas", "jsonargparse", "torchmetrics")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "reclight models": [SCRIPT, "models"],
    "reclight plugins": [SCRIPT, "plugins"],
    "reclight models --json": [SCRIPT, "models", "--json"],
    "reclight plugins --json": [SCRIPT, "plugins", "--json"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}
PROBE = """
import json, sys
from reclight import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps([m for m in %r if m in sys.modules]))
""" % (HEAVY,)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run; CPU time barely grows when other
    processes share the cores, wall time does."""
    cpu, start = cpu_seconds(), time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ})
    return time.perf_counter() - start, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    plugins = json.loads(subprocess.run([SCRIPT, "plugins", "--json"], check=True,
                                        capture_output=True, text=True).stdout)
    print("plugins loaded: " + ", ".join(f"{p['name']} ({p['dist']} {p['version']}, {p['status']})"
                                         for p in plugins))
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):  # interleaved, so a busy machine slows all alike
        for name, command in COMMANDS.items():
            seconds, used = wall(command)
            times[name].append(seconds)
            cpu[name].append(used)
    base = statistics.median(times["python -c pass"])
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("\n| command | median wall s | min wall s | wall minus interpreter start-up s | "
          "median CPU s |\n|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.3f} | {min(values):.3f} | {median - base:.3f} | "
              f"{statistics.median(cpu[name]):.3f} |")
    print("\n| command | heavy modules imported |\n|---|---|")
    for argv in (["models"], ["plugins"], ["models", "--json"], ["plugins", "--json"]):
        done = subprocess.run([sys.executable, "-c", PROBE, *argv], check=True,
                              capture_output=True, text=True)
        imported = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| `reclight {' '.join(argv)}` | {', '.join(imported) or 'none'} "
              f"(of {', '.join(HEAVY)}) |")
    trace = subprocess.run([sys.executable, "-X", "importtime", "-c",
                            "from reclight import cli\ntry: cli.main(['plugins'])\n"
                            "except SystemExit: pass"], capture_output=True, text=True).stderr
    rows = []
    for line in trace.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, module = (part.strip() for part in line[12:].split("|"))
            rows.append((int(cumulative), module))
    top = [r for r in sorted(rows, reverse=True) if not r[1].startswith(" ")][:8]
    print("\nslowest top-level imports of `reclight plugins` (python -X importtime, cumulative):")
    for cumulative, module in top:
        print(f"  {cumulative / 1000:7.1f} ms  {module}")


if __name__ == "__main__":
    main()
