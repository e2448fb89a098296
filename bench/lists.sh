#!/usr/bin/env bash
# bench/lists — the command platform's lists at 1,000,000 cases (issue 13):
#   (1) build/bench/lists fills intake's list databases with N cases and N/2
#       open limits (a county's spread), then times each query in process;
#   (2) intake is started on that store and the same kinds of query are asked
#       over HTTP (GET /v1/cases, /v1/obligations, an operator token): curl's
#       time_total, p50 / p99 of 100 requests each. The need: under 50 ms.
# Usage: bench/lists.sh [BUILD] [N]
set -euo pipefail
BUILD=${1:-build}
N=${2:-1000000}
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/casebus-bench-lists.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/casebus.conf" <<CONF
[intake]
data_dir = $dir/intake
map_size = 16G
http_listen = 127.0.0.1:$port
zmq_bind = ipc://$dir/intake.cmd
bus_bind = ipc://$dir/intake.bus
log_level = warn
CONF
"$top/$BUILD/bench/lists" fill "$dir/intake" "$N"
echo "store: $(du -sh "$dir/intake" | cut -f1) for $N cases"
echo "-- in process (common/caselist.c on a read transaction)"
"$top/$BUILD/bench/lists" query "$dir/intake"
token=$("$top/$BUILD/bin/casebus-intake" token create --config "$dir/casebus.conf" --org wy-zhzf --operator 2>/dev/null)
"$top/$BUILD/bin/casebus-intake" --config "$dir/casebus.conf" 2>"$dir/intake.log" & pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "-- over HTTP (curl time_total, 100 requests each; need: under 50 ms)"
printf '%-48s %6s %8s %8s\n' "GET" "rows" "p50 ms" "p99 ms"
for q in "/v1/cases" "/v1/cases?township=330723105000&level=red" "/v1/cases?overdue=true" \
         "/v1/cases?state=manual_dispatch&limit=200" "/v1/cases?matter=330217007&level=escalated" \
         "/v1/obligations?state=overdue" "/v1/obligations?state=due_soon&responsible=town-07"; do
    rows=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port$q" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
    for _ in $(seq 100); do
        curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "http://127.0.0.1:$port$q"
    done | sort -n | awk -v q="$q" -v rows="$rows" '{t[NR]=$1*1000} END {printf "%-48s %6s %8.2f %8.2f\n", q, rows, t[int(NR*0.5)], t[int(NR*0.99)]}'
done
