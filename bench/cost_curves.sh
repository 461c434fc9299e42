#!/usr/bin/env bash
# bench/cost_curves.sh: how tallyd's costs grow with the number of keys. For each key count
# (default 10k, 100k, 1M, 10M) it measures, with a fresh data directory:
#   capacity and zero-loss   UDP, 50 lines per datagram over all N keys (bench/compare's
#                            search: RUNS flat-out runs, then at most STEPS paced steps)
#   first flush              the flush that creates the N key records (after sending each once)
#   flush of N changed keys  every key changed, then one POST /admin/flush (median of REPS);
#                            the time is tallyd's own (tallyd_flush_duration_seconds)
#   resident memory          tallyd_process_resident_memory_bytes after the runs; peak VmHWM
#   disk bytes               the data directory after a clean stop (du --apparent-size; RocksDB's
#                            LOG files included), and its .sst files alone
#   start-up, clean stop     launch to the first GET /healthz = 200 (median of REPS)
#   start-up, after a crash  the same after two flushes of all N keys and kill -9 (median of REPS)
# Appends one JSON line per key count to OUT/curves.jsonl, then bench/cost_curves_report.py
# writes the table and the charts (docs/images/cost_curves.png) into docs/performance.md
# ("## Cost curves"), merging with the points already there, so any subset can be run.
#
#   bench/cost_curves.sh [--keys 10000,100000,1000000,10000000] [--quick] [--no-docs]
#                        [--build-dir DIR] [--out DIR] [--max-keys default|tight]
# --quick: 1-second runs, 1 run per rate, 2 search steps, 1 repetition: a smoke run.
# --max-keys default: tallyd's --max-keys is max(1,000,000, N) (the default unless N needs
#   more; the counter table is sized by it); tight: exactly N.
# Needs tallyd and tally-load built (cmake --build DIR --target tallyd tally-load) and gnuplot
# (scripts/deps.sh). The machine is shared: say the load (it is recorded with every point).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KEYSET=10000,100000,1000000,10000000 QUICK=0 DOCS=1 BUILD=$ROOT/build OUT="" MAXMODE=default
while (($#)); do
  case $1 in
    --keys) KEYSET=$2; shift ;;
    --quick) QUICK=1 ;;
    --no-docs) DOCS=0 ;;
    --build-dir) BUILD=$2; shift ;;
    --out) OUT=$2; shift ;;
    --max-keys) MAXMODE=$2; shift ;;
    -h | --help) sed -n 2,26p "$0"; exit 0 ;;
    *) echo "cost_curves.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $MAXMODE == default || $MAXMODE == tight ]] || { echo "cost_curves.sh: --max-keys default|tight" >&2; exit 2; }
RUNS=3 STEPS=4 DUR=3 REPS=3
((QUICK)) && RUNS=1 STEPS=2 DUR=1 REPS=1
TALLYD=$BUILD/daemon/tallyd LOAD=$BUILD/bench/tally-load
for b in "$TALLYD" "$LOAD"; do
  [[ -x $b ]] || { echo "cost_curves.sh: missing $b (build tallyd and tally-load)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/tally-curves.XXXXXX)
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
RUNS_FILE=$WORK/runs.jsonl
PID=""
# shellcheck source=bench/compare/common.sh
source "$ROOT/bench/compare/common.sh"
cleanup() {
  local p
  for p in $(pgrep -P $$ 2>/dev/null || true) "$PID"; do
    if [[ -n $p ]]; then kill -9 "$p" 2>/dev/null || true; fi
  done
}
trap cleanup EXIT
trap 'exit 143' TERM

metric() {  # $1 metric name (exact series): its value on /metrics, 0 if absent
  curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" '$1 == m {print $2; f=1} END {if (!f) print 0}'
}
# Starts tallyd on $DATA (extra options after) and waits for /healthz; STARTUP_S is the time
# from the launch to the first 200. (Not in a $(...) subshell: PID must reach the caller.)
start_tallyd() {
  local t0=$EPOCHREALTIME
  "$TALLYD" --data-dir "$DATA" --udp-listen "127.0.0.1:$UDP_PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
    --log-level warn --max-keys "$MAXK" "$@" >>"$WORK/tallyd.log" 2>&1 &
  PID=$!
  STARTUP_S=$(python3 - "$HTTP_PORT" "$t0" "$PID" <<'PY'
import os, sys, time, urllib.request
port, t0, pid = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
while time.time() - t0 < 600:
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200:
            print(round(time.time() - t0, 3)); sys.exit(0)
    except Exception:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("tallyd exited during start-up (see tallyd.log)")
    time.sleep(0.005)
sys.exit("tallyd not ready after 600 s")
PY
  )
}
# Sends every key (the pool covers all N keys; paced, so that little is dropped) and waits until
# tallyd has read it all. No read-back: tally-load's would flush.
touch_all() {
  local secs
  secs=$(python3 -c "print(max(1.0, 1.2 * $N / 1e6))")  # the pool from its start: every key
  "$LOAD" --transport udp --target "127.0.0.1:$UDP_PORT" --lines 50 --keys "$N" --rate 1000000 \
    --duration "$secs" --readback none --label touch 2>>"$WORK/load.log" >>"$WORK/touch.jsonl" || true
  wait_drained "$UDP_PORT" >/dev/null
}
admin_flush_s() {  # one flush by POST /admin/flush; prints tallyd's own time for it
  local s0 c0 s1 c1
  s0=$(metric tallyd_flush_duration_seconds_sum) c0=$(metric tallyd_flush_duration_seconds_count)
  curl -fsS -X POST "http://127.0.0.1:$HTTP_PORT/admin/flush" >/dev/null
  s1=$(metric tallyd_flush_duration_seconds_sum) c1=$(metric tallyd_flush_duration_seconds_count)
  python3 -c "print(round(($s1 - $s0) / max($c1 - $c0, 1), 4))"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

point() {
  N=$1
  MAXK=$N
  [[ $MAXMODE == default ]] && ((MAXK < 1000000)) && MAXK=1000000
  DATA=$WORK/data-$N KEYS=$N
  UDP_PORT=$(free_port) HTTP_PORT=$(free_port)
  rm -rf "$DATA"
  local load0 first live cap_rss peak flush=() clean=() crash=() i disk sst
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  log "N=$N (--max-keys $MAXK): populate and first flush"
  start_tallyd --flush-interval-ms 3600000
  touch_all
  first=$(admin_flush_s)
  live=$(metric tallyd_keys)
  log "  first flush (N new key records): ${first}s; flushes of N changed keys"
  for ((i = 0; i < REPS; i++)); do
    touch_all
    flush+=("$(admin_flush_s)")
  done
  stop_pid
  log "  flush: ${flush[*]} s; ingest at 50 lines per datagram"
  start_tallyd  # the default flush interval during the ingest runs
  local mark
  touch "$RUNS_FILE"
  mark=$(wc -l <"$RUNS_FILE")
  measure tallyd udp 50
  cap_rss=$(metric tallyd_process_resident_memory_bytes)
  peak=$(peak_rss_kib "$PID")
  stop_pid  # SIGTERM: a clean stop
  disk=$(du -sb --apparent-size "$DATA" | cut -f1)
  sst=$(find "$DATA" -name '*.sst' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  log "  RSS $cap_rss B (peak $peak KiB), disk $disk B; start-up after a clean stop"
  for ((i = 0; i < REPS; i++)); do
    start_tallyd
    clean+=("$STARTUP_S")
    stop_pid
  done
  log "  start-up after a clean stop: ${clean[*]} s; after a crash"
  for ((i = 0; i < REPS; i++)); do
    start_tallyd --flush-interval-ms 3600000
    touch_all; admin_flush_s >/dev/null
    touch_all; admin_flush_s >/dev/null
    kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
    start_tallyd
    crash+=("$STARTUP_S")
    stop_pid
  done
  log "  start-up after a crash: ${crash[*]} s"
  python3 - "$RUNS_FILE" "$mark" "$RUNS" <<PY >>"$OUT/curves.jsonl"
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):] if l.strip()]
need = int(sys.argv[3])
cap = [r for r in recs if r.get("phase") == "capacity"]
capacity = statistics.median([r["accepted_eps"] for r in cap]) if cap else None
if cap and all(r["lost"] == 0 for r in cap):
    zero, zero_note = statistics.median([r["sent_eps"] for r in cap]), "no loss flat out"
else:
    by = {}
    for r in recs:
        if r.get("phase") == "search":
            by.setdefault(r["offered_eps"], []).append(r)
    ok = [k for k, v in by.items() if len(v) >= need and all(x["lost"] == 0 for x in v)]
    lost = [k for k, v in by.items() if any(x["lost"] for x in v)]
    zero = max((statistics.median([x["sent_eps"] for x in by[k]]) for k in ok), default=0)
    above = [k for k in lost if k > max(ok, default=0)]
    worst = max(cap, key=lambda r: r["lost"]) if cap else None
    zero_note = (f"lost at {int(min(above))}/s" if above else
                 f"flat out ({worst['sent_eps']}/s) lost {worst['lost']}" if worst and worst["lost"] else "")
print(json.dumps({
    "keys": $N, "max_keys": $MAXK, "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
    "commit": "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- core persistence daemon || echo +dirty)",
    "load_before": "$load0", "load_after": "$(cut -d' ' -f1-3 /proc/loadavg)", "nproc": $(nproc),
    "quick": $QUICK, "runs": $RUNS, "duration_s": $DUR, "reps": $REPS,
    "capacity_eps": capacity, "zero_loss_eps": zero, "zero_loss_note": zero_note,
    "persisted_equals_accepted": all(r.get("persisted_total") == r.get("accepted") for r in recs
                                     if r.get("phase") in ("capacity", "search")),
    "keys_counted": $live, "first_flush_s": $first, "flush_s": $(median "${flush[@]}"), "flush_runs": [$(IFS=,; echo "${flush[*]}")],
    "rss_bytes": $cap_rss, "peak_rss_kib": $peak, "disk_bytes": $disk, "sst_bytes": $sst,
    "startup_clean_s": $(median "${clean[@]}"), "startup_clean_runs": [$(IFS=,; echo "${clean[*]}")],
    "startup_crash_s": $(median "${crash[@]}"), "startup_crash_runs": [$(IFS=,; echo "${crash[*]}")]}))
PY
  tail -1 "$OUT/curves.jsonl" >&2
}

log "work dir $WORK; keys $KEYSET; runs of ${DUR}s, $RUNS per rate, $STEPS steps, $REPS repetitions"
IFS=, read -r -a keyset <<<"$KEYSET"
for n in "${keyset[@]}"; do
  point "$n"
done
if ((DOCS)); then
  python3 "$ROOT/bench/cost_curves_report.py" "$OUT/curves.jsonl" "$ROOT/docs/performance.md" "$ROOT/docs/images"
else
  python3 "$ROOT/bench/cost_curves_report.py" "$OUT/curves.jsonl" - "$WORK"
fi
log "done; points in $OUT/curves.jsonl"
