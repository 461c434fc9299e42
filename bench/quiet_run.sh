#!/usr/bin/env bash
# bench/quiet_run.sh: every measurement issue 21's tables need, in one go, on a quiet machine.
#   1. bench/compare.sh --ref HEAD, three times (goal 1 counts 3 of 3 runs; each run rewrites
#      the "## Comparison" and "## End to end" tables, the previous run's figures beside them)
#   2. bench/cost_curves.sh, all four key counts (writes "## Cost curves" and the chart)
#   3. bench/memory_breakdown.sh at 100k keys (printed; copy it into "Memory at 100,000 keys")
#   4. bench/stall_profile.sh just above the zero-loss rate of the last compare run
# Logs and raw results go to OUT (default /tmp/tally-quiet-run), the three runs' target
# tables side by side in OUT/summary.md. About 2 hours in all.
#
#   bench/quiet_run.sh [--out DIR] [--force] [--skip compare,curves,memory,stall]
# --force: run even when the 1-minute load average is above 1 (the figures are then
#   provisional, and the tables say so).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=/tmp/tally-quiet-run FORCE=0 SKIP=""
while (($#)); do
  case $1 in
    --out) OUT=$2; shift ;;
    --force) FORCE=1 ;;
    --skip) SKIP=$2; shift ;;
    -h | --help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "quiet_run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
skip() { [[ ,$SKIP, == *,$1,* ]]; }
load=$(cut -d' ' -f1 /proc/loadavg)
if ((!FORCE)) && python3 -c "import sys; sys.exit(0 if $load > 1 else 1)"; then
  echo "quiet_run.sh: load average $load: the machine is not quiet (--force to run anyway)" >&2
  exit 1
fi
mkdir -p "$OUT"
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/quiet_run.log" >&2; }
log "load average $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT"
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target tallyd tally-load tally-floor >"$OUT/build.log" 2>&1
if ! skip compare; then
  for i in 1 2 3; do
    log "compare run $i of 3"
    bench/compare.sh --ref HEAD >"$OUT/compare-$i.md" 2>"$OUT/compare-$i.log"
  done
  # Goal 1 counts 3 of 3 runs: each run's target table side by side in summary.md.
  for i in 1 2 3; do
    runs=$(grep -o 'raw runs in [^ ]*' "$OUT/compare-$i.log" | tail -1 | cut -d' ' -f4)
    [[ -n $runs ]] || continue
    echo "## compare run $i ($runs)"
    python3 bench/compare_table.py "$runs" - 3 | grep -E '^\| (target|UDP|HTTP|CPU)' || true
    echo
  done >"$OUT/summary.md"
fi
if ! skip curves; then
  log "cost curves: 10k, 100k, 1M, 10M keys"
  bench/cost_curves.sh --out "$OUT/curves" >"$OUT/curves.md" 2>"$OUT/curves.log"
fi
if ! skip memory; then
  log "memory at 100k keys"
  bench/memory_breakdown.sh --keys 100000 --seconds 60 >"$OUT/memory.md" 2>"$OUT/memory.log"
fi
if ! skip stall; then
  # Just above the zero-loss rate the last compare run found for UDP x50 (12M if none).
  rate=$(cat "$OUT"/compare-*.log 2>/dev/null | awk '/tallyd udp x50:/ {t = 1} t && /zero-loss rate/ {
    match($0, /lost at [0-9]+/); r = substr($0, RSTART + 8, RLENGTH - 8); t = 0} END {print r}')
  log "stall profile at ${rate:-12000000} events/s"
  bench/stall_profile.sh --rate "${rate:-12000000}" --duration 10 --record 5 --out "$OUT/stall" \
    >"$OUT/stall.md" 2>"$OUT/stall.log"
fi
log "done: docs/performance.md has the new tables; $OUT has the raw results"
