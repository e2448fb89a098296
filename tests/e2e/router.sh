#!/usr/bin/env bash
# router end to end: real intake and router daemons and the casebus CLI (tests/e2e/router_test.py).
exec /usr/bin/python3 "$(dirname "$0")/router_test.py"
