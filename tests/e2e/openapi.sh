#!/usr/bin/env bash
# The OpenAPI document `casebus openapi` prints (and intake serves) passes
# Redocly's linter under its strict rule set (@redocly/cli from npm, pinned in
# package-lock.json), and says what the route table and the contract say.
set -u
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "$out" | head -60 | sed 's/^/#   /'; fi; }

out=$("$BUILD/bin/casebus" openapi 2>&1 > "$tmp/openapi.json"); rc=$?
check "casebus openapi prints a document (no configuration needed)" '[ $rc = 0 ] && [ -s "$tmp/openapi.json" ]'
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
out=$(cd "$top" && node_modules/.bin/redocly lint --config tests/e2e/redocly.yaml --format stylish "$tmp/openapi.json" 2>&1); rc=$?
check "redocly lint (recommended-strict) passes with no error and no warning" \
    '[ $rc = 0 ] && ! echo "$out" | grep -qiE "[0-9]+ warnings?|error"'
echo "# redocly: $(echo "$out" | grep -E "valid|validated" | tr '\n' ' ')"
out=$(python3 - "$tmp/openapi.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
posts = [p for p, v in d["paths"].items() if "post" in v]
report = d["components"]["schemas"]["CaseReported"]
problems = []
if len(posts) != 22:
    problems.append(f"{len(posts)} commands, not 22")
if report["required"] != ["source", "matter_code", "township_code", "discovered_at", "discovered_by", "description"]:
    problems.append(f"report required: {report['required']}")
if report["properties"]["description"]["maxLength"] != 8000 or "case_id" in report["properties"]:
    problems.append("report: the description's limit or an owned field")
if report["properties"]["urgency"] != {"type": "string", "enum": ["normal", "emergency"], "default": "normal"}:
    problems.append(f"urgency: {report['properties']['urgency']}")
ts = d["components"]["schemas"]["TransferSent"]["properties"]
if "receiver" not in ts or ts["approved_at"].get("format") != "date-time" or ts["sender"]["type"] != "string":
    problems.append(f"transfer: {sorted(ts)}")
print("; ".join(problems))
PY
)
check "22 commands, each body the .proto message with the contract's limits, names and defaults" '[ -z "$out" ]'
echo "1..$n"
