#!/usr/bin/env bash
# The alerting rules (deploy/prometheus/casebus-rules.yml): promtool checks
# them, and `promtool test rules` drives every alert with the series casebus
# exports (tests/prometheus/casebus-rules.test.yml): each fires when its
# condition holds long enough, and not before. The daemons' own output is
# checked by promtool in system.sh, notify.sh and calendar.sh.
cd "$(dirname "$0")/../.."
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; echo "# $3"; fi; }
out=$(promtool check rules deploy/prometheus/casebus-rules.yml 2>&1)
echo "$out" | grep -q "SUCCESS: 7 rules found"
ok $? "promtool check rules: the 7 alerting rules are valid" "$out"
out=$(cd tests/prometheus && promtool test rules casebus-rules.test.yml 2>&1)
echo "$out" | grep -q "SUCCESS"
ok $? "promtool test rules: daemon down, consumer stalled and lagging, dead letters increasing, next year's calendar missing and the store above 80 % fire on their series, and not before" "$(echo "$out" | head -20 | tr '\n' ' ')"
echo "1..$n"
