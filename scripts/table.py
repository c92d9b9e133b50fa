#!/usr/bin/env python3
"""Reads WORKLOADS.md result lines (files or stdin) and prints a Markdown table.

    scripts/table.py results/X/raw.txt [more.txt ...] [--md out.md] [--csv out.csv] [--png out.png]
    scripts/table.py --sweep raw.txt ...   (lines whose extra ends in workers:N, from
                                            scripts/bench.sh --workers 1,2,4)

Default: one row per workload, one column per system, then spindle/std_thread and
spindle/best-peer (best of every other system, std_thread included). Lower is better
except for fairness (jain), where the ratio is inverted so that < 1 always means
"spindle is better". `n/a` = the workload does not apply to that system; `*` = that
system ran it smaller than WORKLOADS.md (extra scaled:F), per-op units stay comparable.
The PNG (gnuplot) charts both ratios per workload on a log scale.
--sweep: one row per (workload, system), one column per worker count; chart = value
relative to 1 worker.
"""
import math
import re
import subprocess
import sys

LINE = re.compile(r"workload=(\S+) system=(\S+) value=(\S+) unit=(\S+)(?: extra=(\S*))?")
HIGHER_IS_BETTER = {"jain"}


def parse(streams):
    rows, units, systems, marks, meta = {}, {}, [], {}, []
    for s in streams:
        for line in s:
            if line.startswith("# "):
                meta.append(line[2:].strip())
                continue
            m = LINE.search(line)
            if not m:
                continue
            w, system, value, unit, extra = m.groups()
            extra = extra or ""
            try:
                v = float(value)
            except ValueError:
                v = float("nan")
            yield_ = dict(w=w, system=system, v=v, unit=unit, extra=extra)
            rows.setdefault(w, []).append(yield_)
            units[w] = unit
            if system not in systems:
                systems.append(system)
    return rows, units, systems, meta


def fmt(x):
    if x is None:
        return "–"
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    if abs(x) < 0.01:
        return f"{x:.2g}"
    if abs(x) >= 0.99 and abs(x) < 1:
        return f"{x:.4g}"
    return f"{x:.3g}"


def emit(head, table, md_out, csv_out, notes):
    widths = [max(len(str(r[i])) for r in [head] + table) for i in range(len(head))]
    lines = ["| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(head)) + " |",
             "|" + "|".join("-" * (wd + 2) for wd in widths) + "|"]
    for r in table:
        lines.append("| " + " | ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)) + " |")
    text = "\n".join(lines) + "\n\n" + notes + "\n"
    print(text, end="")
    if md_out:
        with open(md_out, "w") as f:
            f.write(text)
    if csv_out:
        with open(csv_out, "w") as f:
            f.write(",".join(head) + "\n")
            for r in table:
                f.write(",".join(str(c).rstrip("*") for c in r) + "\n")


def plot(script, png_out):
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True)
        print(f"chart: {png_out}")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"(no chart: {e})", file=sys.stderr)


def comparison(rows, units, systems, md_out, csv_out, png_out):
    if "spindle" in systems:
        systems.remove("spindle")
        systems.insert(0, "spindle")
    head = ["workload", "unit"] + systems + ["spindle/std", "spindle/best peer", "best peer"]
    table, ratios = [], []
    for w, entries in rows.items():
        unit = units[w]
        vals = {e["system"]: e["v"] for e in entries}
        scaled = {e["system"] for e in entries if "scaled:" in e["extra"]}
        sp = vals.get("spindle")
        ok = lambda x: x is not None and not math.isnan(x) and x != 0

        def ratio(other):
            if not ok(sp) or not ok(other):
                return None
            return other / sp if unit in HIGHER_IS_BETTER else sp / other

        peers = {k: v for k, v in vals.items() if k != "spindle" and ok(v)}
        best_name = None
        if peers:
            pick = max if unit in HIGHER_IS_BETTER else min
            best_name = pick(peers, key=peers.get)
        # The plain-threads baseline: std_thread in spindle_bench, threads (a thread
        # per connection) in the network workloads of ../shared/peers/net.
        r_std = ratio(vals.get("std_thread", vals.get("threads")))
        r_peer = ratio(peers.get(best_name)) if best_name else None
        ratios.append((w, r_std, r_peer))
        cells = []
        for s in systems:
            c = fmt(vals.get(s))
            if s in scaled and c not in ("–", "n/a"):
                c += "*"
            cells.append(c)
        table.append([w, unit] + cells + [fmt(r_std), fmt(r_peer), best_name or "–"])
    notes = ("ratios: < 1 means spindle is better (faster, smaller, or fairer for jain); "
             "best peer = the best other system, std_thread included.\n"
             "n/a = does not apply to that system; * = run smaller than WORKLOADS.md "
             "(extra scaled:F), per-op units stay comparable; – = not run.")
    emit(head, table, md_out, csv_out, notes)
    pts = [(w, a, b) for (w, a, b) in ratios if a is not None or b is not None]
    if png_out and pts:
        dat = png_out.rsplit(".", 1)[0] + ".dat"
        with open(dat, "w") as f:
            f.write("\n".join(f'{w} {a if a is not None else "NaN"} {b if b is not None else "NaN"}' for w, a, b in pts) + "\n")
        if any(a is not None for _, a, _ in pts):
            plot_line = f"plot '{dat}' using 2:xtic(1) title 'spindle / std_thread', '' using 3 title 'spindle / best peer'"
        else:  # no plain-threads baseline in this run: gnuplot refuses an all-NaN column
            plot_line = f"plot '{dat}' using 3:xtic(1) title 'spindle / best peer'"
        plot(f"""set terminal pngcairo size 1100,520
set output '{png_out}'
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid border -1
set ylabel 'spindle / other (lower is better for spindle)'
set xtics rotate by -40 noenhanced
set key top left noenhanced
set grid ytics
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb 'black'
set title 'spindle relative to std_thread and to the best other system'
set title noenhanced
{plot_line}
""", png_out)


def sweep(rows, units, md_out, csv_out, png_out):
    workers = set()
    table_vals = {}
    for w, entries in rows.items():
        for e in entries:
            m = re.search(r"workers:(\d+)", e["extra"])
            if not m:
                continue
            n = int(m.group(1))
            workers.add(n)
            table_vals.setdefault((w, e["system"]), {})[n] = e["v"]
    ws = sorted(workers)
    head = ["workload", "system", "unit"] + [f"{n} workers" for n in ws]
    table = [[w, s, units[w]] + [fmt(v.get(n)) for n in ws] for (w, s), v in table_vals.items()]
    emit(head, table, md_out, csv_out,
         "median of --runs per cell; fib_spawn/yield_many should fall with workers, spawn_join "
         "(one spawner) and lock_contended_64 (one lock) need not.")
    if png_out and table_vals and ws:
        blocks, plots = [], []
        for i, ((w, s), v) in enumerate(table_vals.items()):
            base = v.get(ws[0])
            if not base or math.isnan(base):
                continue
            blocks.append("\n".join(f"{n} {v[n] / base}" for n in ws if n in v and not math.isnan(v[n])) + "\ne")
            plots.append(f"'-' using 1:2 with linespoints lw 2 title '{w} ({s})'")
        if plots:
            plot(f"""set terminal pngcairo size 900,520
set output '{png_out}'
set logscale xy 2
set xlabel 'workers'
set ylabel 'value / value at {ws[0]} worker(s) (lower is better)'
set key outside right noenhanced
set grid
plot {", ".join(plots)}
""" + "\n".join(blocks) + "\n", png_out)


def main(argv):
    md_out = csv_out = png_out = None
    do_sweep = False
    files = []
    it = iter(argv)
    for a in it:
        if a == "--csv":
            csv_out = next(it)
        elif a == "--png":
            png_out = next(it)
        elif a == "--md":
            md_out = next(it)
        elif a == "--sweep":
            do_sweep = True
        else:
            files.append(a)
    streams = [open(f) for f in files] if files else [sys.stdin]
    rows, units, systems, meta = parse(streams)
    for m in meta:
        print(f"{m}  ")
    if meta:
        print()
    if do_sweep:
        sweep(rows, units, md_out, csv_out, png_out)
    else:
        comparison(rows, units, systems, md_out, csv_out, png_out)


if __name__ == "__main__":
    main(sys.argv[1:])
