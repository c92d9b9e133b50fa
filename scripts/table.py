#!/usr/bin/env python3
"""Reads WORKLOADS.md result lines (files or stdin) and prints one row per workload,
one column per system, with spindle/std_thread and spindle/best-peer ratios.

    scripts/table.py results/bench-*.txt [peer-lines.txt ...] [--csv out.csv] [--png out.png]

Lower is better except for fairness (jain), where the ratio is inverted so that < 1
always means "spindle is better". The PNG (needs gnuplot) charts the spindle/best-peer
ratios on a log scale.
"""
import re
import subprocess
import sys

LINE = re.compile(r"workload=(\S+) system=(\S+) value=(\S+) unit=(\S+)")
HIGHER_IS_BETTER = {"jain"}


def main(argv):
    csv_out = png_out = None
    files = []
    it = iter(argv)
    for a in it:
        if a == "--csv":
            csv_out = next(it)
        elif a == "--png":
            png_out = next(it)
        else:
            files.append(a)
    rows, units, systems = {}, {}, []
    streams = [open(f) for f in files] if files else [sys.stdin]
    for s in streams:
        for line in s:
            m = LINE.search(line)
            if not m:
                continue
            w, system, value, unit = m.groups()
            try:
                v = float(value)
            except ValueError:
                continue
            rows.setdefault(w, {})[system] = v
            units[w] = unit
            if system not in systems:
                systems.append(system)
    if "spindle" in systems:
        systems.remove("spindle")
        systems.insert(0, "spindle")
    head = ["workload", "unit"] + systems + ["spindle/std", "spindle/best peer"]
    table = []
    ratios = []
    for w, vals in rows.items():
        unit = units[w]
        sp = vals.get("spindle")
        peers = {k: v for k, v in vals.items() if k not in ("spindle", "std_thread") and v == v}
        def ratio(other):
            if sp is None or other is None or other == 0 or sp == 0:
                return None
            return other / sp if unit in HIGHER_IS_BETTER else sp / other
        r_std = ratio(vals.get("std_thread"))
        best = None
        if peers:
            best = max(peers.values()) if unit in HIGHER_IS_BETTER else min(peers.values())
        r_peer = ratio(best)
        if r_peer is not None:
            ratios.append((w, r_peer))
        fmt = lambda x: "–" if x is None else (f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}")
        table.append([w, unit] + [fmt(vals.get(s)) for s in systems] + [fmt(r_std), fmt(r_peer)])
    widths = [max(len(str(r[i])) for r in [head] + table) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(head)) + " |")
    print("|" + "|".join("-" * (wd + 2) for wd in widths) + "|")
    for r in table:
        print("| " + " | ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)) + " |")
    print("\nratios: < 1 means spindle is better (faster, or fairer for jain)")
    if csv_out:
        with open(csv_out, "w") as f:
            f.write(",".join(head) + "\n")
            for r in table:
                f.write(",".join(str(c) for c in r) + "\n")
    if png_out and ratios:
        data = "\n".join(f"{i} {r} {w}" for i, (w, r) in enumerate(ratios))
        script = f"""set terminal pngcairo size 1000,500
set output '{png_out}'
set logscale y
set style fill solid
set boxwidth 0.6
set ylabel 'spindle / best peer (lower is better)'
set xtics rotate by -45
unset key
plot '-' using 1:2:xtic(3) with boxes, 1 with lines lw 2
{data}
e
"""
        try:
            subprocess.run(["gnuplot"], input=script.encode(), check=True)
            print(f"chart: {png_out}")
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"(no chart: {e})", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
