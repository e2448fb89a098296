#!/usr/bin/env bash
# The bus survives SIGKILL: a producer appends 100,000 events while a consumer
# applies them; the consumer is killed 6 times and the producer 2 times at random
# moments, each restarted at once. Afterwards the consumer must have applied
# every event exactly once, in order, with the right bodies (busnode check).
set -u
BUILD=${BUILD:-build}
node="$BUILD/tests/busnode"
total=${BUS_CRASH_TOTAL:-100000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/casebus-buscrash.XXXXXX")
ep="ipc://$dir/producer.bus"
ppid_=0 cpid=0
cleanup() {
    for p in $ppid_ $cpid; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
echo "# bus crash test in $dir, $total events"

start_producer() { "$node" produce "$dir/p" "$ep" "$total" 2>>"$dir/producer.log" & ppid_=$!; }
start_consumer() { "$node" consume "$dir/c" "$ep" "$total" 2>>"$dir/consumer.log" & cpid=$!; }
pause() { sleep "0.$(( (RANDOM % 8) + 2 ))"; } # 0.2–0.9 s

start_producer
start_consumer
kills=0 pkills=0
for step in c c p c c p c c; do
    pause
    if [ "$step" = p ]; then
        kill -9 "$ppid_" 2>/dev/null && pkills=$((pkills + 1)); wait "$ppid_" 2>/dev/null
        start_producer
    else
        if kill -9 "$cpid" 2>/dev/null; then kills=$((kills + 1)); fi
        wait "$cpid" 2>/dev/null
        start_consumer
    fi
done
echo "# killed the consumer $kills times and the producer $pkills times"

# Wait (at most 5 minutes) for the consumer to report it has applied everything.
deadline=$((SECONDS + 300))
status=124
while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$cpid" 2>/dev/null; then wait "$cpid"; status=$?; break; fi
    sleep 0.2
done
cpid=0
result=$("$node" check "$dir/c" "$total")
check=$?
echo "# $result"
if [ "$kills" -ge 5 ] && [ "$pkills" -ge 2 ]; then
    echo "ok 1 - consumer and producer were SIGKILLed at random moments ($kills + $pkills)"
else
    echo "not ok 1 - the kills did not all land ($kills consumer, $pkills producer)"
fi
resumed=$(grep -o 'bus_consumer_started .*next_seq=[0-9]*' "$dir/consumer.log" | grep -o '[0-9]*$' | tr '\n' ' ')
mid=0
for n in $resumed; do [ "$n" -gt 1 ] && [ "$n" -le "$total" ] && mid=$((mid + 1)); done
echo "# consumer (re)started at cursors: $resumed"
if [ "$mid" -ge 3 ]; then
    echo "ok 4 - at least 3 restarts resumed mid-stream from a stored cursor ($mid)"
else
    echo "not ok 4 - only $mid restarts resumed mid-stream; the kills missed the work"
fi
if [ "$status" = 0 ]; then
    echo "ok 2 - consumer caught up with all $total events after the crashes"
else
    echo "not ok 2 - consumer did not finish (status $status)"; tail -20 "$dir/consumer.log"
fi
if [ "$check" = 0 ]; then
    echo "ok 3 - every event applied exactly once, in order, bodies checksum as produced"
else
    echo "not ok 3 - applied events are wrong: $result"
fi
