#!/usr/bin/env bash
# bench/compare.sh: tallyd side by side with the peers operators would use instead, on this
# machine, in one run, with the same offered loads. Reproducible on a fresh Debian 12 machine.
#
#   bench/compare.sh [--quick [--docs]] [--no-install] [--no-docs] [--only a,b,...]
#                    [--duration S] [--build-dir DIR] [--no-build] [--rmem BYTES]
#                    [--peers-src DIR]
# --build-dir: where to build (default build-bench; CMake build trees are reused);
# --no-build: use the binaries already in the build dir.
# --ref REF: measure the committed tree at git REF (e.g. HEAD), copied into
#   /tmp/tally-compare-src and built there, instead of the working tree.
# --quick: 1-second runs, 1 run per rate, 2 search steps; a smoke run, docs left alone.
# --rmem BYTES: net.core.rmem_max for the run (default 8388608, which the kernel doubles to
#   tallyd's 16 MiB) and rmem_default twice that, restored on exit; 0 leaves them alone.
# --peers-src DIR: the pinned brubeck and statsite sources (default ../shared/peers), built
#   by their build.sh into BUILD_DIR/peers.
#
# Systems (each alone, one after another; every receiver listens on 127.0.0.1 only):
#   tallyd    UDP 1 and 50 lines/datagram, Unix socket 50, HTTP 1,000-line bodies and 1-line
#   brubeck   ebbd222, UDP 1 and 50 (totals: its carbon flushes, summed by compare/carbon_sink.py)
#   statsite  bf68fa2, UDP 1 and 50 (totals: the counts.* lines of its stream_cmd output)
#   statsd    Etsy statsd 0.9.0 (npm), UDP 1 and 50        (totals: management port `counters`)
#   collectd  collectd 5.12 statsd plugin, UDP 1 and 50     (totals: kernel drops per run,
#             checked against collectd's own cumulative counts written by write_log)
#   redis     HINCRBY per event with redis-benchmark, -P 100 and -P 1
#   floor     bench/floor.cc, a bare recvmmsg loop counting lines, UDP 1 and 50
#   nginx     Debian's nginx answering `return 202`: the HTTP floor for 1-line requests
# Every UDP receiver gets the same receive buffer (--rmem); each granted size is reported.
# The parts live in bench/compare/*.sh (sourced).
# For each: capacity (accepted events/s while the sender runs flat out, median of RUNS runs)
# and the zero-loss rate (highest offered rate losing nothing in RUNS runs in a row, by a
# bounded search), CPU seconds per million accepted events (/proc/<pid>/stat utime+stime),
# peak RSS (VmHWM) and the receive buffer (ss -m). Results: $WORK/runs.jsonl, and a table
# regenerated between markers in docs/performance.md ("## Comparison").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0 INSTALL=1 BUILD_IT=1 BUILD_DIR_ARG="" REF="" DOCS=1 ONLY="floor,tallyd,brubeck,statsite,nginx,statsd,collectd,redis" DUR=4
RMEM=8388608 PEERS_SRC=${TALLY_PEERS_SRC:-}
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
    --rmem) RMEM=$2; shift ;;
    --peers-src) PEERS_SRC=$2; shift ;;
    -h | --help) sed -n 2,34p "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for s in ${ONLY//,/ }; do
  [[ ,floor,tallyd,brubeck,statsite,nginx,statsd,collectd,redis, == *,$s,* ]] ||
    { echo "compare.sh: --only: unknown system $s" >&2; exit 2; }
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
PID="" SINK_PID=""
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
wanted() { [[ ,$ONLY, == *,$1,* ]]; }

cleanup() {  # on every exit, failures and interrupts included
  local p
  # A run in progress lives in a subshell (its own trap stops its peer), then our daemons.
  for p in $(pgrep -P $$ 2>/dev/null || true) "$PID" "$SINK_PID"; do
    if [[ -n $p ]] && kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  if declare -F restore_rmem >/dev/null; then restore_rmem; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
BRUBECK="" STATSITE=""
if wanted brubeck || wanted statsite; then
  # ../shared/peers beside the repository; from a git worktree, beside the main checkout.
  for d in "$PEERS_SRC" "$ROOT/../shared/peers" "$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)/../../shared/peers"; do
    [[ -n $d && -x $d/build.sh ]] && { PEERS_SRC=$d; break; }
  done
  [[ -x ${PEERS_SRC:-}/build.sh ]] || { log "no peers' sources (../shared/peers): give --peers-src DIR"; exit 1; }
  log "peers: building brubeck and statsite from $PEERS_SRC into $BUILD/peers"
  if ! mapfile -t peer_bins < <("$PEERS_SRC/build.sh" "$BUILD/peers" 2>"$WORK/peers-build.log"); then
    tail -25 "$WORK/peers-build.log" >&2
    exit 1
  fi
  BRUBECK=${peer_bins[0]} STATSITE=${peer_bins[1]}
fi

# ---------------------------------------------------------------- the systems
# shellcheck source=bench/compare/common.sh
source "$ROOT/bench/compare/common.sh"
# shellcheck source=bench/compare/tallyd_floors.sh
source "$ROOT/bench/compare/tallyd_floors.sh"
# shellcheck source=bench/compare/brubeck_statsite.sh
source "$ROOT/bench/compare/brubeck_statsite.sh"
# shellcheck source=bench/compare/statsd_collectd.sh
source "$ROOT/bench/compare/statsd_collectd.sh"
# shellcheck source=bench/compare/redis.sh
source "$ROOT/bench/compare/redis.sh"
((RMEM > 0)) && set_rmem "$RMEM"

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
  echo "{\"phase\":\"machine\",\"commit\":\"$(git rev-parse --short "${REF:-HEAD}")$([[ -z $REF ]] && ! git diff --quiet HEAD -- core persistence daemon bench && echo +dirty)\",\"nproc\":$(nproc),\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\",\"kernel\":\"$(uname -r)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\",\"load_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"rmem_max\":$(cat /proc/sys/net/core/rmem_max),\"rmem_default\":$(cat /proc/sys/net/core/rmem_default),\"rmem_before\":${ORIG_RMEM_MAX:-null},\"quick\":$QUICK,\"duration_s\":$DUR,\"runs\":$RUNS,\"keys\":$KEYS}"
} >>"$RUNS_FILE"
for s in floor tallyd brubeck statsite nginx statsd collectd redis; do
  if wanted "$s"; then "run_$s"; fi
done
restore_rmem
echo "{\"phase\":\"end\",\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\"}" >>"$RUNS_FILE"
if ((DOCS)); then
  render_table "$RUNS_FILE" "$ROOT/docs/performance.md" "$RUNS"
  log "table written into docs/performance.md (## Comparison)"
else
  render_table "$RUNS_FILE" - "$RUNS"
fi
log "done; raw runs in $RUNS_FILE"
