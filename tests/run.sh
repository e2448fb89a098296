#!/bin/sh
# Runs every unit test (build/tests/test_*, cmocka in TAP mode) and every
# end-to-end test (tests/e2e/*.sh, which print TAP lines too), then prints one
# closing line "N passed, N failed" and exits non-zero on any failure.
# Usage: tests/run.sh BUILD_DIR [NAME-FILTER]
set -u
build=${1:-build}
filter=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build="$top/$build" ;; esac
cd "$top" # tests read deploy/sample/* relative to the repository root
out=$(mktemp -d "${TMPDIR:-/tmp}/casebus-tests.XXXXXX")
trap 'rm -rf "$out"' EXIT
passed=0 failed=0 failures=""
# A test that hangs fails instead of stalling the suite: timeout stops it and
# the processes it started (its process group) after this many seconds.
limit=${TEST_TIMEOUT:-1200}

count() { # name, log file, exit status
    p=$(grep -c '^ok ' "$2"); f=$(grep -c '^not ok ' "$2")
    if [ "$3" = 124 ]; then
        f=$((f + 1)); echo "not ok - $1 did not finish within $limit s (hung); stopped" >> "$2"
    elif [ "$3" = 137 ]; then
        f=$((f + 1)); echo "not ok - $1 was killed (SIGKILL: hung past $limit s and deaf to SIGTERM, or killed from outside)" >> "$2"
    elif [ "$3" != 0 ] && [ "$f" = 0 ]; then
        f=1; echo "not ok - $1 exited with status $3 (crash or setup failure)" >> "$2"
    fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" != 0 ]; then
        failures="$failures $1"
        echo "---- $1: failed; its output:"; cat "$2"; echo "----"
    else
        echo "$1: $p passed"
    fi
}

for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    case "$name" in *"$filter"*) ;; *) continue ;; esac
    CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "$limit" "$t" > "$out/$name.log" 2>&1
    count "$name" "$out/$name.log" $?
done
for t in "$top"/tests/e2e/*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    case "$name" in *"$filter"*) ;; *) continue ;; esac
    BUILD="${build#"$top"/}" timeout -k 10 "$limit" bash "$t" > "$out/$name.log" 2>&1
    count "$name" "$out/$name.log" $?
done
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
