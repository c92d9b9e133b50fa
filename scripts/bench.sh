#!/usr/bin/env bash
# The README's first command: installs what is missing (scripts/install-deps.sh --bench),
# builds Release, and runs the benchmark comparison of ../shared/WORKLOADS.md: spindle
# beside std threads and Boost.Fiber in one process (spindle_bench), workload by workload.
# Progress goes to stderr; the result lines, then a table (one row per workload, one
# column per system, spindle/std and spindle/best-peer ratios) go to stdout. Everything
# lands in results/<date-time>/: raw.txt (the WORKLOADS.md lines), table.md, table.csv,
# ratios.png (gnuplot), log.txt (progress and per-run figures).
#
#   scripts/bench.sh [--peers] [--micro] [--workers N | --workers 1,2,4] [spindle_bench args]
#     --runs N      timed runs per workload, median reported (default 3, after 1 warm-up)
#     --scale F     multiply the WORKLOADS.md counts by F (default 1 = the WORKLOADS.md sizes)
#     --only a,b    these workloads only;  --system spindle,std_thread,boost_fiber
#     --workers N   spindle and Boost.Fiber worker threads (default 2)
#     --workers 1,2,4,...  scaling sweep instead: spawn_join, fib_spawn,
#                   lock_contended_64, queue_mpsc for spindle at each worker count
#                   (add --system spindle,boost_fiber to sweep Boost.Fiber too); own table
#                   (workload x workers) and chart
#     --peers       also Go, Tokio, asyncio, TooManyCooks (and oneTBB for spawn_join/fib_spawn) from
#                   ../shared/peers (or $SPINDLE_PEERS), built in build/peers/, run right
#                   after spindle_bench for each workload (peers always use 2 workers)
#     --micro       also run the Google Benchmark micro-benchmarks (bench/micro), briefly
#     --net         also the TCP echo workloads of ../shared/peers/net (tcp_echo_1, tcp_echo_64,
#                   tcp_stream, tcp_connect_churn): its run.sh measures spindle_echo beside the
#                   Go, Tokio, asyncio, Boost.Asio, plain-thread and epoll servers with its one
#                   load client (--peers implies --net). --only with tcp_* names only runs
#                   just those. --net-systems LIST: the built-in servers (default all six;
#                   none = spindle only). --net-pin: server and client on CPU 0 (the total
#                   CPU cost per operation; see ../shared/peers/net/README.md)
#     --net-rounds N  run the network workloads N times, each round with --runs of its own,
#                   spindle_echo after the peers in odd rounds and before them in even ones
#                   (this VM drifts between fast and slow modes within minutes, and one
#                   invocation runs spindle minutes after the peers); each figure is the
#                   median over the rounds (extra: rounds, round_values). Raw lines of every
#                   round: net-rounds.txt
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

orig_args="$*"
peers=0 micro=0 net=0 net_pin=0 net_systems="" net_rounds=1 workers="" pass=() only="" runs=3 scale="" systems=""
while [ $# -gt 0 ]; do
  case "$1" in
    --peers) peers=1; net=1; shift ;;
    --net) net=1; shift ;;
    --net-pin) net=1; net_pin=1; shift ;;
    --net-systems) net=1; net_systems="$2"; shift 2 ;;
    --net-rounds) net=1; net_rounds="$2"; shift 2 ;;
    --micro) micro=1; shift ;;
    --workers) workers="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --scale) scale="$2"; shift 2 ;;
    --system) systems="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pass+=("$1"); shift ;;
  esac
done
common=(--runs "$runs")
[ -n "$scale" ] && common+=(--scale "$scale")

log() { echo "bench.sh: $*" >&2; }

scripts/install-deps.sh --bench
jobs="${SPINDLE_JOBS:-2}"
log "building Release (build/release, -j$jobs)"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSPINDLE_BUILD_TESTS=OFF \
  -DSPINDLE_BUILD_EXAMPLES=OFF -DSPINDLE_LTO=ON >/dev/null
targets=(--target spindle_bench)
[ $net -eq 1 ] && targets+=(--target spindle_echo)
[ $micro -eq 1 ] && targets+=(--target spindle_micro_all)
cmake --build build/release -j"$jobs" "${targets[@]}" >&2
bin=build/release/bench/spindle_bench

out="results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
raw="$out/raw.txt"
{
  echo "# date: $(date -Is)"
  echo "# command: scripts/bench.sh $orig_args"
  echo "# git: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!results' 2>/dev/null || echo '+dirty')"
  echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$raw"
exec 3>&2 2> >(tee -a "$out/log.txt" >&3)
status=0

# ───────── scaling sweep ─────────
if [[ "$workers" == *,* ]]; then
  IFS=',' read -r -a ws <<< "$workers"
  sweep_only="${only:-spawn_join,fib_spawn,lock_contended_64,queue_mpsc}"
  for n in "${ws[@]}"; do
    log "sweep: --workers $n ($sweep_only)"
    "$bin" --workers "$n" --only "$sweep_only" --system "${systems:-spindle}" "${common[@]}" "${pass[@]}" \
      | sed "s/\$/,workers:$n/" | tee -a "$raw" || status=1
  done
  python3 scripts/table.py --sweep "$raw" --md "$out/table.md" --csv "$out/table.csv" --png "$out/scaling.png" \
    | tee "$out/table.txt"
  log "results: $out/ (raw.txt, table.md, table.csv, scaling.png)"
  exit $status
fi
[ -n "$workers" ] && pass+=(--workers "$workers")
[ -n "$systems" ] && pass+=(--system "$systems")

# ───────── peers (--peers): built in build/peers/, the shared folder is read-only ─────────
peer_cmds=()   # "name|command prefix" run as: prefix <workload> --runs N [--scale F]
if [ $peers -eq 1 ]; then
  src="${SPINDLE_PEERS:-$root/../shared/peers}"
  [ -d "$src" ] || src="/work/shared/peers"
  pb="$root/build/peers"
  mkdir -p "$pb"
  if [ -d "$src/go" ] && command -v go >/dev/null; then
    rsync -a --delete --exclude bench --exclude .gocache "$src/go/" "$pb/go/" 2>/dev/null || cp -r "$src/go/." "$pb/go/"
    chmod -R u+w "$pb/go"
    log "building Go peer"
    if (cd "$pb/go" && ./run.sh --list >/dev/null); then peer_cmds+=("go|$pb/go/run.sh"); else log "Go peer did not build; skipped"; fi
  else log "no Go peer (go not installed or $src/go missing)"; fi
  if [ -d "$src/tokio" ] && { command -v cargo >/dev/null || [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; }; then
    mkdir -p "$pb/tokio" && cp -r "$src/tokio/." "$pb/tokio/" && chmod -R u+w "$pb/tokio"
    log "building Tokio peer (cargo --release, offline; first time takes a few minutes)"
    if (cd "$pb/tokio" && ./run.sh --list >/dev/null 2>&1 || [ -x target/release/tokio_bench ]); then
      peer_cmds+=("tokio|$pb/tokio/target/release/tokio_bench")
    else log "Tokio peer did not build; skipped"; fi
  fi
  if [ -d "$src/asyncio" ] && command -v python3 >/dev/null; then
    peer_cmds+=("asyncio|$src/asyncio/run.sh")
  fi
  if [ -d "$src/cpp" ]; then
    mkdir -p "$pb/cpp" && cp -r "$src/cpp/." "$pb/cpp/" && chmod -R u+w "$pb/cpp"
    log "building oneTBB peer"
    if cmake -S "$pb/cpp" -B "$pb/cpp/build" -DCMAKE_BUILD_TYPE=Release >/dev/null 2>&1 &&
       cmake --build "$pb/cpp/build" -j"$jobs" --target bench_tbb >/dev/null 2>&1; then
      peer_cmds+=("tbb|$pb/cpp/build/bench_tbb --only")
    else log "oneTBB peer did not build; skipped"; fi
  fi
  if [ -d "$src/tmc" ]; then
    # TooManyCooks (header-only C++20 coroutines; its run.sh builds with clang++-19 and
    # installs clang-19 when missing).
    mkdir -p "$pb/tmc" && cp -r "$src/tmc/." "$pb/tmc/" && chmod -R u+w "$pb/tmc"
    log "building TooManyCooks peer (clang++-19)"
    if (cd "$pb/tmc" && ./run.sh --scale 0.05 --runs 1 --only spawn_join >/dev/null 2>&1); then
      peer_cmds+=("tmc|$pb/tmc/run.sh --only")
    else log "TooManyCooks peer did not build; skipped"; fi
  fi
  log "peers: $(for p in "${peer_cmds[@]}"; do printf '%s ' "${p%%|*}"; done)"
fi

# ───────── the run: workload by workload ─────────
all=$("$bin" --list | cut -d' ' -f1 | uniq)
net_only=""
if [ -n "$only" ]; then
  sel=$(tr ',' '\n' <<< "$only" | grep -v '^tcp_' || true)
  net_only=$(tr ',' '\n' <<< "$only" | grep '^tcp_' | paste -sd, || true)
  [ -n "$net_only" ] && net=1
  [ -z "$net_only" ] && [ $net -eq 1 ] && [ -n "$sel" ] && net=0  # --only named no tcp_ workload
else sel="$all"; fi
n=$(wc -w <<< "$sel") k=0
for w in $sel; do
  k=$((k + 1))
  log "[$k/$n] $w"
  "$bin" --only "$w" "${common[@]}" "${pass[@]}" | tee -a "$raw" || status=1
  for p in "${peer_cmds[@]}"; do
    name="${p%%|*}" cmd="${p#*|}"
    if [ "$name" = tbb ] && ! "${cmd%% *}" --list | grep -q "^$w "; then continue; fi
    log "[$k/$n] $w system=$name"
    # shellcheck disable=SC2086
    line=$(timeout -k 5 600 $cmd "$w" "${common[@]}" 2>>"$out/log.txt" | grep "^workload=$w system=" | head -1) || true
    if [ -n "$line" ]; then echo "$line" | tee -a "$raw"; else log "  $name/$w: no result (see log.txt)"; fi
  done
done

# ───────── network (--net): ../shared/peers/net/run.sh, spindle_echo beside the peers ─────────
if [ $net -eq 1 ]; then
  nsrc="${SPINDLE_PEERS:-$root/../shared/peers}/net"
  [ -d "$nsrc" ] || nsrc="/work/shared/peers/net"
  nb="$root/build/peers/net"
  mkdir -p "$nb" && cp -r "$nsrc/." "$nb/" && chmod -R u+w "$nb"
  base=(--runs "$runs")
  [ -n "$scale" ] && base+=(--scale "$scale")
  [ -n "$net_only" ] && base+=(--only "$net_only")
  [ $net_pin -eq 1 ] && base+=(--server-cpus 0 --client-cpus 0)
  spindle_server=(--server "spindle=$root/build/release/bench/spindle_echo")
  peer_systems=(--system "${net_systems:-go,tokio,asyncio,asio,threads,epoll}")
  nargs=("${base[@]}" "${spindle_server[@]}")
  [ -n "$net_systems" ] && nargs+=("${peer_systems[@]}")
  if [ "$net_rounds" -le 1 ]; then
    log "network workloads: $nb/run.sh ${nargs[*]}"
    "$nb/run.sh" "${nargs[@]}" 2>>"$out/log.txt" | tee -a "$raw" || status=1
  else
    # Alternated rounds: spindle last (run.sh runs --server after --system), then first.
    spindle_only=("${base[@]}" --system none "${spindle_server[@]}")
    peers_only=("${base[@]}" "${peer_systems[@]}")
    : > "$out/net-rounds.txt"
    for ((r = 1; r <= net_rounds; r++)); do
      if [ $((r % 2)) -eq 1 ]; then
        log "network round $r/$net_rounds (spindle last): $nb/run.sh ${nargs[*]}"
        "$nb/run.sh" "${nargs[@]}" 2>>"$out/log.txt" | sed "s/\$/ round=$r/" | tee -a "$out/net-rounds.txt" >&2 || status=1
      else
        log "network round $r/$net_rounds (spindle first)"
        { "$nb/run.sh" "${spindle_only[@]}" && "$nb/run.sh" "${peers_only[@]}"; } 2>>"$out/log.txt" \
          | sed "s/\$/ round=$r/" | tee -a "$out/net-rounds.txt" >&2 || status=1
      fi
    done
    # The median over rounds of each (workload, system)'s per-round median.
    python3 - "$out/net-rounds.txt" <<'PY' | tee -a "$raw"
import re, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"workload=(\S+) system=(\S+) value=(\S+) unit=(\S+) extra=(\S*).* round=(\d+)$", line.strip())
    if not m or m.group(3) == "nan":
        continue
    key = (m.group(1), m.group(2))
    rows.setdefault(key, {"unit": m.group(4), "vals": []})["vals"].append(float(m.group(3)))
for (w, sysname), r in rows.items():
    v = sorted(r["vals"])
    med = v[(len(v) - 1) // 2]  # the lower middle one, as run.sh's median
    print(f"workload={w} system={sysname} value={med:.1f} unit={r['unit']} extra=rounds:{len(v)},"
          f"round_min:{v[0]:.1f},round_max:{v[-1]:.1f},round_values:{'/'.join(f'{x:.0f}' for x in r['vals'])}")
PY
  fi
fi

echo >&2
python3 scripts/table.py "$raw" --md "$out/table.md" --csv "$out/table.csv" --png "$out/ratios.png" | tee "$out/table.txt"
if [ $micro -eq 1 ]; then
  log "micro-benchmarks (bench/micro)"
  for m in build/release/bench/micro/micro_*; do
    "$m" --benchmark_min_time=0.05 --benchmark_out="$out/$(basename "$m").json" --benchmark_out_format=json \
      | tee -a "$out/micro.txt" || status=1
  done
fi
log "results: $out/ (raw.txt, table.md, table.csv, ratios.png, log.txt)"
[ $status -eq 0 ] || log "a check FAILED or a run errored (see $out/log.txt)"
exit $status
