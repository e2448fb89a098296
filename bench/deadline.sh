#!/usr/bin/env bash
# bench/deadline — the deadline daemon at scale (issue: deadline):
#  (1) N obligations opened from a preloaded router log (default 10,000,000):
#      opened per second, resident memory (total and heap) at 100k, 1M and N,
#      bytes on disk per obligation;
#  (2) restart to serving with N open (kill -9, start, first status answer);
#  (3) lateness of alerts (fired minus due; received by a bus reader minus due)
#      while 1,000 fall due per second for 60 s, with N open;
#  (4) the midnight herd: 1,000,000 obligations due at one instant; the span
#      until the last fired, with intake answering POST /v1/cases at 100/s
#      meanwhile (its p50/p99).
# Usage: bench/deadline.sh [BUILD] [N]
set -euo pipefail
BUILD=${1:-build}
N=${2:-10000000}
HERD=${HERD:-1000000}
. "$(dirname "$0")/lib.sh"
bench_dir deadline
port=$(free_port)
# The emergency rule with red only (no warnings, no escalation): one alert per obligation.
sed -e '/^\[transfer_emergency\]/,/^\[/{s/^warn = .*/warn =/;s/^escalate_after = .*/escalate_after = none/}' \
    "$top/deploy/deadlines.conf" > "$dir/rules.conf"
{
    bench_conf intake 1G "http_listen = 127.0.0.1:$port" "zmq_bind = ipc://$dir/intake.cmd" \
        "pull = router ipc://$dir/orgs.bus"
    bench_conf deadline 64G "control_bind = ipc://$dir/deadline.ctl" \
        "pull = router ipc://$dir/router.bus" "rules = $dir/rules.conf" \
        "calendar_dir = $top/deploy/calendar"
} > "$dir/casebus.conf"
cli() { "$B/bin/casebus" --config "$dir/casebus.conf" "$@"; }
# status exits non-zero while a daemon of the config is down (intake, until part 4)
field() { { cli status --json 2>/dev/null || true; } | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin)['deadline']; print(eval(sys.argv[1]))" "$1" 2>/dev/null; }
rss() { awk '/^VmRSS/{r=$2} /^RssAnon/{a=$2} END{printf "%d MiB (heap %d MiB)", r/1024, a/1024}' "/proc/$1/status"; }
start_deadline() {
    "$B/bin/casebus-deadline" --config "$dir/casebus.conf" 2>>"$dir/deadline.log" &
    dl_pid=$!
    pids+=($dl_pid)
}

echo "bench/deadline  (2 cores, fsync on every commit; N=$N)"
# (1) open N
echo "  preloading $N transfers-required into the stand-in router log ..."
bench_feed router open "$N"
t0=$(ms)
start_deadline
marks=""
for m in 100000 1000000; do [ "$m" -lt "$N" ] && marks="$marks $m"; done
marks="$marks $N"
declare -A rss_at
while :; do
    open=$(field "d['obligations']['open']" || echo 0)
    for m in $marks; do
        if [ -z "${rss_at[$m]:-}" ] && [ "$open" -ge "$m" ]; then rss_at[$m]="$(rss $dl_pid) at $open open"; fi
    done
    [ "$open" -ge "$N" ] && break
    sleep 0.5
done
t1=$(ms)
open_ms=$((t1 - t0))
disk=$(du -sb "$dir/deadline" | cut -f1)
printf '  %-58s %12s\n' "obligations opened per second (router log -> deadline, fsync'd)" \
    "$((N * 1000 / open_ms))/s"
for m in $marks; do printf '  %-58s %s\n' "resident memory with $m open" "${rss_at[$m]}"; done
printf '  %-58s %12s\n' "deadline's data on disk per obligation (store + its log)" "$((disk / N)) B"

# (2) restart with N open
kill -KILL "$dl_pid"; wait "$dl_pid" 2>/dev/null || true
t0=$(ms)
start_deadline
until [ -n "$(field "d['log_head']")" ]; do sleep 0.01; done
t1=$(ms)
printf '  %-58s %12s\n' "restart to serving with $N open (kill -9, start, status)" "$((t1 - t0)) ms"
printf '  %-58s %s\n' "resident memory right after the restart" "$(rss $dl_pid)"

# (3) lateness while 1,000 fall due per second for 60 s
head=$(field "d['log_head']")
at=$(( $(ms) + 20000 ))
bench_feed router due 60000 1000 "$at"
"$B/bench/deadline_watch" "ipc://$dir/deadline.bus" $((head + 1)) 60000 > "$dir/late.txt"
echo "  alerts while 1,000/s fall due for 60 s, $N open:"
sed 's/^/    /' "$dir/late.txt"

# (4) the midnight herd, with intake answering meanwhile
tok=$("$B/bin/casebus-intake" token create --config "$dir/casebus.conf" --org wy-scjg)
"$B/tests/feed" "$dir/orgs" "ipc://$dir/orgs.bus" "$top/deploy/sample/orgs.csv" registry \
    > "$dir/orgs.out" 2>>"$dir/feed.log" &
pids+=($!)
"$B/bin/casebus-intake" --config "$dir/casebus.conf" 2>>"$dir/intake.log" &
pids+=($!)
wait_http "$port"
head=$(field "d['log_head']")
at=$(( $(ms) + 60000 + HERD / 20 ))
bench_feed router herd "$HERD" "$at"
while [ "$(ms)" -lt $((at - 3000)) ]; do sleep 0.2; done
/usr/bin/python3 "$top/bench/intake_probe.py" "$port" "$tok" 100 $(( 10 + HERD / 20000 )) > "$dir/probe.txt" &
probe=$!
"$B/bench/deadline_watch" "ipc://$dir/deadline.bus" $((head + 1)) "$HERD" > "$dir/herd.txt"
wait $probe
echo "  the midnight herd: $HERD obligations due at one instant, $N open:"
sed 's/^/    /' "$dir/herd.txt"
echo "  intake meanwhile (POST /v1/cases, 100/s, keep-alive):"
sed 's/^/    /' "$dir/probe.txt"
echo "  goals: p99 lateness < 50 ms; heap flat; restart < 1 s; herd within 60 s with intake p99 < 100 ms"
