#!/usr/bin/env bash
# deploy/run.sh BUILD — what `make run` starts: the four daemons on the sample
# county (武义县), data under ./var (VAR_DIR=… to move it), HTTP on
# 127.0.0.1:8080 (HTTP_PORT=… to change it; ALLOW_PRIVATE_WEBHOOKS=yes for
# webhook receivers on this machine), under casebus-supervisor: a
# daemon that dies is restarted, always, with backoff (0.2 s doubling to 10 s,
# reset after 10 s of running; [supervisor] in the configuration), and one down
# for longer than its backoff is named on this terminal and in `casebus
# status`. Ctrl-C or SIGTERM stops all of them cleanly (SIGTERM, then SIGKILL
# after 10 s). If this script or the supervisor dies, every daemon gets SIGTERM
# (setpriv --pdeathsig), so nothing it starts outlives it. A second run reuses
# var/.
set -uo pipefail
BUILD=${1:-build}
B="$PWD/$BUILD/bin"
VAR=${VAR_DIR:-var}
# Everything under var/ is the deployment's own: the token, the operator key,
# the stores, the sockets, the logs. Only this user may read it.
umask 077
mkdir -p "$VAR"
chmod -R go= "$VAR" # and what an earlier run made before this rule
conf="$VAR/casebus.conf"
if [ ! -f "$conf" ]; then
    sed -e "s|var/|$VAR/|g" -e "s|^http_listen = .*|http_listen = 127.0.0.1:${HTTP_PORT:-8080}|" \
        deploy/casebus.conf > "$conf"
elif [ -n "${HTTP_PORT:-}" ]; then
    sed -i "s|^http_listen = .*|http_listen = 127.0.0.1:$HTTP_PORT|" "$conf"
fi
if [ -n "${METRICS_PORT:-}" ]; then # metrics_listen: METRICS_PORT, +1, +2, +3 (intake … notify)
    awk -v p="$METRICS_PORT" '/^metrics_listen = /{sub(/:[0-9]+$/, ":" p++)} {print}' "$conf" > "$conf.new" &&
        mv "$conf.new" "$conf"
fi
# The local listener (casebus listen, below) is a webhook on the loopback.
if ! grep -q '^webhook_allow = 127.0.0.1/32' "$conf"; then
    sed -i 's|^\[notify\]$|[notify]\n; make run: the local listener (var/listen.log)\nwebhook_allow = 127.0.0.1/32|' "$conf"
fi
if [ -n "${ALLOW_PRIVATE_WEBHOOKS:-}" ]; then
    sed -i "s|^allow_private_webhooks = .*|allow_private_webhooks = $ALLOW_PRIVATE_WEBHOOKS|" "$conf"
fi
export CASEBUS_CONFIG="$conf"
port=$(sed -n 's/^http_listen = .*:\([0-9]*\)$/\1/p' "$conf" | head -1)

# CURVE on every ZeroMQ socket, ipc included: the daemons' and the operator's
# key pairs under var/keys, made once (a configuration from an older run gets
# its [curve] section).
if ! grep -q '^\[curve\]' "$conf"; then
    printf '\n[curve]\nkeys_dir = %s/keys\n' "$VAR" >> "$conf"
fi
if ! "$B/casebus" keys init > "$VAR/keys.new" 2>&1; then
    cat "$VAR/keys.new" >&2
    echo "make run: cannot make the CURVE keys" >&2
    exit 1
fi
rm -f "$VAR/keys.new"

# A token for the sample county's platforms (every organisation; operator), once.
if [ ! -s "$VAR/token" ]; then
    orgs=$(tail -n +2 deploy/sample/orgs.csv | cut -d, -f1 | sed 's/^/--org /' | tr '\n' ' ')
    # shellcheck disable=SC2086
    if ! "$B/casebus-intake" token create --config "$conf" $orgs --label "sample county platforms" \
        --operator > "$VAR/token.new" 2>>"$VAR/intake.log"; then
        echo "make run: cannot create the sample token (see $VAR/intake.log)" >&2
        exit 1
    fi
    mv "$VAR/token.new" "$VAR/token"
fi

setpriv --pdeathsig TERM -- "$B/casebus-supervisor" --config "$conf" &
sup=$!
trap 'kill -TERM $sup 2>/dev/null' INT TERM

# First run: the sample county's registry and delegation catalogue.
for _ in $(seq 100); do "$B/casebus" status >/dev/null 2>&1 && break; sleep 0.1; done
if "$B/casebus" status --json 2>/dev/null | grep -q '"orgs":0,'; then
    "$B/casebus" org import deploy/sample/orgs.csv >>"$VAR/router.log" 2>&1 &&
        "$B/casebus" catalog import deploy/sample/catalog.csv --effective-from 2024-01-01 \
            >>"$VAR/router.log" 2>&1 ||
        echo "make run: importing the sample county failed (see $VAR/router.log)" >&2
fi
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# A local receiver for the command platform (the enforcement bureau), so the
# first case's deliveries are seen arriving: var/listen.log.
# One listener: a subscription an earlier run could not remove goes first.
lport=${LISTEN_PORT:-9110}
for old in $("$B/casebus" subscriptions --json 2>/dev/null |
    grep -o "\"id\":\"S[0-9]*\",\"org_id\":\"wy-zhzf\",\"channel\":\"webhook\",\"url\":\"http://127.0.0.1:$lport/\"" |
    cut -d'"' -f4); do
    "$B/casebus" unsubscribe "$old" >/dev/null 2>&1
done
"$B/casebus" listen --org wy-zhzf --port "$lport" >> "$VAR/listen.log" 2>&1 &
listener=$!
trap 'kill -TERM $listener 2>/dev/null; wait $listener 2>/dev/null; kill -TERM $sup 2>/dev/null' INT TERM

cat <<BANNER

casebus is running — sample county 武义县 (27 organisations, 40 delegated matters)

  HTTP API   http://127.0.0.1:$port            (docs/api.md)
  token      in $VAR/token (mode 0600: acts for every sample organisation, operator)
  try        curl -s -H "Authorization: Bearer \$(cat $VAR/token)" -H 'Content-Type: application/json' \\
               -d '{"source":"patrol","matter_code":"330217001","township_code":"330723101000",
                    "discovered_at":"$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)","discovered_by":"wy-scjg","description":"占道经营"}' \\
               http://127.0.0.1:$port/v1/cases
$( [ "$VAR" != var ] && printf '  config     export CASEBUS_CONFIG=%s   (so the casebus commands below find this system)\n' "$conf")
  tail       $BUILD/bin/casebus tail          (every daemon's events, live; --json, --help)
  status     $BUILD/bin/casebus status
  board      http://127.0.0.1:$port/board      (指挥大屏: paste the token from $VAR/token to sign in)
  lists      $BUILD/bin/casebus cases | overdue | due-soon
  webhooks   $VAR/listen.log    (the command platform wy-zhzf's deliveries, verified)
  metrics    http://127.0.0.1:9101/metrics … 9104 (Prometheus; /healthz too)
  logs       $VAR/{intake,router,deadline,notify}.log

Ctrl-C stops everything.
BANNER

# Until the supervisor has stopped every daemon (a signal interrupts `wait`).
while :; do
    wait $sup
    rc=$?
    kill -0 $sup 2>/dev/null || break
done
kill -TERM $listener 2>/dev/null
[ $rc = 0 ] || echo "make run: the supervisor ended with status $rc" >&2
exit $rc
