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
step() { echo "install: $*" >&2; }  # one line per step, so a long install says what it does
if [ -x "$venv/bin/python" ]; then
  step "using the virtual environment $venv"
else
  step "creating the virtual environment $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
torch_version="${RECLIGHT_TORCH:-2.13.0}"
if "$venv/bin/python" -c "import torch" 2>/dev/null; then
  step "keeping the installed torch $("$venv/bin/python" -c "import torch; print(torch.__version__)")"
else
  step "installing torch==$torch_version (a CPU build; the longest step)"
  "${pip[@]}" "torch==$torch_version"
fi
plugins=()
names=()
for dir in "$root"/plugins/*/; do
  [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir") && names+=("$(basename "$dir")")
done
step "installing reclight (Lightning, pandas, test tools, matplotlib) and ${#names[@]} plugins: ${names[*]}"
"${pip[@]}" -e "$root[test,tensorboard,plot]" "${plugins[@]}"
step "done: reclight installed in $venv ($("$venv/bin/reclight" --version))"
