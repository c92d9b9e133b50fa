#!/usr/bin/env bash
# A/B of two spindle_bench binaries on this noisy VM: alternated rounds over fresh copies.
#
#   scripts/ab.sh [--copies K] [--rounds R] [--workers W] [--scale F] [--runs N]
#                 --only w1,w2 OLD_BINARY NEW_BINARY [-- extra spindle_bench args]
#
# Why copies: on the 2-core development VM two byte-identical files of the same binary
# ran queue_mpsc at 33-46 and 23-27 ns/item (bench/RESULTS.md, "Where a binary's pages
# land"): where the kernel placed the file's pages decided it, not the code. So each
# binary is copied K times (default 3) into a temporary directory (each copy gets pages
# of its own), and every round runs each copy once, old and new interleaved, the order
# reversed every other round (the VM also drifts between fast and slow modes within
# minutes). Each run reports the median of --runs timed runs; the table gives, per
# workload, the median over all copies and rounds of each side, their ranges, and
# new/old (< 1: the new binary is faster for time-like units). Raw lines go to stderr.
set -euo pipefail
copies=3 rounds=2 workers=2 scale=0.3 runs=5 only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --copies) copies="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --scale) scale="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        -h|--help) sed -n 2,15p "$0"; exit 0 ;;
        --) shift; break ;;
        -*) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [[ $# -lt 2 || -z "$only" ]]; then
    echo "usage: scripts/ab.sh [--copies K] [--rounds R] [--workers W] [--scale F] [--runs N] --only LIST OLD NEW [-- args]" >&2
    exit 2
fi
old="$1" new="$2"; shift 2
[[ "${1:-}" == "--" ]] && shift
for b in "$old" "$new"; do
    [[ -x "$b" ]] || { echo "ab.sh: $b is not an executable" >&2; exit 2; }
done
for n in "$copies" "$rounds" "$runs"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "ab.sh: counts must be positive integers" >&2; exit 2; }
done

dir="$(mktemp -d /tmp/spindle-ab.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
for c in $(seq "$copies"); do
    cp "$old" "$dir/old.$c"
    cp "$new" "$dir/new.$c"
done
raw="$dir/raw.txt"
: > "$raw"
for r in $(seq "$rounds"); do
    for c in $(seq "$copies"); do
        if (( (r + c) % 2 == 0 )); then order="old new"; else order="new old"; fi
        for side in $order; do
            "$dir/$side.$c" --system spindle --runs "$runs" --scale "$scale" --workers "$workers" \
                --only "$only" "$@" 2>/dev/null |
                grep -o 'workload=[a-z_0-9]* system=spindle value=[0-9.e+-]*' |
                sed "s/ system=spindle//; s/^/$side copy=$c round=$r /" | tee -a "$raw" >&2
        done
    done
done
python3 - "$raw" "$workers" "$scale" <<'EOF'
import re, statistics, sys
vals = {}
for line in open(sys.argv[1]):
    m = re.match(r'(old|new) copy=\d+ round=\d+ workload=(\S+) value=(\S+)', line)
    if m:
        vals.setdefault(m.group(2), {"old": [], "new": []})[m.group(1)].append(float(m.group(3)))
print(f"| workload ({sys.argv[2]} workers, scale {sys.argv[3]}) | old median (min-max) | new median (min-max) | new/old |")
print("|---|---|---|---|")
for w, d in vals.items():
    if not d["old"] or not d["new"]:
        print(f"| {w} | missing runs | | |")
        continue
    o, n = statistics.median(d["old"]), statistics.median(d["new"])
    ratio = f"{n / o:.3f}" if o else "-"
    print(f"| {w} | {o:.4g} ({min(d['old']):.4g}-{max(d['old']):.4g}) | "
          f"{n:.4g} ({min(d['new']):.4g}-{max(d['new']):.4g}) | {ratio} |")
EOF
