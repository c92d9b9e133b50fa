#!/usr/bin/env bash
# The README's second command: installs what is missing, builds and runs every test —
# in Release, under ThreadSanitizer, and under AddressSanitizer + UBSan (LSan on).
#   scripts/test.sh                 all three
#   scripts/test.sh release         one of: release | tsan | asan
# Environment: SPINDLE_JOBS (default 2), SPINDLE_STRESS_SCALE (default 1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/install-deps.sh
jobs="${SPINDLE_JOBS:-2}"
scale="${SPINDLE_STRESS_SCALE:-1}"
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(release tsan asan)
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/sanitizers/tsan.supp ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1 abort_on_error=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1 ${UBSAN_OPTIONS:-}"
status=0
for v in "${variants[@]}"; do
  case "$v" in
    release) san=""; type=Release; lto=ON ;;  # the code scripts/bench.sh measures (LTO)
    tsan) san=thread; type=RelWithDebInfo; lto=OFF ;;
    asan) san=address; type=RelWithDebInfo; lto=OFF ;;
    *) echo "unknown variant $v (release | tsan | asan)" >&2; exit 2 ;;
  esac
  dir="build/test-$v"
  echo "== $v: configure + build ($dir)" >&2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DSPINDLE_SANITIZE="$san" \
        -DSPINDLE_STRESS_SCALE="$scale" -DSPINDLE_BUILD_BENCH=OFF -DSPINDLE_LTO="$lto" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== $v: ctest" >&2
  if ! (cd "$dir" && ctest --output-on-failure -j"$jobs"); then
    status=1
  fi
done
exit $status
