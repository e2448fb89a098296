#!/usr/bin/env bash
# The command board in headless chromium (playwright-core): lights turn red, reconnect
# across an intake restart, login and scoping (tests/e2e/board_test.py).
exec /usr/bin/python3 "$(dirname "$0")/board_test.py"
