"""The calendar of a year with no State Council notice, end to end. The whole
system (intake, router, deadline, notify) starts with its clock moved by
libfaketime to Wed 30 Dec 2026 10:00 China time, with the shipped calendars
(2024-2026) and none for 2027:
- a case reported then gets its 3-working-day transfer limit counted on 2027's
  statutory holidays (Fri 1 Jan off): 24:00 Tue 5 Jan, marked provisional;
- deadline raises calendar_missing for 2027 (a count needed it, and it is
  December), which reaches the leading-group office's webhook, and says so in
  casebus status;
- chinese-days' holidays.ics (npm) imports as 2024-2026 unchanged;
- a JSON notice for 2027 recomputes the open limit, with the reason, and the
  alarm stops; a bad JSON file is refused naming the element."""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import System, Tap, WebhookReceiver, faketime_env, free_port, scrape, wait_for, TOP  # noqa: E402

CST = datetime.timezone(datetime.timedelta(hours=8))
START = datetime.datetime(2026, 12, 30, 10, 0, 0, tzinfo=CST)
ICS = os.path.join(TOP, "node_modules/chinese-days/dist/holidays.ics")

t = Tap()
env = faketime_env(START)
if env is None:
    t.ok(False, "libfaketime is installed (Debian package faketime)")
    t.done()
mport = free_port()
system = System("calendar", {"deadline": f"metrics_listen = 127.0.0.1:{mport}"}, env=env)
w, http, cli, tail, status = system.w, system.http, system.cli, system.tail, system.status
hook = WebhookReceiver()


def ms(text):
    return int(datetime.datetime.fromisoformat(text).timestamp() * 1000)


try:
    system.up("deadline")
    r = cli("subscribe", "--org", "wy-ldxz", "--url", hook.url("/ldxz"), "--secret", "calendar-secret-0123456789")
    assert r.returncode == 0, r.stderr
    r = cli("token", "create", "--org", "wy-scjg")
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()

    body = {"source": "patrol", "matter_code": "330217001", "township_code": "330723101000",
            "discovered_at": "2026-12-30T10:00:00+08:00", "discovered_by": "wy-scjg",
            "description": "calendar e2e", "urgency": "normal"}
    st, doc = http.post("/v1/cases", body, tok)
    t.ok(st == 201, "a case is reported on Wed 30 Dec 2026 (the daemons' clock)", doc)
    case = doc.get("case_id", "")
    opened = wait_for(lambda: [e for e in tail("--producer", "deadline", "--case", case)
                               if e["type"] == "obligation_opened"], 15) or [{}]
    ob = opened[0].get("event", {}).get("obligation", {})
    t.ok(ob.get("due_at_ms") == ms("2027-01-06T00:00:00+08:00"),
         "3 working days from Wed 30 Dec end at 24:00 Tue 5 Jan: Fri 1 Jan 2027 (元旦) is not counted", ob)
    t.ok(ob.get("calendar_provisional") is True and "2027: PROVISIONAL" in ob.get("calendar_version", ""),
         "the limit says it was counted provisionally, and why", ob.get("calendar_version"))

    missing = wait_for(lambda: [e for e in tail("--producer", "deadline", "--type", "calendar_missing")], 15) or []
    reasons = sorted(e["event"].get("reason", "") for e in missing)
    t.ok(len(missing) == 2 and all(e["event"]["year"] == 2027 and e["event"]["provisional"] for e in missing)
         and any("counted" in r for r in reasons) and any("next year" in r for r in reasons),
         "calendar_missing for 2027 is raised twice: a count needed it, and it is after 1 November", reasons)
    got = wait_for(lambda: [b for b in hook.bodies("/ldxz") if b.get("type") == "calendar_missing"], 20) or []
    t.ok(got and got[0]["event"]["year"] == 2027 and "casebus calendar import" in got[0]["event"]["action"],
         "the leading-group office's webhook receives calendar_missing with what to do", got[:1])
    st = status().get("deadline", {})
    t.ok(st.get("calendar_next_year") == {"year": 2027, "counted_by": "statutory_holidays", "provisional": True,
                                          "alarm": True} and 2027 in st.get("calendar_missing", []),
         "casebus status shows next year counted by its statutory holidays, with the alarm on", st)
    _, m, lint = scrape(mport)
    t.ok(m.get("casebus_deadline_calendar_next_year_missing") == 1 and m.get("casebus_deadline_calendar_alarms_total", 0) >= 2
         and lint[0] == 0,
         "deadline's /metrics: casebus_deadline_calendar_next_year_missing 1 (the CasebusNextYearCalendarMissing "
         "rule's series), the alarms counted, and promtool check metrics passes", (lint, {k: v for k, v in m.items() if "calendar" in k}))
    r = cli("due", "--from", "2026-12-30T10:00:00+08:00", "--working-days", "3")
    t.ok(r.returncode == 3 and "24:00 on 2027-01-05  PROVISIONAL" in r.stdout and "2027: PROVISIONAL" in r.stdout
         and "no State Council notice for 2027" in r.stderr,
         "casebus due gives the same limit, marked provisional, with a warning and exit status 3", r.stdout + r.stderr)

    r = cli("calendar", "import", ICS)
    lines = r.stdout.splitlines()
    t.ok(r.returncode == 0 and [ln.split()[1] for ln in lines] == ["2024", "2025", "2026"]
         and all("0 open obligations recomputed" in ln for ln in lines),
         "chinese-days' holidays.ics imports as 2024, 2025 and 2026, moving nothing (the same days)", r.stdout + r.stderr)

    notice = w.p("2027.json")
    with open(notice, "w") as f:
        json.dump({"version": "test notice for 2027",
                   "days": [{"date": "2027-01-01..2027-01-04", "type": "holiday", "name": "元旦"},
                            {"date": "2027-02-20", "type": "workday", "name": "春节调休"}]}, f, ensure_ascii=False)
    r = cli("calendar", "import", notice)
    t.ok(r.returncode == 0 and "calendar 2027 loaded" in r.stdout and "1 open obligations recomputed" in r.stdout,
         "a JSON notice for 2027 loads and recomputes the open limit", r.stdout + r.stderr)
    ch = wait_for(lambda: [e for e in tail("--producer", "deadline", "--case", case)
                           if e["type"] == "obligation_changed" and e["event"].get("change") == "recomputed"], 10) or [{}]
    ev = ch[0].get("event", {})
    t.ok(ev.get("obligation", {}).get("due_at_ms") == ms("2027-01-07T00:00:00+08:00")
         and ev.get("previous_due_ms") == ms("2027-01-06T00:00:00+08:00")
         and not ev.get("obligation", {}).get("calendar_provisional")
         and ev.get("reason", "").startswith("the calendar of 2027 was loaded: test notice for 2027 (imported from"),
         "with Mon 4 Jan off the limit moves to 24:00 Wed 6 Jan, no longer provisional, saying why", ev)
    st = status().get("deadline", {})
    t.ok(st.get("calendar_next_year", {}).get("counted_by") == "notice"
         and st["calendar_next_year"]["alarm"] is False and 2027 not in st.get("calendar_missing", [2027]),
         "casebus status: 2027 by its notice, the alarm off", st.get("calendar_next_year"))
    t.eq(scrape(mport)[1].get("casebus_deadline_calendar_next_year_missing"), 0.0,
         "with the notice loaded the metric goes back to 0: the alert resolves")

    bad = w.p("bad.json")
    with open(bad, "w") as f:
        json.dump([{"date": "2027-03-01", "type": "holiday"}, {"date": "2027-02-30", "type": "holiday"}], f)
    r = cli("calendar", "import", bad)
    t.ok(r.returncode == 1 and "[1].date" in r.stderr and "nothing changed" in r.stderr,
         "a bad JSON calendar is refused naming the element, and nothing changes", r.stderr)
    r = cli("calendar", "import", ICS, "--year", "2030")
    t.ok(r.returncode == 1 and "no dates in 2030" in r.stderr, "--year names a year the file lacks: refused", r.stderr)
    hook.check_cloudevents(t, "calendar")
finally:
    system.cleanup()
t.done()
