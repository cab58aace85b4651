#!/usr/bin/env bash
# Accelerator check: a GPU-relevant subset of the tests, then short runs of the benchmarks,
# every figure in one file. Under 8 minutes on one GPU. Installs nothing: it needs a Python
# with this project's dependencies and a CUDA build of jaxlib already there (the machine may
# have no internet), and says so and stops when there is none.
#
# Usage: scripts/device_check.sh [RESULT_FILE]
#   RESULT_FILE defaults to $OUT/device_check.txt when $OUT is set, else ./device_check.txt.
#   PYTHON=/path/to/python picks the interpreter (default: ./.venv/bin/python, else python3).
#   DEVICE_CHECK_ALLOW_CPU=1 runs it without an accelerator (to try the script itself).
set -uo pipefail
cd "$(dirname "$0")/.."

result=${1:-${OUT:+$OUT/device_check.txt}}
result=${result:-device_check.txt}
mkdir -p "$(dirname "$result")"
: >"$result"

python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=$(command -v python3 || true); fi
fi
if [ -z "$python" ] || [ ! -x "$python" ]; then
  echo "device_check: no Python found (looked at \$PYTHON, ./.venv/bin/python, python3)." >&2
  echo "  Install with scripts/install.sh plus a CUDA jaxlib (pip install -U 'jax[cuda12]') where there is internet." >&2
  exit 2
fi

log() { echo "$*" | tee -a "$result"; }

# 1. The interpreter has what the project needs, and JAX sees an accelerator.
if ! "$python" - >>"$result" 2>&1 <<'EOF'
import importlib, sys
missing = [name for name in ("jax", "flax", "optax", "numpy", "scipy", "pytest") if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"missing packages: {', '.join(missing)} (scripts/install.sh installs them; it needs internet)")
import jax
print(f"python {sys.version.split()[0]}, jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
EOF
then
  echo "device_check: $python lacks the project's dependencies; see $result." >&2
  exit 2
fi
backend=$("$python" -c 'import jax; print(jax.default_backend())' 2>/dev/null)
if [ "$backend" = "cpu" ] && [ "${DEVICE_CHECK_ALLOW_CPU:-0}" != "1" ]; then
  log "device_check: JAX finds no accelerator with $python (backend cpu). A CUDA jaxlib is needed:"
  log "  pip install -U 'jax[cuda12]' where there is internet (scripts/install.sh installs the CPU build)."
  exit 3
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$result" 2>&1 || true
fi
log "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
run() {  # run LIMIT_SECONDS TITLE COMMAND...
  local limit=$1 title=$2
  shift 2
  log ""
  log "=== $title: $*"
  local start=$SECONDS
  timeout "$limit" "$@" >>"$result" 2>&1
  local rc=$?
  log "=== $title: exit $rc after $((SECONDS - start)) s"
  [ $rc -eq 0 ] || status=1
}

# 2. The tests whose figures depend on the backend: the neuron, NDL gradients, the sampler's law.
run 120 tests "$python" -m pytest tests/test_neuron.py tests/test_ndl_gradient.py tests/test_sampling.py -q -x -p no:cacheprovider

# 3. Short benchmark runs (each prints rows, then one JSON line).
run 60 "peers conv" "$python" -m benchmarks.peers --workload conv --candidates jax_nsnn,jax_dsnn,jax_floor --no-memory --rounds 3
run 40 "peers mlp" "$python" -m benchmarks.peers --workload mlp --candidates jax_nsnn,jax_dsnn,jax_floor --no-memory --rounds 3
run 60 "cifar cifarnet" "$python" -m benchmarks.cifar --arch cifarnet --timesteps 2 --batch-size 32 --remat both --rounds 3 --steps 3
run 60 "cifar resnet18" "$python" -m benchmarks.cifar --arch resnet18 --timesteps 2 --batch-size 32 --rounds 3 --steps 3
run 50 "long T" "$python" -m benchmarks.long_t --timesteps 8,16,32,48 --unroll auto,full,8 --conv-batch-size 32 --rounds 2 --steps 2
if [ -f benchmarks/trials.py ]; then
  run 50 trials "$python" -m benchmarks.trials
fi

log ""
log "device_check: done in $SECONDS s, $( [ $status -eq 0 ] && echo 'all steps passed' || echo 'some steps FAILED (see above)'); figures in $result"
exit $status
