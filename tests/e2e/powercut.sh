#!/usr/bin/env bash
# Power cuts under load: what intake acknowledged survives (tests/e2e/powercut_test.py).
exec /usr/bin/python3 "$(dirname "$0")/powercut_test.py"
