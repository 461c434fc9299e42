#!/usr/bin/env bash
# bench/compare.sh: tallyd side by side with the peers operators would use instead, on this
# machine, in one run, with the same offered loads. Reproducible on a fresh Debian 12 machine.
#
#   bench/compare.sh [--quick [--docs]] [--no-install] [--no-docs] [--only a,b,...]
#                    [--duration S] [--build-dir DIR] [--no-build]
# --build-dir: where to build (default build-bench; CMake build trees are reused);
# --no-build: use the binaries already in the build dir.
# --ref REF: measure the committed tree at git REF (e.g. HEAD), copied into
#   /tmp/tally-compare-src and built there, instead of the working tree.
# --quick: 1-second runs, 1 run per rate, 2 search steps; a smoke run, docs left alone.
#
# Systems (each alone, one after another; every receiver listens on 127.0.0.1 only):
#   tallyd    UDP 1 and 50 lines/datagram, Unix socket 50 lines/datagram, HTTP 1,000-line bodies
#   statsd    Etsy statsd 0.9.0 (npm), UDP 1 and 50        (totals: management port `counters`)
#   collectd  collectd 5.12 statsd plugin, UDP 1 and 50     (totals: kernel drops per run,
#             checked against collectd's own cumulative counts written by write_log)
#   redis     HINCRBY per event with redis-benchmark, -P 100 and -P 1
#   floor     bench/floor.cc, a bare recvmmsg loop counting lines, UDP 1 and 50
# For each: capacity (accepted events/s while the sender runs flat out, median of RUNS runs)
# and the zero-loss rate (highest offered rate losing nothing in RUNS runs in a row, by a
# bounded search), CPU seconds per million accepted events (/proc/<pid>/stat utime+stime),
# peak RSS (VmHWM) and the receive buffer (ss -m). Results: $WORK/runs.jsonl, and a table
# regenerated between markers in docs/performance.md ("## Comparison").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0 INSTALL=1 BUILD_IT=1 BUILD_DIR_ARG="" REF="" DOCS=1 ONLY="tallyd,statsd,collectd,redis,floor" DUR=4
while (($#)); do
  case $1 in
    --quick) QUICK=1 DOCS=0 ;;
    --docs) DOCS=1 ;;
    --no-install) INSTALL=0 ;;
    --no-build) BUILD_IT=0 ;;
    --ref) REF=$2; shift ;;
    --build-dir) BUILD_DIR_ARG=$2; shift ;;
    --no-docs) DOCS=0 ;;
    --only) ONLY=$2; shift ;;
    --duration) DUR=$2; shift ;;
    -h | --help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
RUNS=3 STEPS=5 KEYS=100000 REDIS_N=3000000 REDIS_N1=300000
if ((QUICK)); then
  RUNS=1 STEPS=2 DUR=1 REDIS_N=300000 REDIS_N1=30000
fi
BUILD=${BUILD_DIR_ARG:-${TALLY_BUILD_DIR:-$ROOT/build-bench}}
PEERS=${TALLY_PEERS_DIR:-/tmp/tally-peers}  # npm packages; never inside the repository
WORK=$(mktemp -d /tmp/tally-compare.XXXXXX)
RUNS_FILE=$WORK/runs.jsonl
LOAD=$BUILD/bench/tally-load
FLOOR=$BUILD/bench/tally-floor
TALLYD=$BUILD/daemon/tallyd
PID=""
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
wanted() { [[ ,$ONLY, == *,$1,* ]]; }

cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- install and build
install_deps() {
  scripts/deps.sh
  local need=() p
  for p in redis-server redis-tools collectd-core libyajl2 iproute2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  command -v node >/dev/null || need+=(nodejs)
  command -v npm >/dev/null || need+=(npm)
  if ((${#need[@]})); then
    local sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    log "apt: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
  if [[ ! -f $PEERS/node_modules/statsd/stats.js ]]; then
    log "npm: statsd@0.9.0 into $PEERS"
    mkdir -p "$PEERS"
    npm install --prefix "$PEERS" --no-audit --no-fund statsd@0.9.0 >&2
  fi
}
((INSTALL)) && install_deps
SRC=$ROOT
if [[ -n $REF ]]; then
  # Only files whose content changed are rewritten, so the build tree there stays incremental.
  SRC=/tmp/tally-compare-src
  rm -rf "$WORK/src" && mkdir -p "$WORK/src" "$SRC"
  git archive "$REF" | tar -x -C "$WORK/src"
  python3 - "$WORK/src" "$SRC" <<'EOF'
import filecmp, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
for root, _, files in os.walk(src):
    for f in files:
        a = os.path.join(root, f)
        b = os.path.join(dst, os.path.relpath(a, src))
        if not os.path.exists(b) or not filecmp.cmp(a, b, shallow=False):
            os.makedirs(os.path.dirname(b), exist_ok=True)
            shutil.copyfile(a, b)
            shutil.copymode(a, b)
EOF
  BUILD=${BUILD_DIR_ARG:-$SRC/build-bench}
  LOAD=$BUILD/bench/tally-load FLOOR=$BUILD/bench/tally-floor TALLYD=$BUILD/daemon/tallyd
  log "measuring $REF = $(git rev-parse --short "$REF")"
fi
if ((BUILD_IT)); then
  log "build: $BUILD"
  tests=ON; [[ -z $REF ]] || tests=OFF  # a --ref tree only needs the three binaries
  if ! { cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTALLY_BUILD_TESTS=$tests &&
    cmake --build "$BUILD" -j2 --target tallyd tally-load tally-floor; } >"$WORK/build.log" 2>&1; then
    tail -25 "$WORK/build.log" >&2
    log "build failed (log: $WORK/build.log)"
    exit 1
  fi
fi
for b in "$LOAD" "$FLOOR" "$TALLYD"; do
  [[ -x $b ]] || { log "missing $b (build it, or drop --no-build)"; exit 1; }
done

# ---------------------------------------------------------------- measuring helpers
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# The receive buffer the kernel granted on the UDP socket(s) bound to port $1 (ss: rb).
rcvbuf_of() {
  ss -u -l -n -m "sport = :$1" 2>/dev/null | grep -o 'rb[0-9]*' | head -1 | tr -d rb
}
# /proc/net/udp: summed rx_queue bytes and drops over the sockets bound to port $1.
udp_queue() {
  local hex rx=0 drops=0 q d
  hex=$(printf '%04X' "$1")
  while read -r q d; do
    rx=$((rx + 16#${q#*:})) drops=$((drops + d))
  done < <(awk -v p=":$hex" '$2 ~ p"$" {print $5, $13}' /proc/net/udp /proc/net/udp6 2>/dev/null)
  echo "$rx $drops"
}
# Waits (at most 15 s) until port $1's receive queue is empty; prints the seconds waited.
wait_drained() {
  local start=$EPOCHREALTIME i
  for ((i = 0; i < 750; i++)); do
    read -r rx _ < <(udp_queue "$1")
    ((rx == 0)) && break
    sleep 0.02
  done
  python3 -c "print(round($EPOCHREALTIME - $start, 3))"
}
wait_port() {  # $1 tcp|udp, $2 port; at most 10 s
  local i
  for ((i = 0; i < 100; i++)); do
    if [[ $1 == tcp ]]; then
      (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null && return 0
    else
      ss -u -l -n "sport = :$2" | grep -q ":$2" && return 0
    fi
    sleep 0.1
  done
  log "port $1/$2 never opened"
  return 1
}
stop_pid() {
  [[ -n $PID ]] || return 0
  kill "$PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
}
# Appends one run's record: the tally-load JSON ($1) plus the fields given as key=value.
record() {
  python3 - "$RUNS_FILE" "$@" <<'EOF'
import json, sys
path, j, extra = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
for kv in extra:
    k, v = kv.split("=", 1)
    try:
        v = json.loads(v)
    except ValueError:
        pass
    j[k] = v
open(path, "a").write(json.dumps(j) + "\n")
print("lossless" if j.get("lost", 1) == 0 and j.get("sent_events", 0) > 0 else "loss",
      j.get("sent_eps", 0), j.get("accepted_eps", 0))
EOF
}

# Etsy statsd's own total: the sum of its apikey.* counters from the management port.
statsd_total() {
  python3 - "$1" <<'EOF'
import re, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"counters\n")
buf = b""
while not buf.rstrip().endswith(b"END"):
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    buf += chunk
print(sum(int(v) for v in re.findall(rb"'apikey\.\d+\.(?:success|failure)': (\d+)", buf)))
EOF
}

# ---------------------------------------------------------------- one run
# run_once SYSTEM TRANSPORT LINES RATE PHASE -> "lossless|loss sent_eps accepted_eps"
SYS="" UDP_PORT="" HTTP_PORT="" CTL_PORT="" SOCK="" STATSD_MGMT=""
run_once() {
  local sys=$1 tr=$2 lines=$3 rate=$4 phase=$5 c0 c1 j args
  args=(--transport "$tr" --lines "$lines" --rate "$rate" --duration "$DUR" --keys "$KEYS"
    --label "$sys" --settle 15)
  case $tr in
    udp) args+=(--target "127.0.0.1:$UDP_PORT") ;;
    unix) args+=(--target "$SOCK") ;;
    http) args+=(--target "127.0.0.1:$HTTP_PORT" --connections "$((lines == 1 ? 4 : 2))") ;;
  esac
  c0=$(cpu_ticks "$PID")
  case $sys in
    tallyd)
      j=$("$LOAD" "${args[@]}" --http "127.0.0.1:$HTTP_PORT" 2>>"$WORK/load.log" || true)
      c1=$(cpu_ticks "$PID")
      ;;
    floor)
      j=$("$LOAD" "${args[@]}" --readback floor --floor-control "127.0.0.1:$CTL_PORT" \
        2>>"$WORK/load.log" || true)
      c1=$(cpu_ticks "$PID")
      ;;
    statsd | collectd)
      # A fresh daemon for each run, as in the earlier measurements (shared/reference/peers.md):
      # collectd's 10-s dispatch then never falls inside a run.
      local before=0 after d0 d1 drain rss
      "start_$sys"
      read -r _ d0 < <(udp_queue "$UDP_PORT")
      c0=$(cpu_ticks "$PID")
      j=$("$LOAD" "${args[@]}" --readback none 2>>"$WORK/load.log" || true)
      drain=$(wait_drained "$UDP_PORT")
      c1=$(cpu_ticks "$PID")
      rss=$(peak_rss_kib "$PID")
      read -r _ d1 < <(udp_queue "$UDP_PORT")
      if [[ $sys == statsd ]]; then
        after=$(statsd_total "$STATSD_MGMT")
        j=$(python3 -c "import json,sys; j=json.loads(sys.argv[1]); a=$after-$before
j.update(accepted=a, lost=j['sent_events']-a, accepted_eps=int(a/(j['send_s']+$drain)),
  kernel_drops=$d1-$d0, proc_udp_drops=$d1-$d0, active_s=j['send_s']+$drain,
  counted_by='statsd counters', peak_rss_kib=$rss, rcvbuf=${PEER_RCVBUF:-None})
print(json.dumps(j))" "$j")
      else
        j=$(python3 -c "import json,sys; j=json.loads(sys.argv[1]); d=$d1-$d0
a=j['sent_events']-d*$lines
j.update(accepted=a, lost=d*$lines, accepted_eps=int(a/(j['send_s']+$drain)), kernel_drops=d,
  proc_udp_drops=d, active_s=j['send_s']+$drain, counted_by='kernel drops', peak_rss_kib=$rss,
  rcvbuf=${PEER_RCVBUF:-None})
print(json.dumps(j))" "$j")
      fi
      if [[ $phase == crosscheck ]]; then
        sleep 12  # collectd's next dispatch (Interval 10) writes its cumulative counts
        j=$(python3 -c "import json,sys; j=json.loads(sys.argv[1]); j.update(collectd_counted=$(collectd_total "$WORK/collectd.out"))
print(json.dumps(j))" "$j")
      fi
      stop_pid
      ;;
  esac
  record "$j" system="$sys" phase="$phase" cpu_s="$(python3 -c "print(($c1-$c0)/$(getconf CLK_TCK))")"
}

# measure SYSTEM TRANSPORT LINES: capacity (flat out), then the zero-loss search.
measure() {
  local sys=$1 tr=$2 lines=$3 i res verdict sent acc all_ok=1 top=0 cap_acc=()
  log "$sys $tr x$lines: capacity, $RUNS flat-out run(s) of ${DUR}s"
  for ((i = 0; i < RUNS; i++)); do
    read -r verdict sent acc < <(run_once "$sys" "$tr" "$lines" 0 capacity)
    log "  flat out: $verdict, sent $sent/s, accepted $acc/s"
    [[ $verdict == lossless ]] || all_ok=0
    ((sent > top)) && top=$sent
    cap_acc+=("$acc")
  done
  if ((all_ok)); then
    log "  no loss flat out: the zero-loss rate is the sender's top speed"
    return 0
  fi
  # Bounded search: lo passed RUNS runs in a row, hi lost. Start at 70% of the median capacity.
  # The zero-loss rate cannot be far above what it accepts flat out: hi <= 1.5x capacity.
  local lo=0 hi=$top rate step cap
  cap=$(printf '%s\n' "${cap_acc[@]}" | sort -n | awk '{a[NR]=$1} END {print int(a[int((NR+1)/2)])}')
  ((cap * 3 / 2 < hi)) && hi=$((cap * 3 / 2))
  rate=$((cap * 7 / 10))
  for ((step = 0; step < STEPS; step++)); do
    ((rate > 0)) || break
    local ok=1
    for ((i = 0; i < RUNS; i++)); do
      read -r verdict sent acc < <(run_once "$sys" "$tr" "$lines" "$rate" "search")
      log "  offered $rate/s: $verdict (sent $sent/s)"
      if [[ $verdict != lossless ]]; then ok=0; break; fi
    done
    if ((ok)); then lo=$rate; else hi=$rate; fi
    if ((lo == 0)); then
      rate=$((rate / 3))
    else
      python3 -c "import sys; sys.exit(0 if $hi / $lo < 1.15 else 1)" && break
      rate=$(python3 -c "import math; print(int(math.sqrt($lo * $hi)))")  # geometric midpoint
    fi
  done
  log "  zero-loss rate: $lo/s offered (lost at $hi/s)"
}

finish_system() {  # records peak RSS and the receive buffer of the running system
  local sys=$1 rb=${2:-}
  echo "{\"system\":\"$sys\",\"phase\":\"footprint\",\"peak_rss_kib\":$(peak_rss_kib "$PID"),\"rcvbuf\":${rb:-null}}" >>"$RUNS_FILE"
}

# ---------------------------------------------------------------- the systems
run_tallyd() {
  UDP_PORT=$(free_port) HTTP_PORT=$(free_port) SOCK=$WORK/tallyd.sock
  local transports=("udp 1" "udp 50" "unix 50" "http 1000" "http 1") t
  for t in "${transports[@]}"; do
    set -- $t
    rm -rf "$WORK/tallyd-data"
    "$TALLYD" --data-dir "$WORK/tallyd-data" --udp-listen "127.0.0.1:$UDP_PORT" \
      --http-listen "127.0.0.1:$HTTP_PORT" --unix-socket "$SOCK" --log-level warn \
      --max-keys 1000000 >>"$WORK/tallyd.log" 2>&1 &
    PID=$!
    wait_port tcp "$HTTP_PORT"
    local rb
    rb=$(rcvbuf_of "$UDP_PORT")
    measure tallyd "$1" "$2"
    finish_system "tallyd-$1-$2" "$rb"
    if [[ $1 == http && $2 == 1000 ]]; then
      log "tallyd http: ?wait=flush latency, 100-line bodies, 4 connections, ${DUR}s"
      record "$("$LOAD" --transport http --target "127.0.0.1:$HTTP_PORT" --lines 100 --wait-flush \
        --connections 4 --duration "$DUR" --keys "$KEYS" --label tallyd 2>>"$WORK/load.log" || true)" \
        system=tallyd phase=latency cpu_s=0 >/dev/null
    fi
    stop_pid
  done
}

run_floor() {
  UDP_PORT=$(free_port) CTL_PORT=$(free_port)
  local lines
  for lines in 1 50; do
    "$FLOOR" --listen "127.0.0.1:$UDP_PORT" --control "127.0.0.1:$CTL_PORT" \
      >>"$WORK/floor.log" 2>&1 &
    PID=$!
    wait_port tcp "$CTL_PORT"
    measure floor udp "$lines"
    finish_system "floor-udp-$lines" "$(rcvbuf_of "$UDP_PORT")"
    stop_pid
  done
}

start_statsd() {
  node "$PEERS/node_modules/statsd/stats.js" "$WORK/statsd.js" >>"$WORK/statsd.log" 2>&1 &
  PID=$!
  wait_port tcp "$STATSD_MGMT"
  PEER_RCVBUF=$(rcvbuf_of "$UDP_PORT")
}

run_statsd() {
  UDP_PORT=$(free_port) STATSD_MGMT=$(free_port)
  cat >"$WORK/statsd.js" <<EOF
{port: $UDP_PORT, address: "127.0.0.1", mgmt_port: $STATSD_MGMT, mgmt_address: "127.0.0.1",
 flushInterval: 3600000, backends: [], automaticConfigReload: false}
EOF
  local lines
  for lines in 1 50; do
    measure statsd udp "$lines"
  done
}

# collectd's own cumulative counts, summed over the last value of each apikey derive.
collectd_total() {
  python3 - "$1" <<'EOF'
import re, sys
last = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"(\S*apikey\S*(?:success|failure)\S*) (\d+(?:\.\d+)?) \d+\s*$", line)
    if m:
        last[m.group(1)] = float(m.group(2))
print(int(sum(last.values())))
EOF
}

start_collectd() {
  collectd -f -C "$WORK/collectd.conf" >"$WORK/collectd.out" 2>&1 &
  PID=$!
  wait_port udp "$UDP_PORT"
  PEER_RCVBUF=$(rcvbuf_of "$UDP_PORT")
}

run_collectd() {
  UDP_PORT=$(free_port)
  mkdir -p "$WORK/collectd"
  cat >"$WORK/collectd.conf" <<EOF
Hostname "bench"
BaseDir "$WORK/collectd"
PIDFile "$WORK/collectd/collectd.pid"
Interval 10
LoadPlugin logfile
LoadPlugin statsd
LoadPlugin write_log
<Plugin logfile>
  LogLevel info
  File STDOUT
  Timestamp false
</Plugin>
<Plugin statsd>
  Host "127.0.0.1"
  Port "$UDP_PORT"
</Plugin>
<Plugin write_log>
  Format Graphite
</Plugin>
EOF
  local lines verdict
  for lines in 1 50; do
    measure collectd udp "$lines"
    # Cross-check: one more flat-out run, then collectd's own count against sent - drops.
    read -r verdict _ < <(run_once collectd udp "$lines" 0 crosscheck)
    log "  cross-check run ($verdict): collectd's own count against sent - kernel drops recorded"
  done
}

run_redis() {
  local port p i out rps calls0 calls1 c0 c1 n
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    >>"$WORK/redis.log" 2>&1 &
  PID=$!
  wait_port tcp "$port"
  for p in 100 1; do
    n=$REDIS_N
    ((p == 1)) && n=$REDIS_N1
    log "redis HINCRBY -P $p: $RUNS run(s) of $n ops"
    for ((i = 0; i < RUNS; i++)); do
      calls0=$(redis-cli -p "$port" info commandstats | grep -o 'cmdstat_hincrby:calls=[0-9]*' | grep -o '[0-9]*$' || echo 0)
      c0=$(cpu_ticks "$PID")
      out=$(redis-benchmark -p "$port" -n "$n" -P "$p" -r "$KEYS" -q HINCRBY apikey:__rand_int__ success 1 2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -1)
      c1=$(cpu_ticks "$PID")
      calls1=$(redis-cli -p "$port" info commandstats | grep -o 'cmdstat_hincrby:calls=[0-9]*' | grep -o '[0-9]*$')
      rps=$(echo "$out" | grep -o '[0-9.]* requests per second' | cut -d' ' -f1)
      record "{\"transport\":\"tcp\",\"lines_per_msg\":$p,\"sent_events\":$n,\"accepted\":$((calls1 - calls0)),\"lost\":$((n - (calls1 - calls0))),\"sent_eps\":${rps%.*},\"accepted_eps\":${rps%.*}}" \
        system=redis phase=capacity cpu_s="$(python3 -c "print(($c1-$c0)/$(getconf CLK_TCK))")" >/dev/null
      log "  $rps ops/s, $((calls1 - calls0)) HINCRBY applied of $n"
    done
  done
  finish_system redis-tcp
  stop_pid
}

# ---------------------------------------------------------------- the table
# render_table RUNS_JSONL DOC|- RUNS: summarises the runs and regenerates the block between
# the compare markers in DOC's "## Comparison" section; the figures of the block it replaces
# (kept as JSON in a comment) stay beside the new ones where they changed.
render_table() {
  python3 "$ROOT/bench/compare_table.py" "$@"
}

# ---------------------------------------------------------------- run everything
log "work dir $WORK; runs of ${DUR}s, $RUNS per rate, $STEPS search steps, $KEYS keys"
{
  echo "{\"phase\":\"machine\",\"commit\":\"$(git rev-parse --short "${REF:-HEAD}")$([[ -z $REF ]] && ! git diff --quiet HEAD -- core persistence daemon bench && echo +dirty)\",\"nproc\":$(nproc),\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\",\"kernel\":\"$(uname -r)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\",\"load_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"rmem_max\":$(cat /proc/sys/net/core/rmem_max),\"quick\":$QUICK,\"duration_s\":$DUR,\"runs\":$RUNS,\"keys\":$KEYS}"
} >>"$RUNS_FILE"
for s in floor tallyd statsd collectd redis; do
  if wanted "$s"; then "run_$s"; fi
done
echo "{\"phase\":\"end\",\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\"}" >>"$RUNS_FILE"
if ((DOCS)); then
  render_table "$RUNS_FILE" "$ROOT/docs/performance.md" "$RUNS"
  log "table written into docs/performance.md (## Comparison)"
else
  render_table "$RUNS_FILE" - "$RUNS"
fi
log "done; raw runs in $RUNS_FILE"
