#!/usr/bin/env bash
# The deployment files: docker-compose.yml validates with Debian's
# docker-compose (no Docker engine runs here), the containers' configuration
# loads and names a section per daemon, and every systemd unit and compose
# service starts a binary the build makes.
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
n=0; fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
out=$(docker-compose -f docker-compose.yml config -q 2>&1); ok $? "docker-compose config -q accepts docker-compose.yml ${out:+($out)}"
services=$(docker-compose -f docker-compose.yml config --services 2>/dev/null | sort | tr '\n' ' ')
[ "$services" = "deadline intake keys notify router " ]; ok $? "one compose service per daemon, and the one-shot keys service ($services)"
cmds=$(docker-compose -f docker-compose.yml config 2>/dev/null | grep -o 'casebus-[a-z]*' | sort -u)
missing=""; for c in $cmds; do [ -x "$B/bin/$c" ] || missing="$missing $c"; done
[ -n "$cmds" ] && [ -z "$missing" ]; ok $? "every compose command is a built binary${missing:+ (missing:$missing)}"
"$B/bin/casebus" --config deploy/docker/casebus.conf due --from 2026-02-13T10:00:00+08:00 --working-days 3 \
    --calendar deploy/calendar >/dev/null 2>&1; ok $? "the containers' casebus.conf parses"
for s in intake router deadline notify; do grep -q "^\[$s\]" deploy/docker/casebus.conf || missing="$missing [$s]"; done
[ -z "$missing" ]; ok $? "it has a section per daemon"
bad=""; for u in deploy/systemd/casebus-*.service; do
    bin=$(sed -n 's|^ExecStart=/usr/local/bin/\([^ ]*\) .*|\1|p' "$u"); [ -x "$B/bin/$bin" ] || bad="$bad $u"
done
[ -z "$bad" ]; ok $? "each systemd unit starts a built daemon${bad:+ (bad:$bad)}"
units=$(mktemp -d)
for u in deploy/systemd/*; do sed "s|/usr/local/bin/|$PWD/$B/bin/|" "$u" > "$units/$(basename "$u")"; done
out=$(systemd-analyze verify "$units"/*.service "$units"/casebus.target 2>&1); ok $? "systemd-analyze verify accepts every unit (binaries at the built paths) ${out:+($out)}"
scores=""; worst=ok
for u in "$units"/casebus-*.service; do
    sc=$(systemd-analyze security --offline=yes "$u" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    scores="$scores $(basename "$u" .service)=$sc"
    awk -v s="${sc:-99}" 'BEGIN { exit !(s < 4.0) }' || worst=bad
done
[ "$worst" = ok ] && grep -q "^StateDirectory=casebus" "$units/casebus-notify.service" &&
    grep -q "^StartLimitBurst=" "$units/casebus-intake.service"
ok $? "systemd-analyze security scores every unit under 4.0 (casebus user, StateDirectory, no capabilities, restart limited):$scores"
grep -q "^Requires=casebus-keys.service" deploy/systemd/casebus-intake.service && grep -q "keys init" deploy/systemd/casebus-keys.service &&
    grep -q "^keys_dir = " deploy/docker/casebus.conf && grep -q "^keys_dir = " deploy/casebus.conf
ok $? "compose, systemd and make run all run behind CURVE keys (keys_dir set; the daemons need the keys unit)"
rm -rf "$units"
echo "1..$n"
exit $fail
