#!/usr/bin/env bash
# make run's supervisor under 100 SIGKILLs while cases are posted: every daemon back, nothing unrouted, loud when one stays down (tests/e2e/supervisor_test.py).
exec /usr/bin/python3 "$(dirname "$0")/supervisor_test.py"
