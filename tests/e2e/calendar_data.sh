#!/usr/bin/env bash
# The shipped calendars, the iCalendar/JSON import and the provisional statutory table, judged by the chinese-days npm package (tests/e2e/calendar_data.js).
exec node "$(dirname "$0")/calendar_data.js"
