#!/usr/bin/env bash
# intake's HTTP door held and probed: connection caps, idle timeout, TLS, media type (door_test.py).
exec /usr/bin/python3 "$(dirname "$0")/door_test.py"
