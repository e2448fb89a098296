#!/bin/sh
# Runs a command N times in a row while stress-ng keeps both cores busy
# (stress-ng --cpu 2), to flush out timing assumptions. Exits non-zero if any
# run failed. Usage: tests/loaded.sh N COMMAND [ARG...]
set -u
n=$1
shift
command -v stress-ng >/dev/null 2>&1 || { echo "loaded: stress-ng is not installed" >&2; exit 2; }
stress-ng --cpu 2 --quiet &
load=$!
trap 'kill "$load" 2>/dev/null; wait "$load" 2>/dev/null' EXIT INT TERM
failed=0
i=1
while [ "$i" -le "$n" ]; do
    echo "== loaded run $i of $n (stress-ng --cpu 2)"
    if "$@"; then echo "== loaded run $i: passed"; else echo "== loaded run $i: FAILED"; failed=$((failed + 1)); fi
    i=$((i + 1))
done
echo "== $((n - failed)) of $n loaded runs passed"
[ "$failed" = 0 ]
