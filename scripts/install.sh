#!/usr/bin/env bash
# Installs reclight, every plugin in plugins/ and the test tools into ./.venv (created if absent).
# torch==2.13.0 goes in first: it is a CPU wheel, and installing it before anything that depends
# on torch stops pip from pulling the newest CUDA build (several GB) on a machine with no GPU.
# Usage: bash scripts/install.sh            (core + plugins + test tools)
#        RECLIGHT_VENV=path bash scripts/install.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RECLIGHT_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"$venv/bin/python" -c "import torch" 2>/dev/null || "${pip[@]}" "torch==${RECLIGHT_TORCH:-2.13.0}"
plugins=()
for dir in "$root"/plugins/*/; do
  [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir")
done
"${pip[@]}" -e "$root[test,tensorboard]" "${plugins[@]}"
echo "reclight installed in $venv ($("$venv/bin/reclight" --version))" >&2
