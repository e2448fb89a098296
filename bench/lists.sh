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
. "$(dirname "$0")/lib.sh"
bench_dir lists
port=$(free_port)
bench_conf intake 16G "http_listen = 127.0.0.1:$port" "zmq_bind = ipc://$dir/intake.cmd" \
    > "$dir/casebus.conf"
"$top/$BUILD/bench/lists" fill "$dir/intake" "$N"
echo "store: $(du -sh "$dir/intake" | cut -f1) for $N cases"
echo "-- in process (common/caselist.c on a read transaction)"
"$top/$BUILD/bench/lists" query "$dir/intake"
token=$("$top/$BUILD/bin/casebus-intake" token create --config "$dir/casebus.conf" --org wy-zhzf --operator 2>/dev/null)
"$top/$BUILD/bin/casebus-intake" --config "$dir/casebus.conf" 2>"$dir/intake.log" & pids+=($!)
wait_http "$port"
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
