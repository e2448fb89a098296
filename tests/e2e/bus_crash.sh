#!/usr/bin/env bash
# The bus survives SIGKILL and never stalls after one. A producer appends events
# at a steady pace while a consumer applies them. The producer is killed at least
# 200 times and the consumer at least 50, each restarted at once, at random
# moments and, on purpose, in the windows where a lost request could hang the
# consumer (busnode's DIE: idle with a parked fetch, between commit and answer,
# while answering, while the consumer's batch waits for its group commit; the
# consumer half-way through a batch and right after its commit). After every
# restart the consumer's cursor must pass the producer's head within 2 s; at the
# end every event must have been applied exactly once, in order (busnode check).
set -u
# The real clock even under make test-dates: nothing here depends on the date,
# and libfaketime 0.9.10 shares one semaphore across a process tree: with
# hundreds of processes killed and started, a new one now and then failed to
# start on it ("ft_shm_init(), sem_open failed"), which read as a stalled bus.
if [[ "${LD_PRELOAD:-}" == *faketime* ]]; then
    LD_PRELOAD=$(printf '%s' "$LD_PRELOAD" | tr ' :' '\n\n' | grep -v faketime | paste -sd: -)
    [ -n "$LD_PRELOAD" ] || unset LD_PRELOAD
    unset FAKETIME FAKETIME_SHARED FAKETIME_NO_CACHE
fi
BUILD=${BUILD:-build}
node="$BUILD/tests/busnode"
total=${BUS_CRASH_TOTAL:-100000}
pkills_want=${BUS_CRASH_PRODUCER_KILLS:-200}
ckills_want=${BUS_CRASH_CONSUMER_KILLS:-50}
rate=50            # producer commits per second during the kills (1–20 events each)
budget_ms=2000     # a restart must be caught up within this
dir=$(mktemp -d "${TMPDIR:-/tmp}/casebus-buscrash.XXXXXX")
ep="ipc://$dir/producer.bus"
ppid_=0 cpid=0
cleanup() {
    for p in $ppid_ $cpid; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ -n "${KEEP_TMP:-}" ]; then echo "# kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
echo "# bus crash test in $dir, $total events, $pkills_want producer and $ckills_want consumer kills"

start_producer() { # [RATE] [DIE]
    "$node" produce "$dir/p" "$ep" "$total" "${1:-$rate}" "${2:-}" 2>>"$dir/producer.log" &
    ppid_=$!
    echo "$ppid_" > "$dir/producer.pid"
}
start_consumer() { "$node" consume "$dir/c" "$ep" "$total" "${1:-}" 2>>"$dir/consumer.log" & cpid=$!; }
pause() { sleep "0.$(printf '%02d' $(( (RANDOM % 30) + 5 )))"; } # 0.05–0.34 s
alive() { kill -0 "$1" 2>/dev/null; }
# Waits up to 5 s for a process that was told to die by itself; kills it if it
# did not (the window never came), so that the test goes on. 0 when it died alone.
await_death() {
    local pid=$1 i
    for i in $(seq 500); do alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }; sleep 0.01; done
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return 1
}

worst=0 slow=0 measured=0 missed=0
caught_up() { # after a restart: the consumer passes the producer's head within budget
    local out ms rc
    out=$("$node" caught "$dir/p" "$dir/c" 10000)
    rc=$?
    ms=${out%% *}
    case "$ms" in ''|*[!0-9]*) ms=99999 ;; esac
    measured=$((measured + 1))
    [ "$ms" -gt "$worst" ] && worst=$ms
    if [ "$ms" -gt "$budget_ms" ] || [ "$rc" != 0 ]; then
        slow=$((slow + 1))
        echo "# slow recovery after $1: $out (ms head cursor)"
        alive "$ppid_" || echo "#   the producer ($ppid_) is not running"
        alive "$cpid" || echo "#   the consumer ($cpid) is not running"
        tail -n 8 "$dir/producer.log" | sed 's/^/#   producer: /'
        tail -n 8 "$dir/consumer.log" | sed 's/^/#   consumer: /'
    fi
}

start_producer
start_consumer
sleep 0.3
pk=0 ck=0
declare -A windows=()
pwin=(random idle commit answer pending)
cwin=(random apply committed)
while [ "$pk" -lt "$pkills_want" ] || [ "$ck" -lt "$ckills_want" ]; do
    pause
    # Four producer kills to each consumer kill, until each count is reached.
    if [ "$ck" -ge "$ckills_want" ] || { [ "$pk" -lt "$pkills_want" ] && [ $((RANDOM % 5)) != 0 ]; }; then
        w=${pwin[$((RANDOM % ${#pwin[@]}))]}
        n=$(( (RANDOM % 15) + 1 ))
        case $w in
        random)
            kill -9 "$ppid_" 2>/dev/null; wait "$ppid_" 2>/dev/null ;;
        pending) # the consumer kills the producer from inside its apply
            kill -9 "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
            start_consumer "pending:$(( (RANDOM % 100) + 1 )):$dir/producer.pid"
            if ! await_death "$ppid_"; then
                # It never got that far: it must not carry the order on to the
                # next producer, which it would kill while a restart is timed.
                missed=$((missed + 1))
                kill -9 "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
                start_consumer
            fi
            # else the consumer lives on: it was restarted only to carry the order
            ;;
        *)  # restart the producer with its own moment to die, and wait for it
            kill -9 "$ppid_" 2>/dev/null; wait "$ppid_" 2>/dev/null
            start_producer "$rate" "$w:$n"
            await_death "$ppid_" || missed=$((missed + 1)) ;;
        esac
        pk=$((pk + 1)); windows[producer-$w]=$(( ${windows[producer-$w]:-0} + 1 ))
        start_producer
        caught_up "producer kill $pk ($w)"
    else
        w=${cwin[$((RANDOM % ${#cwin[@]}))]}
        if [ "$w" = random ]; then
            kill -9 "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
        else
            kill -9 "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
            start_consumer "$w:$(( (RANDOM % 200) + 1 ))"
            await_death "$cpid" || missed=$((missed + 1))
        fi
        ck=$((ck + 1)); windows[consumer-$w]=$(( ${windows[consumer-$w]:-0} + 1 ))
        start_consumer
        caught_up "consumer kill $ck ($w)"
    fi
    # Both at once, now and then.
    if [ $((RANDOM % 25)) = 0 ]; then
        kill -9 "$ppid_" "$cpid" 2>/dev/null; wait "$ppid_" "$cpid" 2>/dev/null
        pk=$((pk + 1)); ck=$((ck + 1)); windows[both]=$(( ${windows[both]:-0} + 1 ))
        start_producer; start_consumer
        caught_up "both killed"
    fi
done
summary=""
for k in $(printf '%s\n' "${!windows[@]}" | sort); do summary="$summary $k=${windows[$k]}"; done
echo "# killed the producer $pk times and the consumer $ck times:$summary"
echo "# $missed self-kills never reached their window and were killed from outside"
echo "# recoveries measured: $measured, worst ${worst} ms, over ${budget_ms} ms: $slow"

# Let the producer finish at full speed, then wait (at most 5 minutes) for the
# consumer to report it has applied everything.
kill -9 "$ppid_" 2>/dev/null; wait "$ppid_" 2>/dev/null
start_producer 0
deadline=$((SECONDS + 300))
status=124
while [ $SECONDS -lt $deadline ]; do
    if ! alive "$cpid"; then wait "$cpid"; status=$?; break; fi
    sleep 0.2
done
cpid=0
result=$("$node" check "$dir/c" "$total")
check=$?
echo "# $result"
if [ "$pk" -ge "$pkills_want" ] && [ "$ck" -ge "$ckills_want" ] && [ "$missed" -le $((pk / 10)) ]; then
    echo "ok 1 - producer SIGKILLed $pk times and consumer $ck times, in every window"
else
    echo "not ok 1 - the kills did not all land ($pk producer, $ck consumer, $missed missed their window)"
fi
if [ "$slow" = 0 ] && [ "$measured" -ge "$pkills_want" ]; then
    echo "ok 2 - after each of $measured restarts the consumer passed the producer's head within ${budget_ms} ms (worst ${worst} ms)"
else
    echo "not ok 2 - $slow of $measured restarts took longer than ${budget_ms} ms (worst ${worst} ms)"
fi
resumed=$(grep -o 'bus_consumer_started .*next_seq=[0-9]*' "$dir/consumer.log" | grep -o '[0-9]*$' | tr '\n' ' ')
mid=0
for n in $resumed; do [ "$n" -gt 1 ] && [ "$n" -le "$total" ] && mid=$((mid + 1)); done
if [ "$mid" -ge 40 ]; then
    echo "ok 3 - $mid consumer restarts resumed mid-stream from a stored cursor"
else
    echo "not ok 3 - only $mid restarts resumed mid-stream; the kills missed the work"
fi
if [ "$status" = 0 ]; then
    echo "ok 4 - consumer caught up with all $total events after the crashes"
else
    echo "not ok 4 - consumer did not finish (status $status)"; tail -20 "$dir/consumer.log"
fi
if [ "$check" = 0 ]; then
    echo "ok 5 - every event applied exactly once, in order, bodies checksum as produced"
else
    echo "not ok 5 - applied events are wrong: $result"
fi
