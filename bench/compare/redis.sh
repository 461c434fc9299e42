# shellcheck shell=bash
# bench/compare/redis.sh: a gateway's do-it-yourself counting, HINCRBY per event, measured
# with redis-benchmark pipelined 100 deep and not pipelined (sourced by bench/compare.sh).

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
        system=redis phase=capacity cpu_s="$(ticks_to_s "$c0" "$c1")" >/dev/null
      log "  $rps ops/s, $((calls1 - calls0)) HINCRBY applied of $n"
    done
  done
  finish_system redis-tcp
  stop_pid
}
