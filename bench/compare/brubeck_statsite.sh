# shellcheck shell=bash
# bench/compare/brubeck_statsite.sh: the two fastest C statsd daemons, built from the pinned
# sources in ../shared/peers (build.sh) and run as its README says (sourced by compare.sh).
# Each gets a fresh daemon per run; its own count (what it flushed) is checked against
# sent - kernel drops. Neither forces its buffer: both get what net.core.rmem_* allow.

# brubeck: one statsd sampler ("workers": 1, "multisock": false, "multimsg": 1: with more it
# processes buffers recvmmsg did not fill and overcounts), a carbon backend to our own
# listener (bench/compare/carbon_sink.py), which sums the apikey.* values of every flush.
BRUBECK_FREQ=${BRUBECK_FREQ:-1}
SINK_PID="" SINK_CTL="" SINK_BASE=0
sink_total() {
  python3 -c "import json, socket; s=socket.create_connection(('127.0.0.1', $SINK_CTL)); print(json.loads(s.makefile().readline())['total'])"
}
start_brubeck() {
  "$BRUBECK" --config "$WORK/brubeck.json" >>"$WORK/brubeck.log" 2>&1 &
  PID=$!
  wait_port udp "$UDP_PORT"
  SINK_BASE=$(sink_total)
  PEER_RCVBUF=$(rcvbuf_of "$UDP_PORT") PEER_FLUSH_S=$BRUBECK_FREQ
}
own_total_brubeck() { echo $(($(sink_total) - SINK_BASE)); }
run_brubeck() {
  UDP_PORT=$(free_port) SINK_CTL=$(free_port)
  local sink_port
  sink_port=$(free_port)
  python3 "$ROOT/bench/compare/carbon_sink.py" "$sink_port" "$SINK_CTL" >>"$WORK/sink.log" 2>&1 &
  SINK_PID=$!
  wait_port tcp "$SINK_CTL"
  # capacity: log2 of the hash table's size; 2^18 slots hold the 200,000 names.
  cat >"$WORK/brubeck.json" <<JSON
{"server_name": "bench", "dumpfile": "$WORK/brubeck.dump", "capacity": 18,
 "backends": [{"type": "carbon", "address": "127.0.0.1", "port": $sink_port, "frequency": $BRUBECK_FREQ}],
 "samplers": [{"type": "statsd", "address": "127.0.0.1", "port": $UDP_PORT,
               "workers": 1, "multisock": false, "multimsg": 1}]}
JSON
  local lines
  for lines in 1 50; do
    measure brubeck udp "$lines"
  done
  kill "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=""
}

# statsite: flushes every second to `cat >> FILE`; its counts are the counts.apikey.* lines.
STATSITE_RUN=0
start_statsite() {  # a fresh output file per run: a late flush of the last daemon cannot leak in
  STATSITE_RUN=$((STATSITE_RUN + 1))
  STATSITE_OUT=$WORK/statsite.$STATSITE_RUN.out
  : >"$STATSITE_OUT"
  sed "s|^stream_cmd = .*|stream_cmd = cat >> $STATSITE_OUT|" "$WORK/statsite.ini" >"$WORK/statsite.run.ini"
  "$STATSITE" -f "$WORK/statsite.run.ini" >>"$WORK/statsite.log" 2>&1 &
  PID=$!
  wait_port udp "$UDP_PORT"
  PEER_RCVBUF=$(rcvbuf_of "$UDP_PORT") PEER_FLUSH_S=1
}
own_total_statsite() {
  awk -F'|' '$1 ~ /^counts\.apikey\.[0-9]+\.(success|failure)$/ {s += $2} END {printf "%d\n", s}' \
    "$STATSITE_OUT"
}
run_statsite() {
  UDP_PORT=$(free_port)
  cat >"$WORK/statsite.ini" <<INI
[statsite]
tcp_port = 0
udp_port = $UDP_PORT
bind_address = 127.0.0.1
flush_interval = 1
log_level = WARN
pid_file = $WORK/statsite.pid
stream_cmd = cat >> (set per run)
INI
  local lines
  for lines in 1 50; do
    measure statsite udp "$lines"
  done
}
