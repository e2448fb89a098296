#!/usr/bin/env bash
# The command platform end to end: dispatch, return review, reassignment, transfer_open,
# dispute outcomes in the case view, 督办 answered (tests/e2e/command_test.py).
exec /usr/bin/python3 "$(dirname "$0")/command_test.py"
