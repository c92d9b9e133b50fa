#!/usr/bin/env bash
# The README's first command: installs what is missing, builds Release and runs the
# benchmark comparison (spindle_bench: spindle and the C++ baselines side by side,
# workload by workload), printing the WORKLOADS.md lines and a table.
#   scripts/bench.sh [spindle_bench args: --only w1,w2 --scale F --runs N --workers N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/install-deps.sh --bench
jobs="${SPINDLE_JOBS:-2}"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSPINDLE_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j"$jobs" --target spindle_bench
mkdir -p results
out="results/bench-$(date +%Y%m%d-%H%M%S).txt"
build/release/bench/spindle_bench "$@" | tee "$out"
python3 scripts/table.py "$out" --csv "${out%.txt}.csv" --png "${out%.txt}.png"
echo "raw lines: $out" >&2
