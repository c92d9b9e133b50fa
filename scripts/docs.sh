#!/usr/bin/env bash
# Builds the API reference of spindle's public headers with Doxygen (docs/Doxyfile).
#   scripts/docs.sh [OUT_DIR]      default build/docs; the pages land in OUT_DIR/html
# Fails, listing them, when Doxygen warns: an undocumented public name, a @param that
# names no parameter, a broken \ref. detail/ headers and namespaces are not API.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v doxygen >/dev/null || scripts/install-deps.sh
out="$(mkdir -p "${1:-build/docs}" && cd "${1:-build/docs}" && pwd)"
rm -rf "$out/html" "$out/warnings.log"
SPINDLE_DOCS_OUT="$out" doxygen docs/Doxyfile
if [ -s "$out/warnings.log" ]; then
  echo "doxygen: $(wc -l <"$out/warnings.log") warning(s) on the public API:" >&2
  cat "$out/warnings.log" >&2
  exit 1
fi
echo "API reference: $out/html/index.html"
