#!/usr/bin/env bash
# Next year's calendar across the 2026/2027 boundary, under libfaketime: provisional counting, the alarm, imports (tests/e2e/calendar_test.py).
exec /usr/bin/python3 "$(dirname "$0")/calendar_test.py"
