# shellcheck shell=bash
# bench/compare/tallyd_floors.sh: tallyd, the UDP floor (bench/floor.cc) and the HTTP floor
# (Debian's nginx answering `return 202`), each serving every run of a load (sourced by
# bench/compare.sh).

run_tallyd() {
  UDP_PORT=$(free_port) HTTP_PORT=$(free_port) SOCK=$WORK/tallyd.sock
  local transports=("udp 1" "udp 50" "unix 50" "http 1000" "http 1") t
  for t in "${transports[@]}"; do
    # shellcheck disable=SC2086  # "transport lines", split on purpose
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

# nginx: the HTTP floor for 1-line requests with the same client (tally-load, 4 keep-alive
# connections): `return 202` to every POST, one worker per vCPU, keep-alive never cut short.
# CPU and RSS are the master's plus its workers'.
run_nginx() {
  HTTP_PORT=$(free_port)
  local d=$WORK/nginx
  mkdir -p "$d/logs"
  cat >"$d/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 75s;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  server {
    listen 127.0.0.1:$HTTP_PORT;
    location / { return 202; }
  }
}
CONF
  nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" >>"$WORK/nginx.log" 2>&1 &
  PID=$!
  wait_port tcp "$HTTP_PORT"
  measure nginx http 1
  finish_system nginx-http-1
  stop_pid
}
