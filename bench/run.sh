#!/bin/sh
# Runs every benchmark; each prints its figures beside its baseline.
# Usage: bench/run.sh BUILD_DIR
set -eu
build=${1:-build}
for b in "$build"/bench/*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b"
    echo
done
