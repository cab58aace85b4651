#!/usr/bin/env bash
# Runs Debian's dieharder on the hash16 sampler's bit stream (python -m benchmarks.bitstream)
# and prints the PASSED / WEAK / FAILED counts. Not part of the unit tests: it takes long.
#
# Usage: scripts/dieharder.sh [RESULT_FILE]
#   DIEHARDER_TESTS="0 1 2 ..." picks the dieharder test numbers (dieharder -l lists them);
#   DIEHARDER_TESTS=all runs the whole battery (dieharder -a; hours on a small CPU).
#   PYTHON=/path/to/python picks the interpreter (default: ./.venv/bin/python, else python3).
# Needs dieharder (apt-get install -y dieharder).
set -euo pipefail
cd "$(dirname "$0")/.."
result=${1:-dieharder.txt}
if ! command -v dieharder >/dev/null 2>&1; then
  echo "dieharder.sh: dieharder is not installed (apt-get install -y dieharder)." >&2
  exit 2
fi
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Default subset: the Diehard tests, the STS ones and the RGB bit distribution, each at its
# default number of p-values; the RGB lagged sums (203) and DAB tests (206-209) are left to DIEHARDER_TESTS=all.
tests=${DIEHARDER_TESTS:-"0 1 2 3 4 8 9 10 11 12 13 15 16 17 100 101 102 200 202 204 205"}
: >"$result"
echo "dieharder on python -m benchmarks.bitstream, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" | tee -a "$result"
if [ "$tests" = "all" ]; then
  "$python" -m benchmarks.bitstream | dieharder -g 200 -a | tee -a "$result"
else
  for t in $tests; do
    # The RGB bit distribution needs a tuple width: 1 to 8 bits, as -a runs it.
    if [ "$t" = 200 ]; then widths="1 2 3 4 5 6 7 8"; else widths=0; fi
    for n in $widths; do
      echo "--- dieharder -d $t${n#0} ($SECONDS s so far)" >&2
      if [ "$n" = 0 ]; then
        "$python" -m benchmarks.bitstream | dieharder -g 200 -d "$t" | tee -a "$result"
      else
        "$python" -m benchmarks.bitstream | dieharder -g 200 -d "$t" -n "$n" | tee -a "$result"
      fi
    done
  done
fi
passed=$(grep -c '|  *PASSED' "$result" || true)
weak=$(grep -c '|  *WEAK' "$result" || true)
failed=$(grep -c '|  *FAILED' "$result" || true)
echo "summary: PASSED $passed, WEAK $weak, FAILED $failed ($SECONDS s); full output in $result" | tee -a "$result"
