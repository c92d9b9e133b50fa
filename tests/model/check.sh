#!/usr/bin/env bash
# Runs one spin model check: spin -a, compile pan.c, run pan, and judge the result.
#   tests/model/check.sh MODEL.pml pass|fail [-DNAME=VALUE ...]
# pass: the check must finish with "errors: 0" and a complete search.
# fail: pan must report an error (a broken variant the model must reject).
set -euo pipefail
model="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
expect="$2"
shift 2
cc="${CC:-cc}"
command -v spin >/dev/null || { echo "spin is not installed (scripts/install-deps.sh installs it)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
cp "$(dirname "$model")"/*.pml .
name="$(basename "$model")"
spin -a "$@" "$name" >spin.log 2>&1 || { cat spin.log; echo "spin -a failed" >&2; exit 2; }
# SAFETY: assertions and invalid end states (a waiter parked forever); COLLAPSE
# compresses the state vectors.
"$cc" -O2 -DSAFETY -DCOLLAPSE -o pan pan.c 2>cc.log || { cat cc.log; exit 2; }
SECONDS=0
./pan -m300000 -w24 >pan.out 2>&1 || true
grep -E "^pan:|errors:|states, stored|transitions|elapsed|Search not completed|depth reached" pan.out || true
echo "defines: $* (pan ran ${SECONDS}s)"
errors=$(sed -nE 's/.*errors: ([0-9]+).*/\1/p' pan.out | head -1)
[ -n "$errors" ] || { cat pan.out; echo "could not read pan's result" >&2; exit 2; }
case "$expect" in
  pass)
    if [ "$errors" != 0 ]; then
      echo "MODEL CHECK FAILED: counterexample trail:" >&2
      spin -t -p "$@" "$name" 2>&1 | tail -60 >&2 || true
      exit 1
    fi
    if grep -q "max search depth too small" pan.out; then echo "search depth too small: the search was cut" >&2; exit 1; fi
    echo "OK: no assertion violation, no invalid end state" ;;
  fail)
    if [ "$errors" = 0 ]; then echo "BROKEN VARIANT ACCEPTED: the model failed to catch the bug" >&2; exit 1; fi
    echo "OK: spin rejected the broken variant, as it must" ;;
  *) echo "expect must be pass or fail" >&2; exit 2 ;;
esac
