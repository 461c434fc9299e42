#!/usr/bin/env bash
# bench/flush_under_load.sh: tallyd's flush while ingestion saturates a core and new keys
# arrive at a sustained rate (issue 21, goal 3: no flush may overrun --flush-interval-ms at
# 100k new keys/s). It starts tallyd with its defaults (1 s flushes), then, for --duration
# seconds, two tally-load senders:
#   saturating  UDP, 50 lines per datagram, flat out, over --hot-keys keys (counted at once)
#   new keys    UDP, 1 line per datagram, --new-rate lines/s over ids the first sender does
#               not use; the pool holds every id once, so each line is a key not seen before
# and prints, from /metrics at the end: the flushes, their duration histogram, the overruns,
# what was pending after the last one, the keys in the table, and tallyd's CPU time. One
# line each, "flush_under_load: name value", so a run can be grepped.
#
#   bench/flush_under_load.sh [--duration 20] [--new-rate 100000] [--hot-keys 1000]
#                             [--no-saturate] [--tallyd build/daemon/tallyd]
#                             [--build-dir build] [-- more tallyd options]
# (--no-saturate: the new keys alone, for the flush's own cost without the contention.)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=20 NEW_RATE=100000 HOT=1000 SATURATE=1 BUILD=$ROOT/build TALLYD="" EXTRA=()
while (($#)); do
  case $1 in
    --duration) DUR=$2; shift ;;
    --new-rate) NEW_RATE=$2; shift ;;
    --hot-keys) HOT=$2; shift ;;
    --no-saturate) SATURATE=0 ;;
    --tallyd) TALLYD=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "flush_under_load.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
TALLYD=${TALLYD:-$BUILD/daemon/tallyd}
LOAD=$BUILD/bench/tally-load
WORK=$(mktemp -d /tmp/tally-flushload.XXXXXX)
PID="" HOT_PID="" NEW_PID=""
# shellcheck source=bench/compare/common.sh
source "$ROOT/bench/compare/common.sh"
cleanup() {
  for p in "$HOT_PID" "$NEW_PID" "$PID"; do
    if [[ -n $p ]]; then kill "$p" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
UDP_PORT=$(free_port) HTTP_PORT=$(free_port)
NEW_KEYS=$((NEW_RATE * (DUR + 2)))
MAX_KEYS=$((NEW_KEYS + HOT + 1000))

"$TALLYD" --data-dir "$WORK/data" --udp-listen "127.0.0.1:$UDP_PORT" \
  --http-listen "127.0.0.1:$HTTP_PORT" --max-keys "$MAX_KEYS" --log-level warn "${EXTRA[@]}" \
  >>"$WORK/tallyd.log" 2>&1 &
PID=$!
wait_port tcp "$HTTP_PORT"
scrape() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" >"$WORK/metrics"; }
metric() {  # $1: a series; its value in the last scrape (0 when absent)
  awk -v s="$1" 'index($0, s " ") == 1 {print $2; found = 1} END {if (!found) print 0}' \
    "$WORK/metrics"
}
t0=$(cpu_ticks "$PID")
log "tallyd $PID; ${DUR}s of UDP x50 flat out over $HOT keys, and $NEW_RATE new keys/s"
if ((SATURATE)); then
  "$LOAD" --transport udp --target "127.0.0.1:$UDP_PORT" --readback none --lines 50 \
    --keys "$HOT" --rate 0 --duration "$DUR" >"$WORK/hot.json" 2>"$WORK/hot.log" &
  HOT_PID=$!
fi
# tally-load numbers keys 1..N: the hot ids 1..HOT are among the new sender's, so at most HOT
# of its lines are not new keys.
"$LOAD" --transport udp --target "127.0.0.1:$UDP_PORT" --readback none --lines 1 \
  --keys "$NEW_KEYS" --rate "$NEW_RATE" --duration "$DUR" --seed 7 \
  >"$WORK/new.json" 2>"$WORK/new.log" &
NEW_PID=$!
if [[ -n $HOT_PID ]]; then wait "$HOT_PID" || true; fi
HOT_PID=""
wait "$NEW_PID" || true
NEW_PID=""
t1=$(cpu_ticks "$PID")
# Let the last flush commit before reading.
for _ in $(seq 50); do
  scrape
  [[ $(metric tallyd_flush_pending_keys) == 0 ]] && break
  sleep 0.1
done
{
  echo "flush_under_load: load_average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "flush_under_load: duration_s $DUR"
  echo "flush_under_load: saturating_sender $SATURATE"
  echo "flush_under_load: new_keys_per_s $NEW_RATE"
  echo "flush_under_load: keys_in_table $(metric tallyd_keys)"
  echo "flush_under_load: flushes_ok $(metric 'tallyd_flushes_total{result="ok"}')"
  echo "flush_under_load: flushes_error $(metric 'tallyd_flushes_total{result="error"}')"
  echo "flush_under_load: overruns $(metric tallyd_flush_overruns_total)"
  count=$(metric tallyd_flush_duration_seconds_count)
  sum=$(metric tallyd_flush_duration_seconds_sum)
  echo "flush_under_load: flush_mean_s $(python3 -c "print(round($sum / max($count, 1), 4))")"
  for le in 0.1 0.25 0.5 1 2.5; do
    echo "flush_under_load: flushes_over_${le}s $(python3 -c "print(int($count - $(metric "tallyd_flush_duration_seconds_bucket{le=\"$le\"}")))")"
  done
  echo "flush_under_load: pending_keys_at_end $(metric tallyd_flush_pending_keys)"
  echo "flush_under_load: udp_accepted_lines $(metric 'tallyd_lines_total{transport="udp",result="accepted"}')"
  echo "flush_under_load: tallyd_cpu_s $(ticks_to_s "$t0" "$t1")"
}
stop_pid
