#!/usr/bin/env bash
# CURVE on every ZeroMQ socket: keys, strangers refused, producer-side masking, tcp without keys refused (tests/e2e/curve_test.py).
exec /usr/bin/python3 "$(dirname "$0")/curve_test.py"
