#!/usr/bin/env bash
# bench/notify — webhook deliveries per second: notify pulls a preloaded router
# log of N events addressed to 10 organisations, each subscribed to a loopback
# receiver (bench/webhook_sink.c, h2o) that answers 200 at once; then again with
# 1 of the 10 endpoints never answering (its deliveries time out and wait),
# counting the other 9. Every delivery is recorded (fsync'd) before the next
# of its queue.
# Usage: bench/notify.sh [BUILD] [N]
set -euo pipefail
BUILD=${1:-build}
N=${2:-20000}
top=$(cd "$(dirname "$0")/.." && pwd)
B="$top/$BUILD"
dir=$(mktemp -d "${TMPDIR:-/tmp}/casebus-bench-notify.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}" $(cat "$dir/notify.pids" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP_TMP:-}" ] && echo "kept $dir" || rm -rf "$dir"; }
trap cleanup EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ms() { date +%s%3N; }
"$B/bench/webhook_sink" "$port" > "$dir/sink.out" & pids+=($!)
"$B/bench/deadline_feed" "$dir/router" "ipc://$dir/router.bus" "$top/deploy/sample/orgs.csv" spread "$N" \
    > "$dir/feed.out" 2>"$dir/feed.log" & pids+=($!)
for _ in $(seq 2000); do grep -q ready "$dir/feed.out" 2>/dev/null && break; sleep 0.05; done
orgs="wy-zjj wy-scjg wy-zrzy wy-sthj wy-sw wy-nync wy-jtys wy-wgl wy-wsj wy-yjgl"

run() { # run NAME HANG: a fresh notify store; HANG=1 makes wy-yjgl's endpoint dead
    local name=$1 hang=$2 conf="$dir/$1.conf"
    {
        printf '[events]\ndivision_code = 330723\n'
        echo "[notify]"
        echo "data_dir = $dir/$name"
        echo "map_size = 8G"
        echo "bus_bind = ipc://$dir/$name.bus"
        echo "control_bind = ipc://$dir/$name.ctl"
        echo "stream_bind = ipc://$dir/$name.stream"
        echo "pull = router ipc://$dir/router.bus"
        echo "timeout_ms = 2000"
        echo "allow_private_webhooks = yes"
        echo "log_level = warn"
        for o in $orgs; do
            path="/ok/$o"; [ "$hang" = 1 ] && [ "$o" = wy-yjgl ] && path="/hang/$o"
            echo "subscribe = $o http://127.0.0.1:$port$path bench-secret-0123456789 transfer_required"
        done
    } > "$conf"
    local t0 t1 want=$N
    [ "$hang" = 1 ] && want=$((N - N / 10))
    t0=$(ms)
    "$B/bin/casebus-notify" --config "$conf" 2>>"$dir/notify.log" &
    local pid=$!
    echo "$pid" >> "$dir/notify.pids"
    while :; do
        local delivered
        delivered=$( ("$B/bin/casebus" --config "$conf" status --json 2>/dev/null || true) | /usr/bin/python3 -c "
import json,sys
try:
    d=json.load(sys.stdin)['notify']
    print(d['deliveries'] - d['pending_deliveries'] - d['dead_letters'] if d['upstreams'] and d['upstreams'][0]['next_seq'] > $N + 1 else 0)
except Exception:
    print(0)")
        [ "$delivered" -ge "$want" ] && break
        sleep 0.1
    done
    t1=$(ms)
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    echo "$want $((t1 - t0))"
}
read -r n1 t1 < <(if [ -z "${ONLY_HANG:-}" ]; then run fast 0; else echo 1 1; fi)
read -r n2 t2 < <(run hang 1)
printf 'bench/notify  (2 cores, loopback receiver on h2o, every outcome fsync'\''d; N=%s events to 10 endpoints)\n' "$N"
printf '  %-64s %10s\n' "deliveries per second, 10 endpoints answering at once" "$((n1 * 1000 / t1))/s"
printf '  %-64s %10s\n' "deliveries per second to the 9 live endpoints, 1 of 10 hanging" "$((n2 * 1000 / t2))/s"
