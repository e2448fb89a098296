#!/bin/sh
# Runs every benchmark; each prints its figures beside its baseline.
# Usage: bench/run.sh BUILD_DIR
set -eu
build=${1:-build}
here=$(dirname "$0")
echo "== bus"; "$build/bench/bus"; echo
echo "== intake"; bash "$here/intake.sh" "$build"; echo
echo "== router"; bash "$here/router.sh" "$build"; echo
echo "== import"; /usr/bin/python3 "$here/import.py" "$build" 100000; /usr/bin/python3 "$here/import.py" "$build" 45000; echo
echo "== deadline"; bash "$here/deadline.sh" "$build" "${DEADLINE_N:-1000000}"; echo
echo "== notify"; bash "$here/notify.sh" "$build"; echo
echo "== lists"; bash "$here/lists.sh" "$build" "${LISTS_N:-1000000}"; echo
echo "== tail"; bash "$here/tail.sh" "$build" "${TAIL_N:-1000000}"; echo
echo "== e2e"; bash "$here/e2e.sh" "$build" "${E2E_SECS:-30}" 200 1000; echo
