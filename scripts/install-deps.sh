#!/usr/bin/env bash
# Installs what spindle needs from Debian's packages, only what is missing.
#   scripts/install-deps.sh            build + test dependencies (doxygen: scripts/docs.sh;
#                                      clang-19 + its ASan runtime: the shared repros' interp,
#                                      which g++ 12 miscompiles, tests/CMakeLists.txt)
#   scripts/install-deps.sh --bench    also the C++ peers (Boost.Fiber, oneTBB) and gnuplot
set -euo pipefail
pkgs=(g++ cmake make pkgconf python3 libconcurrentqueue-dev libmimalloc-dev libgtest-dev libbenchmark-dev spin doxygen clang-19 libclang-rt-19-dev)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(libboost-fiber-dev libboost-context-dev libtbb-dev gnuplot-nox golang-go)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
