#!/usr/bin/env bash
# Decree 310 end to end: the chain of limits, the dossier checked, no penalty while referred, the case routed back when public security declines (tests/e2e/referral_test.py).
exec /usr/bin/python3 "$(dirname "$0")/referral_test.py"
