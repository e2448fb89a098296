#!/usr/bin/env bash
# deadline end to end: real intake, router and deadline daemons, alerts in seconds, kill -9 (tests/e2e/deadline_test.py).
exec /usr/bin/python3 "$(dirname "$0")/deadline_test.py"
