#!/usr/bin/env bash
# soak.sh: runs tallyd for N minutes at half its measured maximum rate over UDP and HTTP at
# once, with admin traffic alongside, and checks that nothing leaks or drifts.
#
#   bench/soak.sh [MINUTES]          (default 10; not run in CI)
#
# Steps:
#   1. starts a fresh tallyd (Release build) on free loopback ports and a temp data dir;
#   2. measures the maximum rate of each transport with tally-load flat out for 5 s
#      (accepted events/s), unless SOAK_UDP_EPS / SOAK_HTTP_EPS are given;
#   3. runs tally-load over UDP and over HTTP together for MINUTES at half the maximum in
#      total (a quarter of each transport's own maximum, since each was measured alone),
#      with an admin loop alongside (summary, per-group summaries, /metrics, group and key
#      listings, creating groups and moving keys of the load between groups, /admin/flush);
#   4. samples tallyd's VmRSS and open descriptors every 10 s (CSV in the output dir);
#   5. at the end, after a flush: the summary must equal everything sent (by outcome, the
#      maximum-rate probes included), the per-group summaries must add up to it; after
#      warm-up, RSS and the descriptors other than RocksDB's table files may grow < 5%, and
#      no descriptor of a deleted file may stay open (table files come and go with
#      compactions). Warm-up: at least 60 s and the first 20% of the run, and until every
#      column family has flushed a memtable at least once (the WAL open at the start is
#      released), so the memtables have been through a cycle at their bound. A run whose
#      first WAL is never released fails: its memory was not bounded within the run.
# Exit code 0 only if every check holds; the last line says which did not.
#
# Environment: TALLYD (default build/daemon/tallyd), TALLY_LOAD (build/bench/tally-load),
# SOAK_OUT (output dir, default a new /tmp/tallyd-soak-*), SOAK_KEYS (keys per transport,
# default 100000), SOAK_UDP_EPS / SOAK_HTTP_EPS (skip the probe and use these maxima).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
tallyd_bin=${TALLYD:-build/daemon/tallyd}
load_bin=${TALLY_LOAD:-build/bench/tally-load}
keys=${SOAK_KEYS:-100000}
out=${SOAK_OUT:-$(mktemp -d /tmp/tallyd-soak-XXXXXX)}
mkdir -p "$out"
for b in "$tallyd_bin" "$load_bin"; do
  [[ -x $b ]] || { echo "soak: $b not built (cmake --build build)" >&2; exit 2; }
done

free_port() {
  python3 -c 'import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()'
}
udp_port=$(free_port)
http_port=$(free_port)
http="127.0.0.1:$http_port"
data="$out/data"

"$tallyd_bin" --data-dir "$data" --udp-listen "127.0.0.1:$udp_port" --http-listen "$http" \
  --max-keys 1000000 >"$out/tallyd.log" 2>&1 &
tallyd_pid=$!
admin_pid=""
sampler_pid=""
cleanup() {
  [[ -n $admin_pid ]] && kill "$admin_pid" 2>/dev/null || true
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null || true
  kill -TERM "$tallyd_pid" 2>/dev/null && wait "$tallyd_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -sf "http://$http/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://$http/healthz" >/dev/null || { echo "soak: tallyd did not start" >&2; exit 1; }
echo "soak: tallyd pid $tallyd_pid, udp $udp_port, http $http_port, output in $out"

# json_field FILE FIELD: one field of tally-load's JSON line.
json_field() {
  python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"
}

# 2. Maximum rates (flat out, 5 s each), unless given.
udp_max=${SOAK_UDP_EPS:-}
http_max=${SOAK_HTTP_EPS:-}
if [[ -z $udp_max ]]; then
  "$load_bin" --transport udp --target "127.0.0.1:$udp_port" --http "$http" --lines 20 \
    --keys "$keys" --duration 5 --rate 0 --label probe-udp >"$out/probe-udp.json" 2>"$out/probe-udp.log"
  udp_max=$(json_field "$out/probe-udp.json" accepted_eps)
fi
if [[ -z $http_max ]]; then
  "$load_bin" --transport http --target "$http" --http "$http" --lines 100 --keys "$keys" \
    --connections 2 --duration 5 --rate 0 --label probe-http >"$out/probe-http.json" 2>"$out/probe-http.log"
  http_max=$(json_field "$out/probe-http.json" accepted_eps)
fi
# Half the maximum in total: each transport's maximum was measured alone with the whole
# machine, so each gets a quarter of its own maximum (half of each would add up to a full
# machine's worth).
udp_rate=$((udp_max / 4))
http_rate=$((http_max / 4))
echo "soak: maximum accepted rates: udp $udp_max events/s, http $http_max events/s;" \
  "soaking at udp $udp_rate + http $http_rate events/s for $minutes min"

# Every event sent from here on, plus the probes, must end up in the summary.
base=$(curl -sf "http://$http/admin/apikey-stats/summary")

# 4. Sampler, every 10 s: RSS (KiB); open descriptors, of which RocksDB table files (.sst)
# and descriptors of deleted files; the oldest WAL file's number (it rises once every column
# family has flushed the memtable that was open when the sample started).
echo "elapsed_s,rss_kib,fds,sst_fds,deleted_fds,oldest_wal" >"$out/samples.csv"
(
  start=$SECONDS
  while kill -0 "$tallyd_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$tallyd_pid/status" 2>/dev/null || echo -1)
    links=$(ls -l "/proc/$tallyd_pid/fd" 2>/dev/null | tail -n +2 || true)
    fds=$(grep -c . <<<"$links" || true)
    sst=$(grep -c '\.sst$' <<<"$links" || true)
    deleted=$(grep -c '(deleted)$' <<<"$links" || true)
    wal=$(ls "$data" 2>/dev/null | sed -n 's/^0*\([0-9][0-9]*\)\.log$/\1/p' | sort -n | head -1)
    echo "$((SECONDS - start)),$rss,$fds,$sst,$deleted,${wal:--1}" >>"$out/samples.csv"
    sleep 10
  done
) &
sampler_pid=$!

# 3b. Admin traffic: reads, group creation, key moves within the load's key range.
(
  i=0
  while true; do
    i=$((i + 1))
    curl -sf "http://$http/admin/apikey-stats/summary" >/dev/null || echo "admin: summary failed"
    curl -sf "http://$http/metrics" >/dev/null || echo "admin: metrics failed"
    curl -sf "http://$http/admin/provider-groups" >/dev/null || echo "admin: groups failed"
    curl -sf "http://$http/admin/api-keys?group_id=1" >/dev/null || echo "admin: keys failed"
    if ((i % 5 == 0)); then
      g=$((i / 5 % 20 + 1))
      curl -s -o /dev/null -X PUT "http://$http/admin/provider-groups/$g" \
        -d "{\"name\":\"soak-$g\",\"type\":\"openai\",\"base_url\":\"http://127.0.0.1/$g\"}"
      k=$((RANDOM % keys + 1))
      curl -s -o /dev/null -X PUT "http://$http/admin/api-keys/$k" \
        -d "{\"api_key\":\"sk-soak-$k\",\"group_id\":$g,\"status\":\"active\"}"
      curl -sf "http://$http/admin/apikey-stats/summary?group_id=$g" >/dev/null ||
        echo "admin: group summary failed"
    fi
    if ((i % 50 == 0)); then
      curl -sf -X POST "http://$http/admin/flush" >/dev/null || echo "admin: flush failed"
    fi
    sleep 0.2
  done
) >"$out/admin.log" 2>&1 &
admin_pid=$!

seconds=$((minutes * 60))
"$load_bin" --transport udp --target "127.0.0.1:$udp_port" --http "$http" --lines 20 \
  --keys "$keys" --duration "$seconds" --rate "$udp_rate" --readback none --label soak-udp \
  >"$out/soak-udp.json" 2>"$out/soak-udp.log" &
udp_load=$!
"$load_bin" --transport http --target "$http" --http "$http" --lines 100 --keys "$keys" \
  --connections 2 --duration "$seconds" --rate "$http_rate" --readback none --label soak-http \
  >"$out/soak-http.json" 2>"$out/soak-http.log" &
http_load=$!
wait "$udp_load" "$http_load"
kill "$admin_pid" 2>/dev/null || true
wait "$admin_pid" 2>/dev/null || true
admin_pid=""
sleep 2
curl -sf -X POST "http://$http/admin/flush" >/dev/null
sleep 1
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""

curl -sf "http://$http/metrics" | grep -E '^tallyd_(lines_total|udp_kernel_drops_total)' \
  >"$out/final-metrics.txt" || true

# 5. Checks.
python3 - "$out" "$http" "$base" <<'EOF'
import json, statistics, sys, urllib.request
out, http, base = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

def get(path):
    with urllib.request.urlopen(f"http://{http}{path}", timeout=30) as r:
        return json.loads(r.read())

def last_json(name):
    with open(f"{out}/{name}") as f:
        return json.loads(f.read().strip().splitlines()[-1])

failures = []
sent_ok = sent_bad = 0
runs = {}
for name in ("soak-udp.json", "soak-http.json"):
    j = last_json(name)
    runs[name] = j
    sent_ok += j["sent_successes"]
    sent_bad += j["sent_failures"]
    if j.get("send_errors", 0):
        failures.append(f"{name}: {j['send_errors']} send errors")
summary = get("/admin/apikey-stats/summary")
got_ok = summary["success_requests"] - base["success_requests"]
got_bad = summary["failure_requests"] - base["failure_requests"]
print(f"soak: sent {sent_ok} successes + {sent_bad} failures = {sent_ok + sent_bad}; "
      f"persisted {got_ok} + {got_bad} = {got_ok + got_bad}")
for line in open(f"{out}/final-metrics.txt"):
    if "kernel_drops" in line or 'result="accepted"' in line:
        print("soak: " + line.strip())
if (got_ok, got_bad) != (sent_ok, sent_bad):
    failures.append(f"totals not exact: persisted {got_ok}/{got_bad}, sent {sent_ok}/{sent_bad}")

# Groups add up to the summary: every live group plus the unassigned keys (group 0).
groups = get("/admin/provider-groups")
total = get("/admin/apikey-stats/summary?group_id=0")["total_requests"]
for g in groups:
    total += get(f"/admin/apikey-stats/summary?group_id={g['ID']}")["total_requests"]
print(f"soak: {len(groups)} groups + unassigned sum to {total}; summary {summary['total_requests']}")
if total != summary["total_requests"]:
    failures.append(f"groups sum to {total}, summary says {summary['total_requests']}")

rows = []
with open(f"{out}/samples.csv") as f:
    next(f)
    for line in f:
        t, rss, fds, sst, deleted, wal = (int(x) for x in line.split(","))
        if rss > 0:
            rows.append((t, rss, fds - sst, sst, deleted, wal))
if len(rows) < 4:
    failures.append(f"only {len(rows)} samples")
else:
    # Warm-up: at least 60 s and 20% of the run, and until the WAL that was open at the
    # first sample has been released, i.e. every column family has filled (or been made to
    # flush by the WAL cap) and flushed a memtable at least once, so the memtables have
    # been through a full cycle at their bound (persistence/store.cc).
    end = rows[-1][0]
    recycled = [r[0] for r in rows if r[5] > rows[0][5]]
    warm = max(60, end // 5, recycled[0] if recycled else end + 1)
    print(f"soak: warm-up {warm} s (first WAL released at "
          f"{str(recycled[0]) + ' s' if recycled else 'never'})")
    after = [r for r in rows if r[0] >= warm]
    if len(after) < 6:
        failures.append(f"only {len(after)} samples after a warm-up of {warm} s")
    else:
        head, tail = after[:3], after[-3:]
        for i, what in ((1, "RSS"), (2, "fds other than .sst")):
            b = statistics.median(r[i] for r in head)
            e = statistics.median(r[i] for r in tail)
            growth = (e - b) / b if b else 0
            print(f"soak: {what} after warm-up ({warm} s): {b} -> {e} ({100 * growth:+.1f}%), "
                  f"max {max(r[i] for r in rows)}")
            if growth >= 0.05:
                failures.append(f"{what} grew {100 * growth:.1f}% after warm-up")
        # Table files come and go with flushes and compactions; a leak would keep the
        # descriptors of deleted ones.
        print(f"soak: .sst fds after warm-up: {after[0][3]} -> {after[-1][3]}, "
              f"max {max(r[3] for r in after)}; fds of deleted files at the end: {tail[-1][4]}")
        if statistics.median(r[4] for r in tail) > 0:
            failures.append("descriptors of deleted files kept open at the end")
admin_errors = open(f"{out}/admin.log").read().strip()
if admin_errors:
    failures.append("admin errors: " + admin_errors.splitlines()[0])
print("soak: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
sys.exit(1 if failures else 0)
EOF
