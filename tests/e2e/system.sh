#!/usr/bin/env bash
# The whole system as `make run` starts it (deploy/run.sh) in a temporary
# VAR_DIR: the banner, a case sent with `casebus submit`, seen by
# `casebus case` across the daemons, a daemon killed and restarted by the
# supervisor, and nothing left running after SIGTERM.
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
var=$(mktemp -d "${TMPDIR:-/tmp}/casebus-system.XXXXXX")
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
n=0; fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
# four free ports in a row for the daemons' metrics_listen
mport=$(/usr/bin/python3 tests/e2e/lib/free_ports.py 5)
VAR_DIR=$var HTTP_PORT=$port METRICS_PORT=$mport LISTEN_PORT=$((mport + 4)) setsid bash deploy/run.sh "$B" > "$var/run.out" 2>&1 &
sup=$!
for _ in $(seq 200); do grep -q "Ctrl-C stops everything" "$var/run.out" && break; sleep 0.1; done
grep -q "http://127.0.0.1:$port" "$var/run.out" && grep -q "token      in $var/token" "$var/run.out" &&
    [ -s "$var/token" ] && ! grep -qF "$(cat "$var/token")" "$var/run.out"
ok $? "the banner shows the API address and where the sample token is, not the token itself"
grep -q "export CASEBUS_CONFIG=$var/casebus.conf" "$var/run.out"
ok $? "with VAR_DIR the banner prints the exact CASEBUS_CONFIG line the casebus commands need"
loose=$(find "$var" -mindepth 1 \( -type d ! -perm 700 -o ! -type d ! -perm 600 \) -printf '%m %p\n' | grep -v "$var/run.out")
sockets=$(find "$var" -type s | wc -l)
[ "$(stat -c %a "$var")" = 700 ] && [ -z "$loose" ] && [ "$sockets" -ge 8 ]
ok $? "var/ is 0700, and every file in it (token, CURVE keys, stores, logs, $sockets socket files) is 0600: $loose"
cli() { CASEBUS_CONFIG="$var/casebus.conf" "$B/bin/casebus" "$@"; }
at=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
printf '{"source":"citizen_report","reporter":{"anonymous":true},"matter_code":"330217001","township_code":"330723101000","discovered_at":"%s","discovered_by":"wy-scjg","description":"沿街占道经营"}' "$at" > "$var/case.json"
out=$(cli submit "$var/case.json" 2>&1)
case_id=$(echo "$out" | sed -n 's/.*"case_id":"\([^"]*\)".*/\1/p' | head -1)
[ -n "$case_id" ]; ok $? "casebus submit reports a case with the sample token ($case_id)"
for _ in $(seq 100); do cli case "$case_id" 2>/dev/null | grep -q "obligation_opened" && break; sleep 0.1; done
view=$(cli case "$case_id" 2>&1)
echo "$view" | grep -q "competent  wy-lt" && echo "$view" | grep -q "intake#.* case_reported" &&
    echo "$view" | grep -q "router#.* transfer_required" && echo "$view" | grep -q "limit      transfer:$case_id  wy-scjg, due"
ok $? "casebus case shows the timeline across intake, router and deadline, who is competent, and the time limit"
printf '{"source":"citizen_report","reporter":{"name":"李四","phone":"13900000000"},"matter_code":"330217001","township_code":"330723101000","discovered_at":"%s","discovered_by":"wy-scjg","description":"x"}' "$at" > "$var/case2.json"
c2=$(cli submit "$var/case2.json" 2>/dev/null | sed -n 's/.*"case_id":"\([^"]*\)".*/\1/p')
sleep 0.3
masked=$(cli tail --json --from beginning --exit-at-end --case "$c2" --type case_reported)
shown=$(cli tail --json --from beginning --exit-at-end --case "$c2" --type case_reported --show-personal-data)
cli keys gen observers/hall >/dev/null
observed=$(CASEBUS_KEY="$var/keys/observers/hall.key" cli tail --json --from beginning --exit-at-end --case "$c2" --type case_reported --show-personal-data)
echo "$masked" | grep -q '"name":"\*\*\*"' && echo "$shown" | grep -q '"name":"李四"' && echo "$observed" | grep -q '"name":"\*\*\*"'
ok $? "reporters are masked on the tail; the operator's key (var/keys/operators) shows them with --show-personal-data, an observer's key gets them masked by intake"
cli_keys=$(find "$var/keys" -name '*.key' | wc -l)
grep -q "curve keys_dir=$var/keys" "$var/intake.log" && [ "$cli_keys" -ge 6 ]
ok $? "make run puts every ZeroMQ socket behind CURVE with keys it made ($cli_keys key pairs under var/keys)"
today=$(TZ=Asia/Shanghai date +%F)
later=$(TZ=Asia/Shanghai date -d "+60 days" +%F)
csv=$(cli report --from "$today" --to "$later" --csv 2>&1)
echo "$csv" | head -1 | grep -q "^group,rank,org_id,name,sent,received,fell_due,on_time,late,open_not_yet_due,on_time_share," &&
    echo "$csv" | grep -qE '^county,[0-9]+,wy-scjg,"[^"]*",0,0,0,0,0,[2-9],,'
ok $? "casebus report --csv lists the finder with its time limits open and not yet due, and no share while nothing fell due"
cli report --quarter 2026Q5 >/dev/null 2>&1; [ $? = 2 ]; ok $? "a quarter that does not exist is refused"
cli report --quarter "$(TZ=Asia/Shanghai date +%Y)Q$(( ($(TZ=Asia/Shanghai date +%-m) + 2) / 3 ))" | grep -q "Townships (handling of enforcement)"
ok $? "the report on screen ranks townships and county organisations apart"
cli report --from "$today" --to "$later" | grep -q "on-time share = limits met on time / limits that fell due"
ok $? "the report states its formula in its header"
live=$(cli token create --org wy-tx --label "桐琴镇平台" 2>&1)
case "$live" in cbt_*) st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $live" "http://127.0.0.1:$port/v1/cases/$case_id") ;; *) st=none ;; esac
[ "$st" = 404 ]; ok $? "casebus token create works while intake runs, and intake knows the new token at once (GET of a case it has no part in answered $st, not 401)"
nope=$(cli token create --org wy-nope 2>&1); rc=$?
[ $rc != 0 ] && echo "$nope" | grep -q "not in the registry"
ok $? "casebus token create refuses an organisation the registry does not have ($nope)"
get() { curl -s -w ' %{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$port/v1/cases/$case_id"; }
live_id=$(echo "$live" | cut -d_ -f2)
table=$(cli token list 2>&1)
echo "$table" | head -1 | grep -q "^TOKEN  *STATE  *CREATED  *EXPIRES" &&
    echo "$table" | grep -q "^$live_id  *live .*wy-tx  桐琴镇平台$" && ! echo "$table" | grep -qF "$live"
ok $? "casebus token list shows each token's state, organisations and label as a table, never the secret"
revoked=$(cli token revoke "$live_id" --reason "平台换代" 2>&1) && after=$(get "$live")
echo "$revoked" | grep -q "token $live_id revoked" && echo "$after" | grep -q "revoked.* 401$" &&
    cli token list --json | grep -A8 "\"$live_id\"" | grep -q '"state": "revoked"'
ok $? "casebus token revoke refuses the token from its next request on (401 revoked), and the list says revoked: $after"
cli token revoke "$live_id" >/dev/null 2>&1; again=$?; cli token revoke 0123456789abcdef >/dev/null 2>&1; none=$?
[ $again = 1 ] && [ $none = 1 ]; ok $? "revoking a revoked or unknown token is refused"
soon=$(date -d '+3 sec' +%Y-%m-%dT%H:%M:%S%:z)
short=$(cli token create --org wy-scjg --label "临时" --expires "$soon" 2>&1)
before=$(get "$short"); sleep 3.5; expired=$(get "$short")
cli token create --org wy-scjg --expires yesterday >/dev/null 2>&1; past=$?
echo "$before" | grep -q " 200$" && echo "$expired" | grep -q "expired.* 401$" && [ $past = 2 ] &&
    cli token list | grep -q "^$(echo "$short" | cut -d_ -f2)  *expired"
ok $? "a token made with --expires works until then and is refused as expired after; an expiry in the past is refused (${before##* } then ${expired##* })"
pkill -KILL -f "casebus-deadline --config $var/casebus.conf"
for _ in $(seq 50); do grep -q "deadline exited" "$var/run.out" && break; sleep 0.1; done
for _ in $(seq 50); do cli status --json 2>/dev/null | grep -q '"daemon":"deadline"' && break; sleep 0.1; done
lsub=$(sed -n 's/.* as subscription \(S[0-9]*\) .*/\1/p' "$var/listen.log" | tail -1)
cli subscription test "$lsub" >/dev/null 2>&1
cli subscription test "$lsub" >/dev/null 2>&1
for _ in $(seq 100); do [ "$(grep -c " ping " "$var/listen.log" 2>/dev/null)" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c " ping .*signature ok" "$var/listen.log")" -ge 2 ] && grep -q "listening on http://127.0.0.1:$((mport + 4))/ for wy-zhzf" "$var/listen.log" &&
    grep -q "signature ok" "$var/listen.log" && ! grep -q "SIGNATURE INVALID" "$var/listen.log"
ok $? "make run's local listener (casebus listen --org wy-zhzf) shows the command platform's deliveries, signatures verified, in var/listen.log ($(grep -c 'signature ok' "$var/listen.log" 2>/dev/null) so far)"
table=$(cli status 2>&1)
echo "$table" | grep -q "^DAEMON *STATE *LOG HEAD" && echo "$table" | grep -q "^deadline *up *[0-9]" &&
    echo "$table" | grep -q "^notify *up .*dead letters 0" && echo "$table" | grep -q "router current lag"
ok $? "casebus status prints a table: each daemon up, its log head, its upstreams' state and lag, limits and deliveries ($(echo "$table" | grep -c .) lines)"
promres=""
for i in 0 1 2 3; do
    d=$(echo intake router deadline notify | cut -d' ' -f$((i + 1)))
    curl -sf "http://127.0.0.1:$((mport + i))/metrics" > "$var/$d.prom" &&
        curl -sf "http://127.0.0.1:$((mport + i))/healthz" | grep -q "\"status\":\"ok\",\"daemon\":\"$d\"" &&
        grep -q "^casebus_store_used_bytes{daemon=\"$d\"}" "$var/$d.prom" &&
        promtool check metrics < "$var/$d.prom" > "$var/$d.promtool" 2>&1 || promres="$promres $d"
done
[ -z "$promres" ] && grep -q '^casebus_intake_answer_seconds_bucket{door="http",le="+Inf"} [1-9]' "$var/intake.prom" &&
    grep -q '^casebus_bus_apply_latency_seconds_count{producer="intake"} [1-9]' "$var/router.prom" &&
    grep -q '^casebus_deadline_obligations{state="open"}' "$var/deadline.prom" &&
    grep -q '^casebus_notify_dead_letters ' "$var/notify.prom"
ok $? "every daemon serves /metrics and /healthz on its metrics_listen, and promtool check metrics passes on each (failed:${promres:- none}; $(cat "$var"/*.promtool 2>/dev/null | head -3))"
cli status --json 2>/dev/null | grep -q '"daemon":"deadline"'; ok $? "a daemon killed with -9 is restarted by the supervisor"
kill -TERM $sup; wait $sup; rc=$?
[ $rc = 0 ]; ok $? "SIGTERM stops the whole system (status $rc)"
left=$(pgrep -f "casebus-[a-z]* --config $var/casebus.conf" | wc -l)
[ "$left" = 0 ]; ok $? "nothing it started is left running ($left)"
tok=$(cli token create --org wy-lt --label "履坦镇平台" 2>/dev/null)
case "$tok" in cbt_*) true ;; *) false ;; esac; ok $? "casebus token create makes a token for a platform while intake is stopped"
tok_id=$(echo "$tok" | cut -d_ -f2)
cli token list | grep -q "^$tok_id  *live .*wy-lt" && cli token revoke "$tok_id" | grep -q "token $tok_id revoked" &&
    cli token list --json | grep -A8 "\"$tok_id\"" | grep -q '"state": "revoked"'
ok $? "casebus token list and revoke work while intake is stopped too"
echo "1..$n"
rm -rf "$var"
exit $fail
