#!/usr/bin/env bash
# bench/intake — durable commands per second and latency at intake's two doors,
# beside Redis 7 with appendfsync always taking XADD of the same payload.
#   HTTP: wrk, keep-alive, POST /v1/cases (every answer 201 after fsync)
#   ZeroMQ: build/bench/intake_zmq, protobuf case reports, 64 in flight
#   baseline: redis-benchmark XADD against redis-server --appendfsync always
# Usage: bench/intake.sh [BUILD] [SECONDS] [CONNECTIONS]
set -euo pipefail
BUILD=${1:-build}
SECS=${2:-15}
CONNS=${3:-64}
BENCH_SIGNAL=KILL # a store of a million cases need not be closed cleanly
. "$(dirname "$0")/lib.sh"
bench_dir intake
port=$(free_port 2) rport=$((port + 1))
bench_conf intake 8G "http_listen = 127.0.0.1:$port" "zmq_bind = ipc://$dir/intake.cmd" \
    "pull = router ipc://$dir/router.bus" > "$dir/casebus.conf"
bench_feed router registry
token=$("$top/$BUILD/bin/casebus-intake" token create --config "$dir/casebus.conf" --org wy-scjg 2>/dev/null)
"$top/$BUILD/bin/casebus-intake" --config "$dir/casebus.conf" 2>"$dir/intake.log" & pids+=($!)
ipid=$!
# intake's CPU time so far (all its threads), in microseconds
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000000 / hz}' "/proc/${1:-$ipid}/stat"; }
wait_http "$port"
sleep 1 # registry replication

body='{"source":"patrol","matter_code":"330217001","township_code":"330723101000","discovered_at":"DISCOVERED","discovered_by":"wy-scjg","description":"巡查发现沿街店铺占道经营，影响通行，现场已拍照取证，需要依法处理。","location":{"address":"履坦镇履坦街1号","latitude":28.9,"longitude":119.8}}'
body=${body/DISCOVERED/$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)}
cat > "$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
local bad = 0
response = function(status, headers, body) if status ~= 201 then bad = bad + 1 end end
done = function(summary, latency, requests) io.write(string.format("non201=%d\n", bad)) end
LUA
c0=$(cpu_us)
http_out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$dir/post.lua" "http://127.0.0.1:$port/v1/cases")
http_rps=$(echo "$http_out" | awk '/Requests\/sec/ {print $2}')
http_p50=$(echo "$http_out" | awk '$1=="50%" {print $2}')
http_p99=$(echo "$http_out" | awk '$1=="99%" {print $2}')
http_bad=$(echo "$http_out" | awk -F= '/non201/ {print $2}')
http_n=$(echo "$http_out" | awk '/requests in/ {print $1}')
c1=$(cpu_us)
http_cpu=$(awk -v c=$((c1 - c0)) -v n="$http_n" 'BEGIN {printf "%.1f", c / n}')

zmq_out=$("$top/$BUILD/bench/intake_zmq" "ipc://$dir/intake.cmd" "$token" $((SECS * 4000)) "$CONNS")
c2=$(cpu_us)
zmq_cpu=$(awk -v c=$((c2 - c1)) -v n=$((SECS * 4000)) 'BEGIN {printf "%.1f", c / n}')
zmq_rps=$(echo "$zmq_out" | sed 's/.*per_s=\([0-9]*\).*/\1/')
zmq_p50=$(echo "$zmq_out" | sed 's/.*p50_ms=\([0-9.]*\).*/\1/')
zmq_p99=$(echo "$zmq_out" | sed 's/.*p99_ms=\([0-9.]*\).*/\1/')
# What `casebus tail` followers cost intake: wrk alternately without and with
# two `casebus tail --json` followers on intake's log (ROUNDS of each).
printf '[events]\ndivision_code = 330723\n' >> "$dir/casebus.conf"
fsecs=$(( SECS / 3 > 3 ? SECS / 3 : 3 ))
follow_rps() { wrk -t2 -c"$CONNS" -d"${fsecs}s" -s "$dir/post.lua" "http://127.0.0.1:$port/v1/cases" | awk '/Requests\/sec/ {print $2}'; }
without=() with=() followed=0
followers_on() {
    fpids=()
    for f in 1 2; do
        "$top/$BUILD/bin/casebus" --config "$dir/casebus.conf" tail --json --producer intake --from now \
            > "$dir/follower$f.out" 2>/dev/null & fpids+=($!)
    done
    sleep 0.5
}
followers_off() {
    sleep 1
    kill -TERM "${fpids[@]}"; wait "${fpids[@]}" 2>/dev/null || true
    followed=$((followed + $(wc -l < "$dir/follower1.out")))
}
# ABBA order: intake slows a little as its store grows, which must not count
# against whichever is always measured second
for r in $(seq "${ROUNDS:-4}"); do
    if [ $((r % 2)) = 1 ]; then
        without+=("$(follow_rps)")
        followers_on; with+=("$(follow_rps)"); followers_off
    else
        followers_on; with+=("$(follow_rps)"); followers_off
        without+=("$(follow_rps)")
    fi
done
sum() { printf '%s\n' "$@" | awk '{s += $1} END {print s}'; }
cost=$(awk -v a="$(sum "${without[@]}")" -v b="$(sum "${with[@]}")" 'BEGIN {printf "%.1f", (a - b) * 100 / a}')
events=$(curl -s "127.0.0.1:$port/healthz" | sed 's/.*"log_head":\([0-9]*\).*/\1/')
kill -TERM "${pids[1]}"; wait "${pids[1]}" || true

mkdir -p "$dir/redis"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
    --dir "$dir/redis" --daemonize no --loglevel warning >"$dir/redis.log" 2>&1 & pids+=($!)
rpid=$!
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$rport" ping >/dev/null 2>&1 || { echo "bench/intake: redis-server did not start:"; cat "$dir/redis.log"; exit 1; }
c3=$(cpu_us "$rpid")
redis_out=$(timeout 120 redis-benchmark -p "$rport" -c "$CONNS" -n $((SECS * 10000)) --precision 2 \
    XADD casebus '*' body "$body" 2>/dev/null | tr '\r' '\n')
redis_rps=$(echo "$redis_out" | awk '/throughput summary/ {print $3}')
redis_lat=$(echo "$redis_out" | awk '/avg +min +p50/ {getline; print $3, $5}')
redis_p50=${redis_lat% *}; redis_p99=${redis_lat#* }
redis_cpu=$(awk -v c=$(($(cpu_us "$rpid") - c3)) -v n=$((SECS * 10000)) 'BEGIN {printf "%.1f", c / n}')
redis_fsync=$(redis-cli -p "$rport" config get appendfsync | tail -1)

printf 'bench/intake  (%s connections / in flight, %ss each, payload %s bytes, 2 cores, loopback)\n' \
    "$CONNS" "$SECS" "${#body}"
printf '  %-52s %10s %10s %10s\n' "" "per second" "p50" "p99"
printf '  %-52s %10.0f %10s %10s\n' "intake HTTP POST /v1/cases (wrk, keep-alive, 201)" "$http_rps" "$http_p50" "$http_p99"
printf '  %-52s %10.0f %9sms %9sms\n' "intake ZeroMQ report_case (protobuf, 201)" "$zmq_rps" "$zmq_p50" "$zmq_p99"
printf '  %-52s %10.0f %9sms %9sms\n' "baseline: Redis 7 XADD, appendfsync $redis_fsync" "$redis_rps" "$redis_p50" "$redis_p99"
printf "  intake's CPU time (all threads) per command: HTTP %s µs, ZeroMQ %s µs\n" "$http_cpu" "$zmq_cpu"
printf "  redis-server's CPU time per XADD: %s µs\n" "$redis_cpu"
printf '  every intake answer waited for fsync; answers other than 201: http=%s; zmq: %s\n' "$http_bad" "$zmq_out"
printf '  events in intake log afterwards: %s\n' "$events"
printf '  %-52s %10s\n' "two tail --json followers: intake's cost (need < 5%)" "$cost%"
printf '    HTTP per second without: %s; with: %s (alternating, %ss each); a follower printed %s events\n' \
    "${without[*]}" "${with[*]}" "$fsecs" "$followed"
