# shellcheck shell=bash
# bench/lib.sh — sourced by each bench/*.sh once BUILD is set: the tree (top),
# the build (B), the pids to stop at exit (pids, with BENCH_SIGNAL, TERM unless
# set; a script's own bench_stop, if it defines one, runs first), and helpers.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B="$top/$BUILD"
pids=()

bench_cleanup() {
    if declare -F bench_stop >/dev/null; then bench_stop; fi
    for p in "${pids[@]}"; do kill -"${BENCH_SIGNAL:-TERM}" "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}

# bench_dir NAME: a temporary directory (dir), removed at exit unless KEEP_TMP is set
bench_dir() {
    dir=$(mktemp -d "${TMPDIR:-/tmp}/casebus-bench-$1.XXXXXX")
    trap bench_cleanup EXIT
}

# free_port [N]: the first of N free ports in a row on 127.0.0.1 (one unless N)
free_port() { /usr/bin/python3 "$top/tests/e2e/lib/free_ports.py" "${1:-1}"; }

# wait_ready FILE SECONDS: until FILE says "ready"; exits the bench if it never does
wait_ready() {
    for _ in $(seq $(($2 * 20))); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "bench: $1 did not say ready within $2 s" >&2
    [ ! -f "$dir/feed.log" ] || cat "$dir/feed.log" >&2
    exit 1
}
ms() { date +%s%3N; }

# bench_feed PRODUCER MODE [ARGS...]: tests/feed writes PRODUCER's log (router's
# with the sample registry first) in $dir/PRODUCER and serves it at
# ipc://$dir/PRODUCER.bus; returns once it is ready. A feed already running is
# stopped first (feed_pid).
bench_feed() {
    local producer=$1 orgs=-
    shift
    [ "$producer" = router ] && orgs="$top/deploy/sample/orgs.csv"
    if [ -n "${feed_pid:-}" ]; then kill -TERM "$feed_pid"; wait "$feed_pid" 2>/dev/null || true; fi
    : > "$dir/feed.out" # the last feed's "ready" must not count for this one
    "$B/tests/feed" "$dir/$producer" "ipc://$dir/$producer.bus" "$orgs" "$@" \
        > "$dir/feed.out" 2>>"$dir/feed.log" &
    feed_pid=$!
    pids+=("$feed_pid")
    wait_ready "$dir/feed.out" 1800 # a preload of 10 M obligations takes minutes
}

# bench_conf DAEMON MAP_SIZE [LINE...]: DAEMON's section of a casebus.conf, its
# store and bus under $dir
bench_conf() {
    local daemon=$1 map=$2
    shift 2
    printf '[%s]\ndata_dir = %s\nmap_size = %s\nbus_bind = ipc://%s.bus\n' \
        "$daemon" "$dir/$daemon" "$map" "$dir/$daemon"
    printf '%s\n' "$@" "log_level = warn"
}

# wait_http PORT: until intake answers its health check (10 s at the most)
wait_http() {
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "bench: intake did not answer on port $1" >&2
    exit 1
}
