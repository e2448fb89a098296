#!/bin/sh
# Runs the whole suite (tests/run.sh) with the clock moved to given instants,
# China time, through libfaketime (Debian faketime). The clock is moved by one
# fixed offset that every process of the run inherits, so the daemons, the CLI
# and the test scripts agree on the time, and it runs on from there.
# Usage: tests/dates.sh BUILD_DIR [all | NAME... | INSTANT...]
#   NAME: year-end (2026-12-31 23:58), no-calendar (2027-01-01 00:00:30), saturday
#   (2026-12-05 10:00), working-saturday (2026-02-14 10:00, 春节调休), holiday
#   (2026-10-01 10:00, 国庆节); INSTANT: 2026-12-31T23:58:00, China time
set -u
build=${1:-build}
shift
lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[ -f "$lib" ] || lib=$(find /usr/lib -name libfaketimeMT.so.1 2>/dev/null | head -n 1)
if [ -z "$lib" ] || [ ! -f "$lib" ]; then
    echo "dates: libfaketime is not installed (Debian package faketime)" >&2
    exit 2
fi
if [ $# = 0 ] || [ "$1" = all ]; then
    set -- year-end no-calendar saturday working-saturday holiday
fi
top=$(cd "$(dirname "$0")/.." && pwd)
status=0
for name in "$@"; do
    case "$name" in
    year-end) instant="2026-12-31 23:58:00" ;;
    no-calendar) instant="2027-01-01 00:00:30" ;;
    saturday) instant="2026-12-05 10:00:00" ;;
    working-saturday) instant="2026-02-14 10:00:00" ;;
    holiday) instant="2026-10-01 10:00:00" ;;
    *) instant=$(echo "$name" | tr T ' ') ;;
    esac
    target=$(TZ=Asia/Shanghai date -d "$instant" +%s) || { echo "dates: bad instant '$instant'" >&2; exit 2; }
    offset=$((target - $(date +%s)))
    echo "== make test at $instant China time (clock offset ${offset}s)"
    # The monotonic clock moves by the same offset (libfaketime's default):
    # leaving it alone breaks Python's time.sleep (an absolute clock_nanosleep).
    if env LD_PRELOAD="$lib" FAKETIME="$(printf "%+d" "$offset")" FAKETIME_NO_CACHE=1 \
        sh "$top/tests/run.sh" "$build"; then
        echo "== at $instant: passed"
    else
        echo "== at $instant: FAILED"
        status=1
    fi
done
exit $status
