#!/usr/bin/env bash
# Bus liveness end to end: each daemon killed with -9 under a steady load, its consumers back to lag 0 within 5 s (tests/e2e/liveness_test.py).
exec /usr/bin/python3 "$(dirname "$0")/liveness_test.py"
