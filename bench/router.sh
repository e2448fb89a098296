#!/usr/bin/env bash
# bench/router — (1) a 10,000-matter catalogue imported through `casebus catalog
# import` (parse, check every row against the registry, fsync, answer); (2) cases
# routed per second from intake's log to router's log, each batch fsync'd, with
# router pulling a preloaded log of N case reports.
# Usage: bench/router.sh [BUILD] [N]
set -euo pipefail
BUILD=${1:-build}
N=${2:-100000}
. "$(dirname "$0")/lib.sh"
bench_dir router
bench_conf router 8G "control_bind = ipc://$dir/router.ctl" "pull = intake ipc://$dir/intake.bus" \
    > "$dir/casebus.conf"
cli() { "$B/bin/casebus" --config "$dir/casebus.conf" "$@"; }

# 10,000 matters: the sample's holders, cycled, with distinct codes.
/usr/bin/python3 - "$top/deploy/sample/catalog.csv" "$dir/catalog10k.csv" <<'PY'
import sys
rows = open(sys.argv[1], encoding="utf-8").read().splitlines()
head, body = rows[0], rows[1:]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write(head + "\n")
    for i in range(10000):
        cols = body[i % len(body)].split(",")
        cols[0] = f"M{i:08d}"
        f.write(",".join(cols) + "\n")
PY
"$B/bin/casebus-router" --config "$dir/casebus.conf" 2>"$dir/router.log" & pids+=($!)
for _ in $(seq 100); do cli status >/dev/null 2>&1 && break; sleep 0.05; done
cli org import "$top/deploy/sample/orgs.csv" >/dev/null
t0=$(ms); out=$(cli catalog import "$dir/catalog10k.csv" --effective-from 2024-01-01); t1=$(ms)
import_ms=$((t1 - t0))
cli catalog import "$top/deploy/sample/catalog.csv" --effective-from 2024-06-01 >/dev/null

# Routing: preload N case reports, then let router pull them.
bench_feed intake cases "$N"
t0=$(ms)
while :; do
    next=$(cli status --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["router"]["upstreams"][0]["next_seq"])')
    [ "$next" -gt "$N" ] && break
    sleep 0.05
done
t1=$(ms)
route_ms=$((t1 - t0))
head=$(cli status --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["router"]["log_head"])')
printf 'bench/router  (2 cores, fsync on every commit)\n'
printf '  %-62s %10s\n' "10,000-matter catalogue import (casebus catalog import, end to end)" "${import_ms} ms"
printf '  %-62s %10s\n' "  goal" "< 1000 ms"
printf '  %-62s %10.0f /s\n' "cases routed, intake log -> router log ($N cases)" "$(awk -v n="$N" -v ms="$route_ms" 'BEGIN { print n * 1000 / ms }')"
printf '  router log afterwards: %s events (JurisdictionResolved + TransferRequired/RoutingFailed)\n' "$head"
printf '  import said: %s\n' "$out"
