# shellcheck shell=bash
# bench/compare/statsd_collectd.sh: Etsy statsd and collectd's statsd plugin (sourced by
# bench/compare.sh). Each gets a fresh daemon per run, as in ../shared/reference/peers.md:
# collectd's 10-s dispatch then never falls inside a run.

start_statsd() {
  node "$PEERS/node_modules/statsd/stats.js" "$WORK/statsd.js" >>"$WORK/statsd.log" 2>&1 &
  PID=$!
  wait_port tcp "$STATSD_MGMT"
  PEER_RCVBUF=$(rcvbuf_of "$UDP_PORT") PEER_FLUSH_S=0.1
}
# Etsy statsd's own total: the sum of its apikey.* counters from the management port.
own_total_statsd() {
  python3 - "$STATSD_MGMT" <<'PY'
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
PY
}
run_statsd() {
  UDP_PORT=$(free_port) STATSD_MGMT=$(free_port)
  cat >"$WORK/statsd.js" <<JS
{port: $UDP_PORT, address: "127.0.0.1", mgmt_port: $STATSD_MGMT, mgmt_address: "127.0.0.1",
 flushInterval: 3600000, backends: [], automaticConfigReload: false}
JS
  local lines
  for lines in 1 50; do
    measure statsd udp "$lines"
  done
}

# collectd's own cumulative counts, summed over the last value of each apikey derive; its
# next dispatch (Interval 10) writes them, hence the wait.
crosscheck_total_collectd() {
  sleep 12
  python3 - "$WORK/collectd.out" <<'PY'
import re, sys
last = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"(\S*apikey\S*(?:success|failure)\S*) (\d+(?:\.\d+)?) \d+\s*$", line)
    if m:
        last[m.group(1)] = float(m.group(2))
print(int(sum(last.values())))
PY
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
  cat >"$WORK/collectd.conf" <<CONF
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
CONF
  local lines verdict
  for lines in 1 50; do
    measure collectd udp "$lines"
    # Cross-check: one more flat-out run, then collectd's own count against sent - drops.
    read -r verdict _ < <(run_once collectd udp "$lines" 0 crosscheck)
    log "  cross-check run ($verdict): collectd's own count against sent - kernel drops recorded"
  done
}
