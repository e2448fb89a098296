#!/usr/bin/env bash
# bench/notify — webhook deliveries per second: notify pulls a preloaded router
# log of N events addressed to 10 organisations, each subscribed to its own
# loopback endpoint (bench/webhook_sink.c, h2o, one port each) that answers 200
# at once; then again with 1 of the 10 endpoints never answering (its
# deliveries time out and wait), counting the other 9: what they lose is
# measured against the same 9 endpoints' deliveries per second in the run where
# all 10 answer (the moment the last of them was answered). Every outcome is
# recorded (fsync'd) before the next delivery of its queue. The clock runs
# from notify's start to the receiver's last answer; the receiver counts the
# connections each endpoint saw and the most open at once.
# Usage: [ROUNDS=3] [BATCH=N] bench/notify.sh [BUILD] [N]
set -euo pipefail
BUILD=${1:-build}
N=${2:-20000}
. "$(dirname "$0")/lib.sh"
bench_dir notify
bench_stop() { for p in $(cat "$dir/notify.pids" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done; }
ports=($(/usr/bin/python3 -c '
import socket
ss=[socket.socket() for _ in range(10)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'))
bench_feed router spread "$N"
orgs=(wy-zjj wy-scjg wy-zrzy wy-sthj wy-sw wy-nync wy-jtys wy-wgl wy-wsj wy-yjgl)
per_endpoint=${PER_ENDPOINT:-32}
batch=${BATCH:-} # CloudEvents batched mode: up to BATCH events per request

run() { # run NAME HANG: a fresh notify store and receiver; HANG=1 makes wy-yjgl's endpoint dead
    local name=$1 hang=$2 conf="$dir/$1.conf" want=$N
    [ "$hang" = 1 ] && want=$((N - N / 10))
    "$B/bench/webhook_sink" --expect "$want" "${ports[@]}" > "$dir/$name.sink" &
    local sink=$!
    wait_ready "$dir/$name.sink" 10
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
        echo "per_endpoint = $per_endpoint"
        echo "allow_private_webhooks = yes"
        echo "log_level = warn"
        for i in "${!orgs[@]}"; do
            o=${orgs[$i]} path="/ok/${orgs[$i]}"
            [ "$hang" = 1 ] && [ "$o" = wy-yjgl ] && path="/hang/$o"
            echo "subscribe = $o http://127.0.0.1:${ports[$i]}$path bench-secret-0123456789 transfer_required${batch:+ batch=$batch}"
        done
    } > "$conf"
    # the receiver may not notice a client's close while a request hangs, so
    # open connections are sampled from the kernel: ESTABLISHED on the port
    # (only in the run with the hanging endpoint: the sampling takes CPU from
    # notify on 2 cores)
    local hex watcher=
    hex=$(printf '%04X' "${ports[9]}")
    [ "$hang" = 1 ] && { (m=0; while :; do
        c=$(awk -v p=":$hex" '$2 ~ p"$" && $4 == "01"' /proc/net/tcp | wc -l)
        [ "$c" -gt "$m" ] && m=$c && echo "$m" > "$dir/$name.open"
        sleep 0.2
    done) & watcher=$!; }
    local t0 t1
    t0=$(ms)
    "$B/bin/casebus-notify" --config "$conf" 2>>"$dir/notify.log" &
    local pid=$!
    echo "$pid" >> "$dir/notify.pids"
    until grep -q '^reached' "$dir/$name.sink"; do sleep 0.1; done
    t1=$(awk '/^reached/ {print $3}' "$dir/$name.sink")
    # every answer recorded too (a few group commits behind the last answer)
    local recorded=0
    for _ in $(seq 100); do
        recorded=$( ("$B/bin/casebus" --config "$conf" status --json 2>/dev/null || true) | /usr/bin/python3 -c "
import json,sys
try:
    d=json.load(sys.stdin)['notify']; print(d['deliveries'] - d['pending_deliveries'] - d['dead_letters'])
except Exception:
    print(0)")
        [ "$recorded" -ge "$want" ] && break
        sleep 0.1
    done
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    kill -TERM "$sink"; wait "$sink" 2>/dev/null || true
    [ -n "$watcher" ] && { kill "$watcher"; wait "$watcher" 2>/dev/null || true; }
    # per endpoint: the live ones' most connections, and the hanging one's peak
    local live_conns live_peak hang_peak answered
    answered=$(awk '/^answered/ {print $2 "/" $4}' "$dir/$name.sink")
    live_conns=$(awk -v h="$hang" -v p="${ports[9]}" '/^port/ && !(h==1 && $2==p) {if ($6>m) m=$6} END {print m+0}' "$dir/$name.sink")
    live_peak=$(awk -v h="$hang" -v p="${ports[9]}" '/^port/ && !(h==1 && $2==p) {if ($8>m) m=$8} END {print m+0}' "$dir/$name.sink")
    hang_peak=$(cat "$dir/$name.open" 2>/dev/null || echo 0)
    # when the 9 endpoints that hang in the other run had their last answer
    live_done=$(awk -v p="${ports[9]}" '/^port/ && $2 != p {if ($10 > m) m = $10} END {printf "%.0f\n", m}' "$dir/$name.sink")
    echo "$want $((t1 - t0)) $recorded $answered $live_conns $live_peak $hang_peak $((live_done - t0))"
}
# Rounds alternate (fast, hang, fast, hang, ...) so that the machine's drift
# falls on both; the figures are the medians, each round's rates listed too.
rounds=${ROUNDS:-3}
f_rates=() h_rates=() f9_rates=() losses=() c1=0 p1=0 c2=0 p2=0 h2=0 a1=0 r1=0
for r in $(seq "$rounds"); do
    read -r n1 t1 r1 a1 c1 p1 _ t9 < <(run "fast$r" 0)
    f_rates+=($((n1 * 1000 / t1)))
    read -r n2 t2 _ _ c2 p2 h2 _ < <(run "hang$r" 1)
    h_rates+=($((n2 * 1000 / t2)))
    # the same 9 endpoints' deliveries per second with all 10 answering
    f9_rates+=($((n2 * 1000 / t9)))
    losses+=("$(awk -v a="$t9" -v b="$t2" 'BEGIN {l = (1 - a / b) * 100; printf "%.1f", l < 0 ? 0 : l}')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
rate1=$(median "${f_rates[@]}") rate2=$(median "${h_rates[@]}") rate9=$(median "${f9_rates[@]}")
printf 'bench/notify  (2 cores, loopback receiver on h2o, every outcome fsync'\''d; N=%s events to 10 endpoints, per_endpoint %s%s; median of %s alternating rounds)\n' "$N" "$per_endpoint" "${batch:+, batches of up to $batch events}" "$rounds"
printf '  %-70s %10s\n' "deliveries per second, 10 endpoints answering at once" "$rate1/s"
printf '  %-70s %10s\n' "  each round" "${f_rates[*]}"
printf '  %-70s %10s\n' "  connections per endpoint (most of the 10) / most open at once" "$c1 / $p1"
printf '  %-70s %10s\n' "  events/requests answered, deliveries recorded (last round)" "$a1, $r1"
printf '  %-70s %10s\n' "deliveries per second to the 9 live endpoints, 1 of 10 hanging" "$rate2/s"
printf '  %-70s %10s\n' "  each round" "${h_rates[*]}"
printf '  %-70s %10s\n' "  the same 9 endpoints when all 10 answer" "$rate9/s"
printf '  %-70s %10s\n' "  each round" "${f9_rates[*]}"
printf '  %-70s %10s\n' "  lost to the hanging endpoint by those 9 (median of the rounds)" "$(printf '%s\n' "${losses[@]}" | sort -n | awk '{v[NR] = $1} END {printf "%.1f%%", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')"
printf '  %-70s %10s\n' "  each round (%)" "${losses[*]}"
printf '  %-70s %10s\n' "  live endpoints: connections (most) / most open at once" "$c2 / $p2"
printf '  %-70s %10s\n' "  hanging endpoint: most open at once (established, from /proc/net/tcp)" "$h2"
