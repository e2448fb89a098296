#!/usr/bin/env bash
# bench/tail — how fast a `casebus tail` follower reads: tests/e2e/feed.c
# writes a router log of N transfer_required events (one producer, as router
# writes them) and serves it on the bus; `casebus tail --producer router
# --from beginning --exit-at-end` replays it, as CloudEvents (--json) and as
# the human lines, into a pipe that counts them. The need: >= 50,000 events/s
# with --json. Each figure is the best of RUNS runs.
# Usage: bench/tail.sh [BUILD] [N] [RUNS]
set -euo pipefail
BUILD=${1:-build}
N=${2:-1000000}
RUNS=${3:-3}
. "$(dirname "$0")/lib.sh"
bench_dir tail
bench_feed router spread "$N"
printf '[events]\ndivision_code = 330723\n[router]\nbus_bind = ipc://%s/router.bus\n' "$dir" > "$dir/casebus.conf"
replay() { # replay ARGS...: prints "lines ms" of the best run
    local best=0 lines=0
    for _ in $(seq "$RUNS"); do
        local t0 t1 n
        t0=$(ms)
        n=$("$B/bin/casebus" --config "$dir/casebus.conf" tail --producer router --from beginning \
            --exit-at-end "$@" | wc -l)
        t1=$(ms)
        if [ "$best" = 0 ] || [ $((t1 - t0)) -lt "$best" ]; then best=$((t1 - t0)) lines=$n; fi
    done
    echo "$lines $best"
}
read -r jl jt < <(replay --json)
read -r hl ht < <(replay)
want=$((N + 1)) # the registry first, then N events
printf 'bench/tail  (2 cores, one follower on ipc, the log: %s events; best of %s runs)\n' "$want" "$RUNS"
printf '  %-60s %12s  %s\n' "tail --json (CloudEvents, one a line)" "$((jl * 1000 / jt))/s" "$jl lines in $jt ms"
printf '  %-60s %12s  %s\n' "tail (lines for people)" "$((hl * 1000 / ht))/s" "$hl lines in $ht ms"
printf '  %-60s %12s\n' "need (issue 17)" ">= 50000/s"
[ "$jl" = "$want" ] && [ "$hl" = "$want" ] || { echo "bench/tail: lines missing (want $want)" >&2; exit 1; }
