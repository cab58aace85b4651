#!/usr/bin/env bash
# Installs nsnn_jax into ./.venv (created if missing) with the test extras and,
# where apt is available and the data are missing, Debian's Fashion-MNIST package.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
  echo "installing Debian's dataset-fashion-mnist (offline copy of Fashion-MNIST, MIT)"
  if ! $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; then
    $sudo apt-get update -q >/dev/null 2>&1 || true
    $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || echo "warning: could not install dataset-fashion-mnist; train.fmnist will need --data-dir or internet" >&2
  fi
fi
echo "nsnn_jax installed in .venv"
