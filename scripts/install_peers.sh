#!/usr/bin/env bash
# Optional: the other SNN libraries for `python -m benchmarks.peers`, into .venv
# (run scripts/install.sh first). PyTorch comes pinned to its CPU build through
# the `bench` extra. SpikingJelly and norse declare torchvision (and SpikingJelly
# torchaudio and tensorboard), which would pull a multi-GB CUDA build of PyTorch;
# the benchmark uses neither, so they are installed without their declared
# dependencies, whose runtime needs the extra already covers.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pip install -e ".[bench]"
.venv/bin/pip install --no-deps "spikingjelly>=0.0.0.0.14" "norse>=1.0"
.venv/bin/python -c "import torch, snntorch, norse.torch, spikingjelly.activation_based.neuron; print('peers installed: torch', torch.__version__)"
