#!/usr/bin/env bash
# The CLI as a new user tries it: unknown commands are named with a suggestion, and --help after any command shows its help and does nothing else.
set -u
BUILD=${BUILD:-build}
cli="$BUILD/bin/casebus"
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "#   $out"; fi; }

out=$("$cli" --config deploy/casebus.conf nosuch 2>&1); rc=$?
check "casebus nosuch says it is an unknown command (exit 2)" '[ $rc = 2 ] && echo "$out" | grep -q "unknown command '"'"'nosuch'"'"'"'
out=$("$cli" --config deploy/casebus.conf statsu 2>&1); rc=$?
check "a misspelt command gets the closest one suggested" '[ $rc = 2 ] && echo "$out" | grep -q "did you mean '"'"'status'"'"'"'
out=$("$cli" --config deploy/casebus.conf unsubscribe --help 2>&1); rc=$?
check "unsubscribe --help shows its help and unsubscribes nothing (no daemon is asked)" \
    '[ $rc = 0 ] && echo "$out" | grep -q "unsubscribe ID" && ! echo "$out" | grep -q "refused\|cannot"'
out=$("$cli" --config deploy/casebus.conf org import --help 2>&1); rc=$?
check "org import --help shows its help instead of opening a file named --help" \
    '[ $rc = 0 ] && echo "$out" | grep -q "org import FILE.csv" && ! echo "$out" | grep -q "cannot open"'
out=$("$cli" --config deploy/casebus.conf calendar --help 2>&1); rc=$?
check "calendar --help shows the calendar commands" '[ $rc = 0 ] && echo "$out" | grep -q "calendar import FILE"'
comp() { # words of a command line being typed -> what bash would offer
    bash -c 'source <("$0" completion bash); COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _casebus; echo "${COMPREPLY[*]}"' "$cli" "$@"
}
out="$(comp casebus subsc) | $(comp casebus tail --fr) | $(comp casebus --config x stat)"
check "casebus completion bash completes commands and each command's options from the same table" \
    '[ "$out" = "subscribe subscriptions subscription | --from | status" ]'
out=$(cd /tmp && "$cli" completion bash 2>&1 | bash -n 2>&1 && echo parsed)
check "the completion script is valid bash and needs no configuration" '[ "$out" = parsed ]'
out=$("$cli" --help 2>&1)
check "casebus --help documents the exit codes" 'echo "$out" | grep -q "exit status: 0 ok, 1 failed" && echo "$out" | grep -q "2 usage" && echo "$out" | grep -q "^3 warning"'
missing=""
for c in org catalog calendar status subscribe unsubscribe subscriptions deadletters redeliver deliveries \
    listen subscription token report case submit tail verify due keys completion; do
    "$cli" --config deploy/casebus.conf $c --help 2>&1 | grep -q "^example: " || missing="$missing $c"
done
out="missing:${missing:- none}"
check "every command's --help has a worked example and asks no daemon" '[ -z "$missing" ]'
echo "1..$n"
