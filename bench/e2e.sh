#!/usr/bin/env bash
# bench/e2e — the whole system as `make run` starts it (deploy/run.sh in a
# temporary VAR_DIR: supervisor, four daemons, CURVE, the sample county), under
# an open-loop load (bench/e2e_gen: POST /v1/cases at a fixed rate, kept-alive
# connections). Each case is reported by wy-scjg for a matter 履坦镇 (wy-lt) is
# competent for, so router emits transfer_required to wy-scjg, which notify
# delivers to a loopback receiver (bench/webhook_sink --log) and which a
# `casebus tail --json` follower prints. Latency is from the moment a request
# was due to the moment its case arrived at the receiver and on the tail; a
# case that never arrived within DRAIN seconds after the load is counted as
# missing, not dropped from the figures.
# Usage: bench/e2e.sh [BUILD] [SECONDS] [RATE...]   (default: 30 s at 200/s and 1000/s)
set -euo pipefail
BUILD=${1:-build}
SECS=${2:-30}
shift 2 2>/dev/null || shift $#
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(200 1000)
DRAIN=${DRAIN:-20}
. "$(dirname "$0")/lib.sh"
bench_dir e2e
sup=
bench_stop() { if [ -n "$sup" ]; then kill -TERM -- "-$sup" 2>/dev/null || true; fi; }
port=$(free_port 2) wport=$((port + 1))
mport=$(free_port 5) # metrics 1-4, the listener
cd "$top"
VAR_DIR=$dir HTTP_PORT=$port METRICS_PORT=$mport LISTEN_PORT=$((mport + 4)) setsid bash deploy/run.sh "$BUILD" \
    > "$dir/run.out" 2>&1 &
sup=$!
for _ in $(seq 300); do grep -q "Ctrl-C stops everything" "$dir/run.out" && break; sleep 0.1; done
grep -q "Ctrl-C stops everything" "$dir/run.out" || { echo "bench/e2e: the system did not start" >&2; cat "$dir/run.out" >&2; exit 1; }
export CASEBUS_CONFIG=$dir/casebus.conf
cli() { "$B/bin/casebus" "$@"; }
token=$(cat "$dir/token")
"$B/bench/webhook_sink" --log "$dir/arrivals" "$wport" > "$dir/sink.out" & pids+=($!)
wait_ready "$dir/sink.out" 5
cli subscribe --org wy-scjg --url "http://127.0.0.1:$wport/casebus" --events transfer_required > "$dir/sub.out"
# the follower's lines stamped as they arrive ($! is the follower itself)
"$B/bin/casebus" tail --json --producer router --type transfer_required --from now 2> "$dir/tail.err" \
    > >(/usr/bin/python3 -u -c '
import re, sys, time
subj = re.compile(rb"\"subject\":\"([^\"]*)\"")
out = open(sys.argv[1], "w", buffering=1)
for line in sys.stdin.buffer:
    m = subj.search(line)
    out.write("%d %s\n" % (time.time_ns() // 1000, m.group(1).decode() if m else "-"))
' "$dir/tailed") &
pids+=($!)
sleep 1
at=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
printf '{"source":"patrol","matter_code":"330217001","township_code":"330723101000","discovered_at":"%s","discovered_by":"wy-scjg","description":"巡查发现沿街店铺占道经营，影响通行，现场已拍照取证，需要依法处理。","location":{"address":"履坦镇履坦街1号","latitude":28.9,"longitude":119.8}}' "$at" > "$dir/body.json"
# a warm-up case through the whole path
"$B/bench/e2e_gen" "http://127.0.0.1:$port/v1/cases" "$token" "$dir/body.json" 10 1 "$dir/warm.sent" > /dev/null
sleep 2

arrived() { # arrived FILE: how many of this run's acknowledged cases FILE has seen
    awk 'NR==FNR {if ($4 == 201) d[$1]; next} ($2 in d) {s[$2]} END {print length(s)}' "$dir/sent" "$1"
}
report() { # report RATE: the figures of the last run
    /usr/bin/python3 - "$dir/sent" "$dir/arrivals" "$dir/tailed" "$1" "$SECS" <<'PY'
import sys
sent_f, arr_f, tail_f, rate, secs = sys.argv[1:6]
due = {}
answer_lat = []
for line in open(sent_f):
    cid, d, a, st = line.split()
    if st == "201" and cid != "-":
        due[cid] = int(d)
        answer_lat.append((int(a) - int(d)) / 1000)
def arrivals(path):
    seen = {}
    for line in open(path):
        t, cid = line.split()
        if cid in due and cid not in seen:
            seen[cid] = (int(t) - due[cid]) / 1000
    return seen
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else float("nan")
hook, tail = arrivals(arr_f), arrivals(tail_f)
print(f"  {rate}/s for {secs} s: {len(due)} cases acknowledged (201)")
for name, xs in (("POST answered (201)", answer_lat), ("POST -> transfer_required webhook", list(hook.values())),
                 ("POST -> transfer_required on tail --json", list(tail.values()))):
    print(f"    {name:42s} p50 {pct(xs,50):8.1f} ms  p99 {pct(xs,99):8.1f} ms  max {max(xs) if xs else float('nan'):8.1f} ms")
print(f"    delivered to the webhook: {len(hook)}/{len(due)} ({100*len(hook)/max(1,len(due)):.1f}%), "
      f"on the tail: {len(tail)}/{len(due)} ({100*len(tail)/max(1,len(due)):.1f}%)")
PY
}

printf 'bench/e2e  (2 cores; the system as make run starts it, CURVE on, every answer and delivery fsync'\''d;\n'
printf '            open loop, kept-alive connections; need (issue 17): webhook p99 < 20 ms, tail p99 < 50 ms, 100%% delivered)\n'
for rate in "${RATES[@]}"; do
    "$B/bench/e2e_gen" "http://127.0.0.1:$port/v1/cases" "$token" "$dir/body.json" "$rate" "$SECS" "$dir/sent" \
        > "$dir/gen.out"
    want=$(awk '$4 == 201' "$dir/sent" | wc -l)
    for _ in $(seq $((DRAIN * 10))); do
        [ "$(arrived "$dir/arrivals")" -ge "$want" ] && [ "$(arrived "$dir/tailed")" -ge "$want" ] && break
        sleep 0.1
    done
    report "$rate"
    echo "    generator: $(cat "$dir/gen.out")"
done
