#!/usr/bin/env bash
# The sample county walked through the whole system as make run starts it (tests/e2e/walk_test.py).
exec /usr/bin/python3 "$(dirname "$0")/walk_test.py"
