#!/usr/bin/env bash
# intake end to end: the real daemon over HTTP and ZeroMQ (tests/e2e/intake_test.py).
exec /usr/bin/python3 "$(dirname "$0")/intake_test.py"
