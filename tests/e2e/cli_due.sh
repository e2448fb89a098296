#!/usr/bin/env bash
# `casebus due` as an operator runs it: the due instant by the shipped calendars,
# and a loud warning (exit 3) when a year has no calendar.
set -u
BUILD=${BUILD:-build}
cli="$BUILD/bin/casebus"
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "#   $out"; fi; }

out=$("$cli" --config deploy/casebus.conf due --from 2026-02-13T10:00:00+08:00 --working-days 3 2>&1); rc=$?
check "3 working days from Fri 13 Feb 2026 end at 24:00 on Wed 25 Feb (Sat 14 works, 15-23 off)" \
    '[ $rc = 0 ] && echo "$out" | grep -q "due       2026-02-26T00:00:00.000+08:00  (2026-02-25T16:00:00.000Z) = 24:00 on 2026-02-25"'
out=$("$cli" --config deploy/casebus.conf due --from 2026-02-14T10:00:00+08:00 --hours 24 2>&1); rc=$?
check "24 hours across a holiday are 24 hours" '[ $rc = 0 ] && echo "$out" | grep -q "due       2026-02-15T10:00:00.000+08:00"'
out=$("$cli" --config deploy/casebus.conf due --from 2026-12-30 --working-days 3 2>&1); rc=$?
check "a year with no notice is counted by its statutory holidays (Fri 1 Jan 2027 off: 24:00 Tue 5 Jan), marked provisional, with a loud warning and exit status 3" \
    '[ $rc = 3 ] && echo "$out" | grep -q "due       2027-01-06T00:00:00.000+08:00 .* = 24:00 on 2027-01-05  PROVISIONAL" && echo "$out" | grep -q "WARNING: no State Council notice for 2027" && echo "$out" | grep -q "2027: PROVISIONAL: statutory holidays only"'
out=$("$cli" --config deploy/casebus.conf due --from 2041-01-03T10:00:00+08:00 --working-days 1 2>&1); rc=$?
check "a year past the provisional table counts weekdays, and says so" \
    '[ $rc = 3 ] && echo "$out" | grep -q "2041: NOT LOADED: weekdays only" && echo "$out" | grep -q "counted with weekends only"'
out=$("$cli" --config deploy/casebus.conf due --from yesterday --days 3 2>&1); rc=$?
check "a bad --from is refused naming the rule" '[ $rc = 2 ] && echo "$out" | grep -q "RFC 3339"'
echo "1..$n"
