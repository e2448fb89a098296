#!/bin/sh
# Installs the npm packages the tests use to judge casebus's output, exactly as
# package-lock.json pins them (npm ci), and only when that file has changed
# since the last install.
set -eu
cd "$(dirname "$0")/.."
stamp=node_modules/.casebus-lock
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "npm: npm ci (package-lock.json)"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
