#!/usr/bin/env bash
# notify end to end: real daemons and a loopback webhook receiver (tests/e2e/notify_test.py).
exec /usr/bin/python3 "$(dirname "$0")/notify_test.py"
