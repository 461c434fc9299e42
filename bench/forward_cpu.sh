#!/usr/bin/env bash
# bench/forward_cpu.sh: what forwarding costs an edge in CPU (issue 17: under 10% at 5M events/s).
# An edge tallyd takes UDP at a fixed rate from tally-load (50 lines per datagram), once with
# --forward-url set to a central tallyd on the same machine and once without; the edge's own
# utime + stime over the run (/proc/<pid>/stat) is compared, run by run, in alternating order.
#
#   bench/forward_cpu.sh [--rate N] [--keys N] [--duration S] [--runs N] [--build DIR]
# Defaults: 5000000 events/s, 100000 keys, 20 s, 3 runs of each. Prints one line per run and
# the medians; the central's CPU is printed too but is not part of the edge's cost.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=5000000 KEYS=100000 DUR=20 RUNS=3 BUILD=build
while (($#)); do
  case $1 in
    --rate) RATE=$2; shift ;;
    --keys) KEYS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --build) BUILD=$2; shift ;;
    -h | --help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "forward_cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
TALLYD=$BUILD/daemon/tallyd LOAD=$BUILD/bench/tally-load
for b in "$TALLYD" "$LOAD"; do
  [[ -x $b ]] || { echo "forward_cpu.sh: $b not built" >&2; exit 1; }
done
# shellcheck source=bench/compare/common.sh
source bench/compare/common.sh
WORK=$(mktemp -d /tmp/tally-forward-cpu.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
umask 077
printf 'bench-internal-token\n' >"$WORK/token"

# One run: a fresh edge (and central, when forwarding), RATE events/s for DUR seconds, the edge
# drained and flushed; prints "edge_cpu_s central_cpu_s accepted lost forwarded_batches/deltas".
run_once() {
  local forward=$1 c_http e_udp e_http central="" edge args=()
  e_udp=$(free_port) e_http=$(free_port)
  rm -rf "$WORK/edge" "$WORK/central"
  if ((forward)); then
    c_http=$(free_port)
    "$TALLYD" --data-dir "$WORK/central" --http-listen "127.0.0.1:$c_http" --udp-listen off \
      --internal-token-file "$WORK/token" --log-level warn --max-keys 1000000 \
      >>"$WORK/central.log" 2>&1 &
    central=$!
    PIDS+=("$central")
    wait_port tcp "$c_http"
    args=(--forward-url "http://127.0.0.1:$c_http" --forward-token-file "$WORK/token"
      --source-id bench-edge)
  fi
  "$TALLYD" --data-dir "$WORK/edge" --udp-listen "127.0.0.1:$e_udp" \
    --http-listen "127.0.0.1:$e_http" --internal-token-file "$WORK/token" --log-level warn \
    --max-keys 1000000 "${args[@]}" >>"$WORK/edge.log" 2>&1 &
  edge=$!
  PIDS+=("$edge")
  wait_port tcp "$e_http"
  local e0 c0 e1 c1 out
  e0=$(cpu_ticks "$edge") c0=$(cpu_ticks "$central")
  out=$("$LOAD" --transport udp --target "127.0.0.1:$e_udp" --http "127.0.0.1:$e_http" \
    --rate "$RATE" --duration "$DUR" --keys "$KEYS" --lines 50 \
    --internal-token bench-internal-token 2>>"$WORK/load.log")
  if ((forward)); then  # the last flush's batch reaches the central before the CPU is read
    local i depth=1
    for ((i = 0; i < 100 && depth != 0; i++)); do
      sleep 0.1
      depth=$(curl -s "http://127.0.0.1:$e_http/metrics" |
        awk '$1 == "tallyd_outbox_batches" {print $2}')
      depth=${depth:-1}
    done
  fi
  e1=$(cpu_ticks "$edge") c1=$(cpu_ticks "$central")
  local batches
  batches=$(curl -s "http://127.0.0.1:$e_http/metrics" |
    awk '$1 == "tallyd_forward_batches_total" || $1 == "tallyd_forward_deltas_total" {
      printf "%s%s", sep, $2; sep = "/"} END {if (!sep) printf "-"}')
  kill "$edge" ${central:+"$central"}
  wait "$edge" ${central:+"$central"} 2>/dev/null || true
  PIDS=()
  echo "$(ticks_to_s "$e0" "$e1") $(ticks_to_s "$c0" "$c1") $(python3 -c \
    "import json,sys; j = json.loads(sys.argv[1]); print(j.get('accepted', 0), j.get('lost', 0))" "$out") $batches"
}

log "rate $RATE events/s, $KEYS keys, ${DUR}s, $RUNS runs each; load $(cut -d' ' -f1-3 /proc/loadavg)"
plain=() fwd=()
for ((r = 1; r <= RUNS; r++)); do
  for mode in 0 1; do
    ((r % 2 == 0)) && mode=$((1 - mode))  # alternate which goes first
    read -r e c n lost fwd_counts < <(run_once "$mode")
    label=$([[ $mode == 1 ]] && echo forwarding || echo plain)
    log "run $r $label: edge CPU ${e}s, central CPU ${c}s, events accepted $n, lost $lost, forwarded batches/deltas $fwd_counts"
    if ((mode)); then fwd+=("$e"); else plain+=("$e"); fi
  done
done
python3 - "${plain[*]}" "${fwd[*]}" "$RATE" "$DUR" <<'PY'
import statistics, sys
plain = [float(x) for x in sys.argv[1].split()]
fwd = [float(x) for x in sys.argv[2].split()]
rate, dur = int(sys.argv[3]), float(sys.argv[4])
p, f = statistics.median(plain), statistics.median(fwd)
print(f"edge CPU at {rate/1e6:g}M events/s for {dur:g} s: plain median {p:.2f} s "
      f"({p/dur:.2f} cores), forwarding median {f:.2f} s ({f/dur:.2f} cores): "
      f"{(f - p) / p * 100:+.1f}%")
PY
