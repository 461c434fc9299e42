#!/usr/bin/env bash
# bench/stall_profile.sh: what keeps tallyd's receiving thread off its CPU while UDP arrives
# (issue 21, goal 1: the zero-loss rate at 50 lines per datagram). It starts tallyd (16 MiB
# receive buffer, as in bench/compare.sh), sends UDP with tally-load at --rate, finds the
# receiving thread (the thread whose CPU time grows most in the first second), and records
# for --record seconds:
#   perf sched record -a -g        every context switch, wake-up and migration, with stacks
#   /proc/<pid>/task/<tid>/sched   its voluntary and involuntary switches, migrations, run time
#   /proc/<pid>/task/*/stat        every tallyd thread's CPU time and last CPU
#   /proc/net/udp                  the kernel's drops on the port in the same window
# and writes OUT/report.txt: the receiving thread's scheduling delays (runnable, not running:
# preempted) and off-CPU waits (blocked), the longest ones with what ran on its CPU meanwhile
# (perf sched timehist), the switch-out stacks of the thread (perf report on
# sched:sched_switch), and the threads' CPU shares. Needs root (or perf_event_paranoid <= 1)
# and linux-perf (scripts/deps.sh).
#
#   bench/stall_profile.sh [--rate 12000000] [--lines 50] [--duration 8] [--record 4]
#                          [--keys 100000] [--build-dir build] [--out DIR] [-- tallyd options]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=12000000 LINES=50 DUR=8 REC=4 KEYS=100000 BUILD=$ROOT/build OUT="" EXTRA=()
while (($#)); do
  case $1 in
    --rate) RATE=$2; shift ;;
    --lines) LINES=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --record) REC=$2; shift ;;
    --keys) KEYS=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    --out) OUT=$2; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) sed -n 2,19p "$0"; exit 0 ;;
    *) echo "stall_profile.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
((DUR >= REC + 3)) || { echo "stall_profile.sh: --duration must exceed --record by 3 s" >&2; exit 2; }
TALLYD=$BUILD/daemon/tallyd LOAD=$BUILD/bench/tally-load
WORK=$(mktemp -d /tmp/tally-stall.XXXXXX)
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
PID="" LOAD_PID=""
# shellcheck source=bench/compare/common.sh
source "$ROOT/bench/compare/common.sh"
trap 'for p in "$LOAD_PID" "$PID"; do if [[ -n $p ]]; then kill "$p" 2>/dev/null || true; fi; done' EXIT
UDP_PORT=$(free_port) HTTP_PORT=$(free_port)

"$TALLYD" --data-dir "$WORK/data" --udp-listen "127.0.0.1:$UDP_PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
  --log-level warn "${EXTRA[@]}" >>"$WORK/tallyd.log" 2>&1 &
PID=$!
wait_port tcp "$HTTP_PORT"
thread_ticks() {  # "tid ticks" for every thread of tallyd
  local t line f
  for t in /proc/"$PID"/task/*; do
    line=$(cat "$t/stat" 2>/dev/null) || continue
    read -r -a f <<<"${line##*) }"
    echo "${t##*/} $((f[11] + f[12]))"
  done
}
log "tallyd $PID; sending UDP x$LINES at $RATE events/s for ${DUR}s over $KEYS keys"
"$LOAD" --transport udp --target "127.0.0.1:$UDP_PORT" --http "127.0.0.1:$HTTP_PORT" --lines "$LINES" \
  --keys "$KEYS" --rate "$RATE" --duration "$DUR" >"$OUT/load.json" 2>"$OUT/load.log" &
LOAD_PID=$!
sleep 1
thread_ticks >"$WORK/t0"
sleep 1
thread_ticks >"$WORK/t1"
TID=$(join "$WORK/t0" "$WORK/t1" | awk '{d = $3 - $2; if (d > best) {best = d; tid = $1}} END {print tid}')
log "receiving thread: $TID ($(cat "/proc/$PID/task/$TID/comm"))"
cp "/proc/$PID/task/$TID/sched" "$OUT/sched.before"
read -r _ drops0 < <(udp_queue "$UDP_PORT")
perf sched record -a -g -o "$OUT/sched.data" -- sleep "$REC" 2>"$OUT/perf-record.log" >/dev/null
read -r _ drops1 < <(udp_queue "$UDP_PORT")
cp "/proc/$PID/task/$TID/sched" "$OUT/sched.after"
thread_ticks >"$WORK/t2"
RPID=$PID
for t in /proc/"$PID"/task/*; do echo "${t##*/} $(cat "$t/comm")"; done >"$WORK/names"
wait "$LOAD_PID" || true
LOAD_PID=""
stop_pid

log "reports into $OUT"
perf sched timehist -i "$OUT/sched.data" >"$OUT/timehist.txt" 2>/dev/null || true
perf script -i "$OUT/sched.data" --tid "$TID" -F tid,event,trace,ip,sym >"$OUT/switch-stacks.txt" \
  2>/dev/null || true
{
  echo "stall profile: tallyd $(git rev-parse --short HEAD), UDP x$LINES at $RATE events/s, $KEYS keys,"
  echo "recorded ${REC}s; load average $(cut -d' ' -f1-3 /proc/loadavg); receiving thread $TID"
  echo "kernel drops on the port while recording: $((drops1 - drops0)) datagrams"
  echo
  echo "== /proc/$RPID/task/$TID/sched, change while recording"
  join <(awk -F: 'NF == 2 {gsub(/ /, "", $1); gsub(/ /, "", $2); print $1, $2}' "$OUT/sched.before" | sort) \
    <(awk -F: 'NF == 2 {gsub(/ /, "", $1); gsub(/ /, "", $2); print $1, $2}' "$OUT/sched.after" | sort) |
    awk '$1 ~ /nr_switches|nr_voluntary|nr_involuntary|nr_migrations|sum_exec_runtime|wait_sum|wait_count|iowait/ {printf "%-40s %s\n", $1, $3 - $2}'
  echo
  echo "== tallyd threads: CPU ticks while recording (thread, ticks of $(getconf CLK_TCK)/s)"
  join "$WORK/t1" "$WORK/t2" | while read -r t a b; do
    printf '%-8s %-16s %s\n' "$t" "$(awk -v t="$t" '$1 == t {print $2}' "$WORK/names")" "$((b - a))"
  done
  echo
  python3 - "$OUT/timehist.txt" "$TID" <<'PY'
import re, sys
rows = []
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"\s*([\d.]+)\s+\[(\d+)\]\s+(.+?)\[(\d+)(?:/\d+)?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
    if m:
        rows.append((float(m.group(1)), int(m.group(2)), m.group(3).strip(), int(m.group(4)),
                     float(m.group(5)), float(m.group(6)), float(m.group(7))))
tid = int(sys.argv[2])
mine = [r for r in rows if r[3] == tid]
if not mine:
    print("the receiving thread never switched while recording (or perf sched timehist failed)")
    sys.exit(0)
span = mine[-1][0] - mine[0][0] or 1e-9
run = sum(r[6] for r in mine)
delay = [r[5] for r in mine]
wait = [r[4] for r in mine]
print("== the receiving thread in perf sched timehist (times in ms)")
print(f"switched out {len(mine)} times in {span:.2f} s; on CPU {run:.0f} ms ({100 * run / 1000 / span:.0f}%)")
for name, v in (("scheduling delay (runnable, waiting for a CPU: preempted)", delay),
                ("wait (blocked: nothing to receive, or a lock)", wait)):
    big = [x for x in v if x >= 1.0]
    print(f"{name}: total {sum(v):.1f}, max {max(v):.2f}, {len(big)} of >= 1 ms totalling {sum(big):.1f}")
print()
print("longest scheduling delays, and what ran on that CPU meanwhile (task: ms):")
for r in sorted(mine, key=lambda r: -r[5])[:10]:
    end, cpu, d = r[0] - r[6] / 1000, r[1], r[5] / 1000
    others = {}
    for o in rows:
        if o[1] == cpu and end - d < o[0] <= end + 1e-6 and o[3] != tid:
            name = f"{o[2]}[{o[3]}]" if o[2].startswith(("tallyd", "rocksdb")) else o[2]
            others[name] = others.get(name, 0) + o[6]
    top = sorted(others.items(), key=lambda kv: -kv[1])[:4]
    print(f"  {r[5]:7.2f} ms on CPU {cpu} before {end:.6f}: " + ", ".join(f"{n} {t:.2f}" for n, t in top))
print()
print("CPU time of every task while recording (ms, top 12):")
total = {}
for r in rows:
    total[r[2]] = total.get(r[2], 0) + r[6]
for n, t in sorted(total.items(), key=lambda kv: -kv[1])[:12]:
    print(f"  {n:32s} {t:9.1f}")
PY
  echo
  echo "== why the receiving thread left its CPU (sched_switch: prev_state R = preempted,"
  echo "   S = asleep; the kernel and user frames below schedule(); all in switch-stacks.txt)"
  python3 - "$OUT/switch-stacks.txt" <<'PY'
import re, sys
counts, state, frames = {}, None, []
def done():
    if state is not None:
        sig = " <- ".join(frames[:6]) or "?"
        counts[(state, sig)] = counts.get((state, sig), 0) + 1
for line in open(sys.argv[1], errors="replace"):
    if "sched:sched_switch" in line:
        done()
        m = re.search(r"prev_state=(\S+)", line)
        state, frames = (m.group(1) if m else "?"), []
    elif "sched:" in line:
        done()
        state, frames = None, []
    elif state is not None and line.strip():
        sym = line.split(None, 1)[1].strip() if len(line.split(None, 1)) > 1 else "?"
        if sym not in ("__schedule", "schedule", "[unknown]") and not sym.startswith("preempt_schedule"):
            frames.append(sym)
        elif sym.startswith("preempt_schedule"):
            frames.append(sym)
done()
total = sum(counts.values()) or 1
for (st, sig), n in sorted(counts.items(), key=lambda kv: -kv[1])[:12]:
    print(f"{n:7d} {100.0 * n / total:5.1f}%  {st:3s} {sig}")
PY
} >"$OUT/report.txt"
cat "$OUT/report.txt"
