#!/usr/bin/env bash
# Every duty to inform delivered: assistance, feedback, approvals, decisions and referral steps at each addressee's webhook (tests/e2e/inform_test.py).
exec /usr/bin/python3 "$(dirname "$0")/inform_test.py"
