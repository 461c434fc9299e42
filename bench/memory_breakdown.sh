#!/usr/bin/env bash
# bench/memory_breakdown.sh: where tallyd's resident memory goes at N keys (default 100,000),
# stage by stage, from /proc/<pid>/smaps (bench/smaps_breakdown.py) and RocksDB's own log:
#   1 idle            started on an empty data directory, nothing received
#   2 keys known      every key sent once and flushed (the key records exist)
#   3 steady ingest   after SECONDS of UDP at RATE events/s (50 lines per datagram) over all
#                     the keys, with the default 1-s flush
#   4 restarted       a clean stop and a start on the same data (the store loaded from disk)
# For each: VmRSS, the classes of bench/smaps_breakdown.py, and the data directory's .sst
# files and write-ahead log (whose live part is what the memtables hold). Memory does not depend on the
# machine's load, so this is meaningful on a shared machine too (the load is printed).
#
#   bench/memory_breakdown.sh [--keys N] [--seconds S] [--rate EPS] [--build-dir DIR]
#                             [--max-keys M]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=100000 SECS=30 RATE=2000000 BUILD=$ROOT/build MAXK=1000000
while (($#)); do
  case $1 in
    --keys) N=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    --max-keys) MAXK=$2; shift ;;
    -h | --help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "memory_breakdown.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
TALLYD=$BUILD/daemon/tallyd LOAD=$BUILD/bench/tally-load
WORK=$(mktemp -d /tmp/tally-memory.XXXXXX)
DATA=$WORK/data PID=""
# shellcheck source=bench/compare/common.sh
source "$ROOT/bench/compare/common.sh"
trap 'if [[ -n $PID ]]; then kill -9 "$PID" 2>/dev/null || true; fi' EXIT
UDP_PORT=$(free_port) HTTP_PORT=$(free_port)

start() {
  "$TALLYD" --data-dir "$DATA" --udp-listen "127.0.0.1:$UDP_PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
    --log-level warn --max-keys "$MAXK" >>"$WORK/tallyd.log" 2>&1 &
  PID=$!
  wait_port tcp "$HTTP_PORT"
  until curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1; do sleep 0.05; done
}
send() {  # $1 seconds at $2 events/s, then wait for the queue to drain and one flush
  "$LOAD" --transport udp --target "127.0.0.1:$UDP_PORT" --lines 50 --keys "$N" --rate "$2" \
    --duration "$1" --readback none --label memory 2>>"$WORK/load.log" >/dev/null || true
  wait_drained "$UDP_PORT" >/dev/null
  curl -fsS -X POST "http://127.0.0.1:$HTTP_PORT/admin/flush" >/dev/null
}
stage() {
  local keys
  keys=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk '$1 == "tallyd_keys" {print $2}')
  echo
  echo "### $1 (tallyd_keys $keys, load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  python3 "$ROOT/bench/smaps_breakdown.py" "$PID"
  echo
  # tallyd keeps no RocksDB LOG file; the live WAL holds what the memtables hold (raw).
  echo "data directory: $(find "$DATA" -name '*.sst' | wc -l) .sst files of" \
    "$(find "$DATA" -name '*.sst' -printf '%s\n' | awk '{s += $1} END {printf "%.1f", s / 1048576}') MiB;" \
    "write-ahead log (what the memtables hold, unflushed):" \
    "$(find "$DATA" -name '*.log' -printf '%s\n' | awk '{s += $1} END {printf "%.1f", s / 1048576}') MiB"
}

echo "tallyd memory at $N keys (--max-keys $MAXK), $(date -u +%Y-%m-%dT%H:%MZ), tallyd at $(git rev-parse --short HEAD)"
start
stage "1. idle, empty data directory"
send "$(python3 -c "print(max(1.0, 1.2 * $N / 1e6))")" 1000000
stage "2. every key sent once and flushed"
send "$SECS" "$RATE"
stage "3. after ${SECS} s at $RATE events/s over the $N keys (1-s flushes)"
stop_pid
start
stage "4. after a clean stop and a start on the same data"
stop_pid
echo
echo "(work dir $WORK)"
