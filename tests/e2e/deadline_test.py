"""deadline end to end: starts the real intake, router and deadline daemons in a
temporary directory, reports cases discovered in the past so that limits fall
due within seconds (DESIGN.md "Time": no fake clock), and reads deadline's
events with `casebus tail --json`. The rules file is the shipped one with the
emergency rule's points tuned to seconds, as a county may tune it."""
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import System, Tap, binary, import_sample_county, openapi_document, openapi_judge, wait_for, TOP  # noqa: E402

t = Tap()
exchanges = []  # judged against the OpenAPI document at the end
system = System("deadline", rules="deadlines.conf", daemons=("intake", "router", "deadline"),
                record=exchanges)
w, http, cli, token, tail = system.w, system.http, system.cli, system.offline_token, system.tail
with open(os.path.join(TOP, "deploy/deadlines.conf")) as f:
    text = f.read()
# The emergency limit stays 24 hours; its warnings, escalation and repeat are
# tuned to seconds so the whole ladder is seen within a test run.
text = re.sub(r"(\[transfer_emergency\][^\[]*?)warn = .*?\n", r"\1warn = 6s, 3s\n", text, flags=re.S)
text = re.sub(r"(\[transfer_emergency\][^\[]*?)escalate_after = .*?\n", r"\1escalate_after = 2s\n", text, flags=re.S)
text = re.sub(r"(\[transfer_emergency\][^\[]*?)escalate_every = .*?\n", r"\1escalate_every = 3s\n", text, flags=re.S)
with open(w.p("deadlines.conf"), "w") as f:
    f.write(text)


def deadline_events(case_id=None):
    args = ["--producer", "deadline"] + (["--case", case_id] if case_id else [])
    return tail(*args)


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(ts + 8 * 3600))


def report(tok, discovered_ts, urgency="normal", by="wy-scjg"):
    body = {"source": "patrol", "matter_code": "330217001", "township_code": "330723101000",
            "discovered_at": iso(discovered_ts), "discovered_by": by, "description": "e2e",
            "urgency": urgency}
    st, doc = http.post("/v1/cases", body, tok)
    assert st == 201, (st, doc)
    return doc["case_id"]


def calendar_show(year):
    """A year as deadline counts it without an import: the shipped file, or the
    provisional table of its statutory holidays (`casebus calendar show`)."""
    r = subprocess.run([binary("bin/casebus"), "calendar", "show", str(year), "--calendar", os.path.join(TOP, "deploy/calendar")],
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else f"year {year}\n"


def calendar_days(year):
    """{date: True for a holiday, False for a working weekend day} of a year as
    deadline counts it."""
    days = {}
    for line in calendar_show(year).splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("holiday", "workday"):
            first, _, last = words[1].partition("..")
            d = datetime.date.fromisoformat(first)
            end = datetime.date.fromisoformat(last or first)
            while d <= end:
                days[d] = words[0] == "holiday"
                d += datetime.timedelta(days=1)
    return days


def next_working_day(now):
    """The first working day after today (China time), as YYYY-MM-DD."""
    d = datetime.datetime.fromtimestamp(now, datetime.timezone(datetime.timedelta(hours=8))).date()
    while True:
        d += datetime.timedelta(days=1)
        cal = calendar_days(d.year)
        special = (cal or {}).get(d)
        if special is False or (special is None and d.weekday() < 5):
            return d.isoformat()


def kinds(evs):
    return [e["type"] for e in evs]


def alerts(evs):
    return [e for e in evs if e["type"] in ("deadline_warning", "deadline_breached", "escalated")]


MATERIALS = [{"kind": "transfer_letter", "title": "移送函"}, {"kind": "case_source", "title": "现场检查记录"},
             {"kind": "party_info", "text": "当事人情况"}]

try:
    tok = token("wy-scjg", "wy-zhzf")
    lt, sfj, ldxz = token("wy-lt"), token("wy-sfj"), token("wy-ldxz")
    system.start("router", "deadline", "intake")
    router, deadline, intake = (system.procs[d] for d in ("router", "deadline", "intake"))
    wait_for(lambda: http.get("/healthz")[0] == 200, 10)
    import_sample_county(cli, w, "deadline")

    evs = wait_for(lambda: [e for e in deadline_events() if e["type"] == "calendar_loaded"], 10) or []
    t.eq(sorted(e["event"]["year"] for e in evs), [2024, 2025, 2026],
         "on first start deadline loads and records the shipped calendars 2024-2026")

    # ---- the ladder: yellow, yellow, red, 督办, 督办 again, each on time ----
    now = time.time()
    c1 = report(tok, int(now) - 24 * 3600 + 10, urgency="emergency")
    ev = wait_for(lambda: [e for e in deadline_events(c1) if e["type"] == "obligation_opened"], 10)
    ob = ev[0]["event"]["obligation"] if ev else {}
    t.ok(ob.get("rule_id") == "transfer_emergency" and ob.get("responsible", {}).get("org_id") == "wy-scjg"
         and ob.get("unit") == "hours" and ob.get("length") == 24 and ob.get("source_doc") == "seed 002 §五(三)3"
         and ob.get("case", {}).get("case_id") == c1,
         "an emergency found by a department opens a 24-hour transfer obligation on the finder", ob)
    t.ok([s["org_id"] for s in ob.get("supervisors", [])] == ["wy-ldxz", "wy-sfj"],
         "its supervisors are the leading-group office and the judicial bureau", ob.get("supervisors"))
    due_ms = ob.get("due_at_ms", 0)
    ladder = wait_for(lambda: (lambda a: a if len(a) >= 5 else None)(alerts(deadline_events(c1))), 30) or []
    t.eq([(a["type"], a["event"]["alert"]["point"], a["event"]["alert"]["repeat"]) for a in ladder[:5]],
         [("deadline_warning", 0, 0), ("deadline_warning", 1, 0), ("deadline_breached", 2, 0),
          ("escalated", 2, 1), ("escalated", 2, 2)],
         "yellow (6 s before), yellow (3 s before), red at the limit, then 督办 and its repeat, in order")
    want = [due_ms - 6000, due_ms - 3000, due_ms, due_ms + 2000, due_ms + 5000]
    lateness = [a["recorded_at_ms"] - a["event"]["alert"]["fire_at_ms"] for a in ladder[:5]]
    t.ok([a["event"]["alert"]["fire_at_ms"] for a in ladder[:5]] == want and all(0 <= x < 1000 for x in lateness),
         "each fired within 1 s of its due time", (lateness, want))
    red = ladder[2]["event"] if len(ladder) > 2 else {}
    t.ok([n["org_id"] for n in red.get("alert", {}).get("notify", [])] == ["wy-scjg", "wy-ldxz", "wy-sfj"]
         and red.get("obligation", {}).get("due_local", "").endswith("+08:00")
         and not red.get("alert", {}).get("late"),
         "the breach names who is told (responsible and supervisors) and the due time in China time", red)

    # ---- a transfer sent in time: met on time, and the receiver's sign-for clock opens ----
    c2_at = int(time.time()) - 3600
    c2 = report(tok, c2_at)
    wait_for(lambda: [e for e in deadline_events(c2) if e["type"] == "obligation_opened"], 10)
    st, doc = http.post(f"/v1/cases/{c2}/transfers", {"sender": "wy-scjg", "reason": "不属本部门管辖",
                        "approved_by": "王局长", "approved_at": iso(int(time.time()) - 60), "materials": MATERIALS}, tok)
    assert st == 202, (st, doc)
    tid = doc["transfer_id"]
    evs = wait_for(lambda: (lambda e: e if "obligation_met" in kinds(e) and kinds(e).count("obligation_opened") == 2
                            else None)(deadline_events(c2)), 10) or []
    met = [e["event"] for e in evs if e["type"] == "obligation_met"]
    t.ok(met and met[0]["on_time"] and met[0]["obligation"]["rule_id"] == "transfer" and met[0]["stop_producer"] == "router",
         "the routed transfer meets the finder's 3-working-day obligation on time", met)
    sign = [e["event"]["obligation"] for e in evs if e["type"] == "obligation_opened"][-1:]
    t.ok(sign and sign[0]["rule_id"] == "sign" and sign[0]["responsible"]["org_id"] == "wy-lt"
         and sign[0]["transfer_id"] == tid, "routing opens the receiver's 1-working-day sign-for obligation", sign)

    # ---- return (clock resumes), dispute (pauses), decision (met) ----
    st, _ = http.post(f"/v1/transfers/{tid}/return", {"by": "wy-lt", "reason": "地点在大田乡"}, lt)
    evs = wait_for(lambda: (lambda e: e if any(x["type"] == "obligation_changed" for x in e) else None)(deadline_events(c2)), 10) or []
    ch = [e["event"] for e in evs if e["type"] == "obligation_changed"]
    t.ok(ch and ch[0]["change"] == "reopened" and ch[0]["obligation"]["rule_id"] == "transfer"
         and kinds(evs).count("obligation_met") == 2,
         "a return meets the sign-for obligation and reopens the finder's transfer clock", ch)
    st, d = http.post(f"/v1/transfers/{tid}/dispute", {"by": "wy-scjg", "reason": "地点确在履坦镇"}, tok)
    evs = wait_for(lambda: (lambda e: e if any(x["event"].get("change") == "paused" for x in e) else None)(deadline_events(c2)), 10) or []
    paused = [e["event"] for e in evs if e["event"].get("change") == "paused"]
    # What it used is working time since discovery: none of it on a day off.
    t.ok(paused and 0 <= paused[0]["obligation"]["used_ms"] <= (time.time() - c2_at + 1) * 1000,
         "a dispute pauses the transfer clock, keeping the working time it used", paused)
    st, _ = http.post(f"/v1/disputes/{d['dispute_id']}/decision",
                      {"decided_by": "wy-sfj", "competent_org": "wy-dt", "reasoning": "经核实"}, sfj)
    evs = wait_for(lambda: (lambda e: e if kinds(e).count("obligation_met") == 3 else None)(deadline_events(c2)), 10) or []
    met = [e["event"] for e in evs if e["type"] == "obligation_met"]
    opened = [e["event"]["obligation"] for e in evs if e["type"] == "obligation_opened"]
    t.ok(len(met) == 3 and met[2]["obligation"]["rule_id"] == "transfer" and met[2]["on_time"]
         and opened[-1]["rule_id"] == "sign" and opened[-1]["responsible"]["org_id"] == "wy-dt",
         "the decision re-routes: the paused clock is met on time and the decided receiver's sign-for opens",
         (met, opened))

    # ---- kill -9 with obligations falling due while down ----
    c3 = report(tok, int(time.time()) - 24 * 3600 + 12, urgency="emergency")
    wait_for(lambda: [e for e in deadline_events(c3) if e["type"] == "obligation_opened"], 10)
    w.kill(deadline, signal.SIGKILL)
    time.sleep(14)
    deadline = system.start("deadline")["deadline"]
    got = wait_for(lambda: (lambda a: a if len(a) >= 3 else None)(alerts(deadline_events(c3))), 10) or []
    time.sleep(1.5)
    got = alerts(deadline_events(c3))
    yr = [a for a in got if a["type"] != "escalated"]
    t.eq([(a["type"], a["event"]["alert"]["point"]) for a in yr],
         [("deadline_warning", 0), ("deadline_warning", 1), ("deadline_breached", 2)],
         "after kill -9 and restart, each point that fell due while down fires exactly once, in order")
    t.ok(yr and all(a["event"]["alert"]["late"] and a["event"]["alert"]["late_by_ms"] > 1000 for a in yr),
         "and each is marked late, with how late", [a["event"]["alert"] for a in yr])
    esc = [a["event"]["alert"]["repeat"] for a in got if a["type"] == "escalated"]
    t.ok(len(esc) == len(set(esc)) and esc == sorted(esc),
         "escalation steps missed while down fire once (no repeat number twice)", esc)
    ids = [e["event"]["obligation"]["obligation_id"] for e in deadline_events(c1) if e["type"] == "obligation_opened"]
    t.ok(len(ids) == len(set(ids)) and len([i for i in ids if i.startswith("transfer:")]) == 1,
         "nothing was applied twice across the restart (each limit opened once)", ids)

    # ---- calendar correction recomputes open obligations ----
    c4 = report(tok, int(time.time()) - 60)
    ob4 = (wait_for(lambda: [e for e in deadline_events(c4) if e["type"] == "obligation_opened"], 10) or [{}])[0]
    old_due = ob4.get("event", {}).get("obligation", {}).get("due_at_ms", 0)
    # A holiday declared on the next working day (as deadline counts it: the
    # shipped calendars, or a year's statutory holidays) moves the limit.
    day = next_working_day(time.time())
    cal = w.p(f"{day[:4]}.cal")
    caltext = "".join(ln + "\n" for ln in calendar_show(day[:4]).splitlines() if ln.strip() != "provisional")
    with open(cal, "w") as f:
        f.write(caltext + f"\nholiday {day} test correction\n")
    r = cli("calendar", "import", cal)
    t.ok(r.returncode == 0 and f"calendar {day[:4]} loaded" in r.stdout,
         "casebus calendar import loads a corrected year", r.stdout + r.stderr)
    evs = wait_for(lambda: [e for e in deadline_events(c4) if e["event"].get("change") == "recomputed"], 10) or []
    t.ok(evs and evs[0]["event"]["previous_due_ms"] == old_due
         and evs[0]["event"]["obligation"]["due_at_ms"] > old_due,
         f"a new holiday on the next working day ({day}) moves the open 3-working-day obligation later", evs)
    bad = w.p("bad.cal")
    with open(bad, "w") as f:
        f.write("year 2026\nholiday 2026-13-01\n")
    r = cli("calendar", "import", bad)
    t.ok(r.returncode == 1 and "bad.cal:2" in r.stderr and "nothing changed" in r.stderr,
         "a bad calendar file is refused naming its line", r.stderr)

    # ---- extension through intake's API: asked by the responsible, approved by a supervisor ----
    oid = f"transfer:{c4}"
    # intake learns of the obligation from deadline's log (a replica): act on it once it has.
    t.ok(wait_for(lambda: oid in http.get(f"/v1/cases/{c4}", tok)[1].get("obligations", {}), 5),
         "intake's case view learns of the obligation opened after deadline's restart")
    before = [e for e in deadline_events(c4) if e["type"] in ("obligation_opened", "obligation_changed")][-1]
    due_before = before["event"]["obligation"]["due_at_ms"]
    st_, doc = http.post(f"/v1/obligations/{oid}/extension-request", {"by": "wy-lt", "extra_length": 2, "reason": "x"}, lt)
    t.ok(st_ == 403 and doc["error"]["code"] == "not_responsible" and doc["error"]["field"] == "by",
         "only the responsible organisation may ask for more time (403 at the door)", doc)
    st_, doc = http.post(f"/v1/obligations/{oid}/extension-request", {"by": "wy-scjg", "reason": "x"}, tok)
    t.ok(st_ == 400 and doc["error"]["field"] == "extra_length", "extra_length is required", doc)
    st_, doc = http.post(f"/v1/obligations/{oid}/extension-request",
                         {"by": "wy-scjg", "extra_length": 2, "reason": "需补充检测报告"}, tok)
    t.eq(st_, 202, "the finder's request is accepted for deadline to decide")
    st_, doc = http.post(f"/v1/obligations/{oid}/extension-decision", {"by": "wy-scjg", "approved": True}, tok)
    t.ok(st_ == 403 and doc["error"]["code"] == "not_supervisor", "the responsible party cannot approve its own extension", doc)
    st_, doc = http.post(f"/v1/obligations/{oid}/extension-decision", {"by": "wy-ldxz", "approved": True}, ldxz)
    t.eq(st_, 202, "the leading-group office approves")
    evs = wait_for(lambda: [e["event"] for e in deadline_events(c4) if e["event"].get("change") == "extended"], 10) or []
    t.ok(evs and evs[0]["previous_due_ms"] == due_before and evs[0]["obligation"]["due_at_ms"] > due_before
         + 2 * 86400 * 1000 - 1 and evs[0]["obligation"]["length"] == 5,
         "deadline moves the limit by 2 working days and records it", evs)
    st_, doc = http.post("/v1/obligations/transfer:NOPE/extension-request", {"by": "wy-scjg", "extra_length": 1, "reason": "x"}, tok)
    t.eq(st_, 404, "an unknown obligation is 404")

    # ---- a cancelled case closes its open obligations ----
    st_, doc = http.post(f"/v1/cases/{c4}/cancellation", {"by": "wy-lt", "reason": "重复"}, lt)
    t.ok(st_ == 403, "only the finder or the command platform cancels a case", doc)
    st_, doc = http.post(f"/v1/cases/{c4}/cancellation", {"by": "wy-scjg", "reason": "重复报案"}, tok)
    t.eq(st_, 201, "the finder cancels its case")
    evs = wait_for(lambda: [e["event"] for e in deadline_events(c4) if e["event"].get("change") == "cancelled"], 10) or []
    t.ok(evs and evs[0]["reason"] == "重复报案", "deadline cancels the case's open obligation", evs)
    st_, doc = http.post(f"/v1/cases/{c4}/cancellation", {"by": "wy-scjg", "reason": "again"}, tok)
    t.eq(st_, 409, "cancelling twice is a conflict")

    # ---- Decree 310 through intake: the investigator's report opens 3 days to decide ----
    st_, doc = http.post(f"/v1/cases/{c2}/crime-referral", {"step": "investigator_reported", "by": "wy-scjg",
                                                            "at": iso(int(time.time()) - 60)}, tok)
    t.eq(st_, 201, "a crime-referral step is recorded")
    evs = wait_for(lambda: [e["event"]["obligation"] for e in deadline_events(c2)
                            if e["type"] == "obligation_opened" and e["event"]["obligation"]["rule_id"] == "crime_decide"], 10) or []
    t.ok(evs and evs[0]["unit"] == "days" and evs[0]["length"] == 3 and "310" in evs[0]["source_doc"],
         "it opens Decree 310's 3-day decision limit", evs)
    st_, doc = http.post(f"/v1/cases/{c2}/crime-referral", {"step": "police_answered", "by": "wy-scjg",
                                                            "at": iso(int(time.time()) - 60)}, tok)
    t.ok(st_ == 403 and doc["error"]["field"] == "by", "only public security answers a referral", doc)

    # ---- a joint operation applied for too late; filings ----
    st_, doc = http.post("/v1/joint-operations", {"by": "wy-scjg", "starts_at": iso(int(time.time()) + 2 * 86400),
                                                  "subject": "夜市联合整治"}, tok)
    t.ok(st_ == 201 and doc.get("operation_id"), "a joint operation application is recorded", doc)
    evs = wait_for(lambda: [e["event"] for e in deadline_events() if e["type"] == "obligation_met"
                            and e["event"]["obligation"]["rule_id"] == "joint_operation"], 10) or []
    t.ok(evs and not evs[0]["on_time"] and evs[0]["late_by_ms"] > 0,
         "applied 2 days before it starts (5 are required): met late, by how much", evs)
    st_, doc = http.post("/v1/filings", {"kind": "monthly_status", "by": "wy-scjg", "period": "2026"}, tok)
    t.ok(st_ == 400 and doc["error"]["field"] == "period", "a monthly filing needs a YYYY-MM period", doc)
    st_, doc = http.post("/v1/filings", {"kind": "case_file_catalogue", "by": "wy-scjg", "period": "2025"}, tok)
    t.eq(st_, 201, "a yearly filing is recorded")

    st = json.loads(cli("status", "--json").stdout)["deadline"]
    t.ok(st["obligations"]["open"] >= 2 and st["obligations"]["red"] >= 2
         and st["calendar_years"] == sorted({2024, 2025, 2026, int(day[:4])}),
         "casebus status reports open obligations, how many are red, and the calendar years", st)
    # intake's case view carries deadline's verdicts
    st_, v = http.get(f"/v1/cases/{c1}", tok)
    obs = v.get("obligations", {})
    t.ok(any(o.get("level") in ("red", "escalation") for o in obs.values()),
         "intake's case view shows the obligation's alert level from deadline's log", obs)

    r = cli("verify")
    t.ok(r.returncode == 0 and "deadline  ok" in r.stdout, "deadline's log verifies", r.stdout + r.stderr)
    t.eq(w.kill(deadline, signal.SIGTERM), 0, "deadline stops cleanly on SIGTERM")
    openapi_judge(t, openapi_document(), exchanges, w.path)
    w.kill(intake, signal.SIGTERM)
    w.kill(router, signal.SIGTERM)
except Exception as e:
    t.crashed(e)
finally:
    system.cleanup()
t.done()
