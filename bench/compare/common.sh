# shellcheck shell=bash
# bench/compare/common.sh: the measuring helpers of bench/compare.sh (sourced, not run).
# Uses the caller's WORK, RUNS_FILE, LOAD, DUR, KEYS, RUNS, STEPS and PID.

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# utime+stime of $1 and of its children (nginx's workers), in clock ticks; 0 without $1.
cpu_ticks() {
  [[ -n $1 ]] || { echo 0; return; }
  local p sum=0 line f
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a f <<<"${line##*) }"  # fields from the state on: utime is [11], stime [12]
    sum=$((sum + f[11] + f[12]))
  done
  echo "$sum"
}
ticks_to_s() { python3 -c "print(($2 - $1) / $(getconf CLK_TCK))"; }
# Peak RSS (VmHWM, KiB) of $1, or of its largest child when that is larger (nginx's workers).
peak_rss_kib() {
  [[ -n $1 ]] || { echo 0; return; }
  local p best=0 v
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    ((${v:-0} > best)) && best=$v
  done
  echo "$best"
}
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

# ---------------------------------------------------------------- equal receive buffers
# Every UDP receiver gets the same buffer: net.core.rmem_max is set to RMEM for the run (a
# SO_RCVBUF request is doubled by the kernel: 8 MiB -> 16 MiB, tallyd's default) and
# net.core.rmem_default to twice that (what a socket that never asks gets, undoubled: statsite,
# statsd, collectd); both put back on exit, failure and interrupt included (restore_rmem runs
# from compare.sh's EXIT trap).
ORIG_RMEM_MAX="" ORIG_RMEM_DEFAULT=""
sysctl_set() {  # $1 name, $2 value
  if [[ $(id -u) -eq 0 ]]; then sysctl -q -w "$1=$2" >/dev/null; else sudo sysctl -q -w "$1=$2" >/dev/null; fi
}
set_rmem() {
  ORIG_RMEM_MAX=$(cat /proc/sys/net/core/rmem_max) ORIG_RMEM_DEFAULT=$(cat /proc/sys/net/core/rmem_default)
  if sysctl_set net.core.rmem_max "$1" && sysctl_set net.core.rmem_default "$(($1 * 2))"; then
    log "net.core.rmem_max $1 and rmem_default $(($1 * 2)) for the run (were $ORIG_RMEM_MAX and $ORIG_RMEM_DEFAULT)"
  else
    log "cannot set net.core.rmem_*: the peers keep the default buffers (see each rcvbuf)"
  fi
}
restore_rmem() {
  [[ -n $ORIG_RMEM_MAX ]] || return 0
  sysctl_set net.core.rmem_max "$ORIG_RMEM_MAX" || true
  sysctl_set net.core.rmem_default "$ORIG_RMEM_DEFAULT" || true
  log "net.core.rmem_max and rmem_default restored to $ORIG_RMEM_MAX and $ORIG_RMEM_DEFAULT"
  ORIG_RMEM_MAX=""
}

# Appends one run's record: the tally-load JSON ($1) plus the fields given as key=value.
record() {
  python3 - "$RUNS_FILE" "$@" <<'PY'
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
PY
}
# Adds fields to a JSON object: json_put JSON 'python assignments using j' -> JSON
json_put() {
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); $2
print(json.dumps(j))" "$1"
}

# Polls own_total_$1 until it stops changing for longer than the peer's flush interval
# ($2 s), at least two intervals after the call, and at most 30 s; prints the total.
settle_own_total() {
  local sys=$1 every=$2 start=$EPOCHREALTIME last=-1 since=$EPOCHREALTIME now v
  while :; do
    v=$("own_total_$sys")
    now=$EPOCHREALTIME
    if [[ $v != "$last" ]]; then last=$v since=$now; fi
    if python3 -c "import sys; n,s,b,e=$now,$since,$start,$every; sys.exit(0 if (n-s > e+0.6 and n-b > 2*e) or n-b > 30 else 1)"; then
      break
    fi
    sleep 0.25
  done
  echo "$last"
}

# ---------------------------------------------------------------- one run
# run_once SYSTEM TRANSPORT LINES RATE PHASE -> "lossless|loss sent_eps accepted_eps"
# tallyd, the floor and nginx serve all the runs of a load; a peer (start_<sys>) gets a fresh
# daemon for each run and is counted by own_total_<sys> when it has one (its own count,
# checked against sent - kernel drops in the table), else by the kernel's drops.
UDP_PORT="" HTTP_PORT="" CTL_PORT="" SOCK=""
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
    nginx)  # every 2xx response counts; nothing can be lost over TCP
      j=$("$LOAD" "${args[@]}" --readback none 2>>"$WORK/load.log" || true)
      c1=$(cpu_ticks "$PID")
      j=$(json_put "$j" "j.update(accepted=j['sent_events'], lost=0, accepted_eps=j['sent_eps'], counted_by='2xx responses')")
      ;;
    *)
      local d0 d1 drain rss own=""
      # run_once runs in a subshell (measure reads its output), which has no EXIT trap of
      # compare.sh's: this one stops the peer if anything below fails.
      trap stop_pid EXIT
      "start_$sys"
      read -r _ d0 < <(udp_queue "$UDP_PORT")
      c0=$(cpu_ticks "$PID")
      j=$("$LOAD" "${args[@]}" --readback none 2>>"$WORK/load.log" || true)
      drain=$(wait_drained "$UDP_PORT")
      if declare -F "own_total_$sys" >/dev/null; then
        own=$(settle_own_total "$sys" "${PEER_FLUSH_S:-1}")
      fi
      c1=$(cpu_ticks "$PID")
      rss=$(peak_rss_kib "$PID")
      read -r _ d1 < <(udp_queue "$UDP_PORT")
      j=$(json_put "$j" "d=$d1-$d0; own='$own'
a=int(own) if own else j['sent_events']-d*$lines
j.update(accepted=a, lost=j['sent_events']-a, accepted_eps=int(a/(j['send_s']+$drain)), kernel_drops=d,
  proc_udp_drops=d, active_s=j['send_s']+$drain, peak_rss_kib=$rss, rcvbuf=${PEER_RCVBUF:-None},
  counted_by='$( [[ -n $own ]] && echo "own count" || echo 'kernel drops')')")
      if [[ $phase == crosscheck ]] && declare -F "crosscheck_total_$sys" >/dev/null; then
        j=$(json_put "$j" "j.update(collectd_counted=$("crosscheck_total_$sys"))")
      fi
      stop_pid
      ;;
  esac
  record "$j" system="$sys" phase="$phase" cpu_s="$(ticks_to_s "$c0" "$c1")"
}

# measure SYSTEM TRANSPORT LINES: capacity (flat out), then the zero-loss search.
measure() {
  local sys=$1 tr=$2 lines=$3 i verdict sent acc all_ok=1 top=0 cap_acc=()
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
