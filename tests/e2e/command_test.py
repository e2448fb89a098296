"""The command platform's own work, end to end (seed 003 §三(一) 分流交办, 反馈督办).
The whole system runs; each organisation's platform is subscribed to a loopback
webhook receiver:
- a case that failed routing is dispatched by the platform to a lead with a
  helper (协办); bad dispatches are refused naming the field, and change nothing;
- a return (退单) waits for the platform's review: rejected, the receiver keeps
  the case and its sign-for clock; approved, the case is back with the platform;
  the case's third return is reviewed by the leading-group office, not the
  platform;
- the platform reassigns (改派) a dispatch: the first is withdrawn, its clock
  cancelled, its receiver told;
- router refuses a second open transfer of one case (transfer_open);
- the case view follows every outcome of a dispute: the finder, the receiver, or
  a third organisation found competent;
- a 督办 order has an id, reaches the responsible organisation and is answered
  once, by it alone; the answer reaches the supervisors; casebus report counts
  orders and answers;
- the lists: GET /v1/cases and /v1/obligations with filters and stable cursor
  pages, scoped to a token's organisations; casebus cases, overdue, due-soon."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import Http, System, Tap, WebhookReceiver, ago, openapi_judge  # noqa: E402

t = Tap()
START_DAY = ago(0)[:10]  # China date the test began (it may run across midnight)
exchanges = []  # judged against the OpenAPI document at the end
system = System("command", record=exchanges)
w, port, http, cli, token, view = system.w, system.port, system.http, system.cli, system.token, system.view
hook = WebhookReceiver()
received = hook.received
ORGS = ("wy-zhzf", "wy-scjg", "wy-zjj", "wy-lt", "wy-tx", "wy-dt", "wy-ldxz")


def summaries(v):
    return [e["summary"] for e in v.get("timeline", [])]


def obligation(v, prefix):
    return next((o for k, o in v.get("obligations", {}).items() if k.startswith(prefix)), {})


def report(tok, matter, by="wy-scjg", discovered=None):
    st, doc = http.post("/v1/cases", {"source": "patrol", "matter_code": matter, "township_code": "330723101000",
                                      "discovered_at": discovered or ago(600), "discovered_by": by,
                                      "description": "command e2e"}, tok)
    assert st == 201, doc
    return doc["case_id"]


def transfer(tok, case_id, sender="wy-scjg"):
    return http.post(f"/v1/cases/{case_id}/transfers",
                     {"sender": sender, "reason": "不属本部门管辖", "approved_by": "王局长", "approved_at": ago(300),
                      "materials": [{"kind": "transfer_letter", "title": "移送函"},
                                    {"kind": "case_source", "title": "现场检查记录"},
                                    {"kind": "party_info", "text": "当事人情况"}]}, tok)


def dispatch(case_id, lead, helpers=(), tok=None, by="wy-zhzf"):
    body = {"by": by, "lead": lead, "reason": "指挥中心分流交办"}
    if helpers:
        body["helpers"] = list(helpers)
    return http.post(f"/v1/cases/{case_id}/dispatch", body, tok or platform)


def tstate(v, tid):
    return v.get("transfers", {}).get(tid, {}).get("state")


try:
    system.up("deadline")
    hook.subscribe(cli, ORGS, "command-secret-0123456789")
    platform, dept, lt, tx, dt = token("wy-zhzf"), token("wy-scjg"), token("wy-lt"), token("wy-tx"), token("wy-dt")
    office, sfj, zjj = token("wy-ldxz"), token("wy-sfj"), token("wy-zjj")

    # ---- a case that failed routing is dispatched ----
    c1 = report(dept, "999000111")
    v = view(platform, c1, lambda v: v.get("state") == "manual_dispatch")
    t.ok(v.get("holder", {}).get("org_id") == "wy-zhzf", "an unknown matter waits at the command platform", v)
    st, doc = dispatch(c1, "wy-lt", tok=dept, by="wy-scjg")
    t.ok(st == 403 and doc["error"]["code"] == "not_platform" and doc["error"]["field"] == "by",
         "only the command platform dispatches (403 not_platform)", doc)
    bad = [(("wy-lt", ["wy-nobody"]), "helpers[0]", "unknown_organisation"),
           (("wy-scjg-jcdd", []), "lead", "invalid_field"),
           (("wy-lt", ["wy-zjj", "wy-lt"]), "helpers[1]", "invalid_field"),
           (("wy-zhzf", []), "lead", "invalid_field")]
    for (lead, helpers), field, code in bad:
        st, doc = dispatch(c1, lead, helpers)
        t.ok(st == 400 and doc["error"]["field"] == field and doc["error"]["code"] == code,
             f"a dispatch with a bad {field} is refused naming it ({code})", doc)
    st, doc = http.post(f"/v1/cases/{c1}/dispatch", {"by": "wy-zhzf", "lead": "wy-lt"}, platform)
    t.ok(st == 400 and doc["error"]["field"] == "reason", "a dispatch needs a reason", doc)
    v = view(platform, c1)
    t.ok(not v.get("transfers"), "the refused dispatches changed nothing", v.get("transfers"))

    st, doc = dispatch(c1, "wy-lt", ["wy-zjj"])
    d1 = doc.get("transfer_id", "")
    t.ok(st == 202 and d1, "the platform dispatches to 履坦镇 (lead) with 住建局 helping: 202", doc)
    v = view(platform, c1, lambda v: tstate(v, d1) == "sent" and obligation(v, f"sign:{d1}")
             and obligation(v, "transfer:").get("state") == "met")
    tv = v.get("transfers", {}).get(d1, {})
    t.ok(tv.get("dispatched") and tv.get("helpers") == ["wy-zjj"] and v["competent"]["org_id"] == "wy-lt"
         and v["holder"]["org_id"] == "wy-lt" and v["state"] == "transfer_routed",
         "the case view shows the dispatch: lead competent and holding, the helper named", v)
    sign = obligation(v, f"sign:{d1}")
    t.ok(sign.get("rule_id") == "dispatch_sign" and sign.get("state") == "open"
         and sign["responsible"]["org_id"] == "wy-lt", "the lead has the dispatch's own sign-for limit", sign)
    t.eq(obligation(v, "transfer:").get("state"), "met",
         "the finder's duty to transfer is done by the platform's dispatch")
    got = received("wy-lt", "transfer_routed", lambda e: e["transfer_id"] == d1)
    t.ok(got and got[0]["dispatched"] and got[0]["sender"]["org_id"] == "wy-zhzf",
         "the lead's webhook receives the dispatch", got)
    t.ok(received("wy-zjj", "transfer_routed", lambda e: e["transfer_id"] == d1),
         "so does the helper's (协办)")
    st, _ = http.get(f"/v1/cases/{c1}", zjj)
    t.eq(st, 200, "the helper may read the case")

    # ---- returns, reviewed ----
    st, doc = http.post(f"/v1/transfers/{d1}/return", {"by": "wy-lt", "reason": "不属本镇事项"}, lt)
    v = view(platform, c1, lambda v: tstate(v, d1) == "return_requested" and obligation(v, f"review:{d1}"))
    t.ok(st == 202 and v["state"] == "return_review" and v["transfers"][d1]["reviewer"]["org_id"] == "wy-zhzf",
         "a return of a dispatch waits for the platform's review (退单审核)", v.get("transfers"))
    t.ok(obligation(v, f"review:{d1}").get("state") == "open" and obligation(v, f"sign:{d1}").get("state") == "open",
         "the platform has a limit to review it; the lead's sign-for clock keeps running", v.get("obligations"))
    t.ok(received("wy-zhzf", "transfer_state_changed", lambda e: e["transfer_id"] == d1
                  and e["to_state"] == "return_requested"), "the platform's webhook is asked to review")
    st, doc = http.post(f"/v1/transfers/{d1}/return-review", {"by": "wy-lt", "approved": True, "reason": "x"}, lt)
    t.ok(st == 403 and doc["error"]["code"] == "not_reviewer", "the receiver cannot review its own return", doc)
    st, doc = http.post(f"/v1/transfers/{d1}/return-review", {"by": "wy-zhzf", "reason": "x"}, platform)
    t.ok(st == 400 and doc["error"]["field"] == "approved", "a review says approved or not", doc)
    st, doc = http.post(f"/v1/transfers/{d1}/return-review",
                        {"by": "wy-zhzf", "approved": False, "reason": "属履坦镇辖区, 请办理"}, platform)
    v = view(platform, c1, lambda v: tstate(v, d1) == "sent"
             and obligation(v, f"review:{d1}").get("state") == "met")
    t.ok(st == 202 and v["holder"]["org_id"] == "wy-lt" and obligation(v, f"sign:{d1}").get("state") == "open"
         and obligation(v, f"review:{d1}").get("state") == "met",
         "rejected: the case stays with the receiver, whose clock runs on; the review is done", v)
    http.post(f"/v1/transfers/{d1}/return", {"by": "wy-lt", "reason": "仍不属本镇"}, lt)
    view(platform, c1, lambda v: tstate(v, d1) == "return_requested")
    st, doc = http.post(f"/v1/transfers/{d1}/return-review", {"by": "wy-zhzf", "approved": True,
                                                              "reason": "另行分流"}, platform)
    v = view(platform, c1, lambda v: tstate(v, d1) == "returned" and v.get("state") == "manual_dispatch"
             and obligation(v, f"sign:{d1}").get("state") == "cancelled")
    t.ok(st == 202 and v.get("holder", {}).get("org_id") == "wy-zhzf" and v["competent"]["org_id"] == "wy-zhzf"
         and obligation(v, f"sign:{d1}").get("state") == "cancelled",
         "approved: the case is back with the platform to dispatch anew; the sign-for limit is cancelled", v)

    st, doc = dispatch(c1, "wy-tx")
    d2 = doc.get("transfer_id", "")
    view(platform, c1, lambda v: tstate(v, d2) == "sent")
    http.post(f"/v1/transfers/{d2}/return", {"by": "wy-tx", "reason": "也不属本镇"}, tx)
    v = view(platform, c1, lambda v: tstate(v, d2) == "return_requested")
    t.ok(v["transfers"][d2]["reviewer"]["org_id"] == "wy-ldxz" and v["transfers"][d2]["returns"] == 3,
         "the case's third return is reviewed by the leading-group office", v.get("transfers", {}).get(d2))
    t.ok(received("wy-ldxz", "transfer_state_changed", lambda e: e["transfer_id"] == d2),
         "the leading-group office's webhook is asked to review it")
    st, doc = http.post(f"/v1/transfers/{d2}/return-review", {"by": "wy-zhzf", "approved": True, "reason": "x"},
                        platform)
    v = view(platform, c1, lambda v: any("not_reviewer" in s or "only wy-ldxz reviews" in s for s in summaries(v)))
    t.ok(st == 202 and tstate(v, d2) == "return_requested" and any("only wy-ldxz reviews" in s for s in summaries(v)),
         "the platform's review of the third return is refused by router", summaries(v)[-3:])
    http.post(f"/v1/transfers/{d2}/return-review", {"by": "wy-ldxz", "approved": True, "reason": "协调后重新交办"},
              office)
    v = view(platform, c1, lambda v: tstate(v, d2) == "returned")
    t.eq(v.get("holder", {}).get("org_id"), "wy-zhzf", "the office approves; the case is back with the platform")

    # ---- reassignment (改派) ----
    st, doc = dispatch(c1, "wy-dt")
    d3 = doc.get("transfer_id", "")
    view(platform, c1, lambda v: tstate(v, d3) == "sent")
    st, doc = dispatch(c1, "wy-lt")
    d4 = doc.get("transfer_id", "")
    v = view(platform, c1, lambda v: tstate(v, d4) == "sent"
             and obligation(v, f"sign:{d3}").get("state") == "cancelled")
    t.ok(tstate(v, d3) == "withdrawn" and obligation(v, f"sign:{d3}").get("state") == "cancelled"
         and v["competent"]["org_id"] == "wy-lt" and v["holder"]["org_id"] == "wy-lt",
         "a second dispatch reassigns the case: the first is withdrawn and its clock cancelled", v.get("transfers"))
    t.ok(received("wy-dt", "transfer_state_changed", lambda e: e["transfer_id"] == d3
                  and e["to_state"] == "withdrawn"), "the first receiver is told it was withdrawn")
    http.post(f"/v1/transfers/{d4}/acceptance", {"by": "wy-lt"}, lt)
    v = view(platform, c1, lambda v: tstate(v, d4) == "accepted" and obligation(v, f"sign:{d4}").get("state") == "met")
    t.ok(v["state"] == "with_competent" and obligation(v, f"sign:{d4}").get("state") == "met",
         "the new lead accepts it", v)
    c_held = report(dept, "330217001")
    view(dept, c_held, lambda v: v.get("competent") is not None)
    st, doc = dispatch(c_held, "wy-dt")
    v = view(platform, c_held, lambda v: any("the command platform dispatches the cases it holds" in s
                                             for s in summaries(v)))
    t.ok(st == 202 and not v.get("transfers"),
         "router refuses to dispatch a case another organisation holds (not_held)", summaries(v))

    # ---- one open transfer at a time ----
    # With router stopped, intake accepts both (it cannot know yet); router, the
    # authority on transfer state, routes the first and refuses the second.
    c2 = report(dept, "330217001")
    v = view(dept, c2, lambda v: obligation(v, "transfer:"))
    system.kill("router", signal.SIGTERM)
    (s1, a1), (s2, a2) = transfer(dept, c2), transfer(dept, c2)
    system.start("router")
    v = view(dept, c2, lambda v: any("one transfer at a time" in s for s in summaries(v))
             and obligation(v, "sign:"))
    t.ok(s1 == 202 and s2 == 202 and list(v.get("transfers", {})) == [a1["transfer_id"]]
         and any("one transfer at a time" in s for s in summaries(v)),
         "the same transfer sent twice makes one live transfer: router refuses the second (transfer_open)",
         [s1, s2, summaries(v)[-3:]])
    t.ok(len([o for k, o in v.get("obligations", {}).items() if k.startswith("sign:")]) == 1,
         "and one sign-for limit", v.get("obligations"))
    rej = received("wy-scjg", "transfer_rejected", lambda e: e["transfer_id"] == a2["transfer_id"])
    t.ok(rej and rej[0]["code"] == "transfer_open", "the sender's webhook gets the refusal with its code", rej)

    # ---- the case view follows every outcome of a dispute ----
    def disputed_case(decided):
        c = report(dept, "330217001")
        view(dept, c, lambda v: v.get("competent") is not None)
        st, doc = transfer(dept, c)
        tid = doc["transfer_id"]
        view(dept, c, lambda v: tstate(v, tid) == "sent")
        st, doc = http.post(f"/v1/transfers/{tid}/dispute", {"by": "wy-lt", "reason": "不属本镇管辖"}, lt)
        view(dept, c, lambda v: tstate(v, tid) == "disputed")
        st, d = http.post(f"/v1/disputes/{doc['dispute_id']}/decision",
                          {"decided_by": "wy-sfj", "competent_org": decided, "reasoning": "经审查"}, sfj)
        assert st == 202, d
        return c, tid

    c, tid = disputed_case("wy-scjg")
    v = view(dept, c, lambda v: tstate(v, tid) == "concluded" and v.get("state") == "with_competent")
    t.ok(v.get("competent", {}).get("org_id") == "wy-scjg" and v.get("holder", {}).get("org_id") == "wy-scjg"
         and v.get("state") == "with_competent",
         "decided for the finder: the case view says the finder is competent and holds it", v)
    c, tid = disputed_case("wy-lt")
    v = view(dept, c, lambda v: tstate(v, tid) == "sent" and v.get("transfers", {}).get(tid, {}).get("receiver") == "wy-lt"
             and v.get("state") == "transfer_routed")
    t.ok(v.get("competent", {}).get("org_id") == "wy-lt" and v.get("holder", {}).get("org_id") == "wy-lt",
         "decided for the receiver: routed to it anew, competent and holding", v)
    http.post(f"/v1/transfers/{tid}/acceptance", {"by": "wy-lt"}, lt)
    v = view(dept, c, lambda v: v.get("state") == "with_competent")
    t.eq(v.get("state"), "with_competent", "and once it accepts, the case is with the competent organisation")
    c, tid = disputed_case("wy-dt")
    v = view(dept, c, lambda v: v.get("transfers", {}).get(tid, {}).get("receiver") == "wy-dt"
             and v.get("competent", {}).get("org_id") == "wy-dt")
    t.ok(v.get("competent", {}).get("org_id") == "wy-dt" and tstate(v, tid) == "sent"
         and v.get("holder", {}).get("org_id") == "wy-dt",
         "decided for a third organisation: it is competent, and the transfer goes to it", v)

    # ---- 督办, answered ----
    c3 = report(dept, "330217001", discovered=ago(30 * 86400))
    v = view(dept, c3, lambda v: obligation(v, "transfer:").get("supervision"))
    sv = obligation(v, "transfer:").get("supervision", {})
    sid = sv.get("id", "")
    t.ok(sid.startswith("SV-transfer:") and sv.get("state") == "open" and sv.get("answer_due"),
         "an overdue transfer is escalated as a 督办 order with an id and an answer due", sv)
    got = received("wy-scjg", "escalated", lambda e: e.get("supervision_id") == sid)
    t.ok(got and got[0]["answer_due_ms"] > 0, "the order reaches the responsible organisation's webhook", got)
    st, doc = http.post(f"/v1/supervisions/{sid}/answer", {"by": "wy-lt", "answer": "x"}, lt)
    t.ok(st == 403 and doc["error"]["code"] == "not_responsible",
         "only the organisation the order is addressed to answers it", doc)
    st, doc = http.post(f"/v1/supervisions/{sid}/answer", {"by": "wy-scjg"}, dept)
    t.ok(st == 400 and doc["error"]["field"] == "answer", "an answer says what was done", doc)
    st, doc = http.post("/v1/supervisions/SV-nothing-1/answer", {"by": "wy-scjg", "answer": "x"}, dept)
    t.eq(st, 404, "an order that does not exist is 404")
    st, doc = http.post(f"/v1/supervisions/{sid}/answer", {"by": "wy-scjg", "answer": "已于今日补正材料并移送"}, dept)
    t.ok(st == 201 and doc.get("supervision_id") == sid, "the responsible organisation answers: 201", doc)
    v = view(dept, c3, lambda v: obligation(v, f"answer:{sid}").get("state") in ("met", "met_late"))
    t.ok(obligation(v, "transfer:").get("supervision", {}).get("state") == "answered"
         and obligation(v, f"answer:{sid}").get("state") == "met",
         "the case view shows the order answered, and its answer limit met on time", v.get("obligations"))
    got = received("wy-ldxz", "supervision_answered", lambda e: e["supervision_id"] == sid)
    t.ok(got and got[0]["answer"] == "已于今日补正材料并移送", "the answer reaches the leading-group office", got)
    st, doc = http.post(f"/v1/supervisions/{sid}/answer", {"by": "wy-scjg", "answer": "again"}, dept)
    t.ok(st == 409 and doc["error"]["code"] == "already_answered", "an order is answered once", doc)
    r = cli("report", "--from", START_DAY, "--to", ago(0)[:10], "--csv")
    row = next((line for line in r.stdout.splitlines() if ",wy-scjg," in line), "")
    cols = row.split(",")
    t.ok(r.returncode == 0 and len(cols) >= 18 and int(cols[-2]) >= 1 and int(cols[-1]) >= 1,
         "casebus report counts the department's 督办 orders and answers", r.stdout + r.stderr)
    r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", "--case", c1, "--type", "case_dispatched")
    lines = [json.loads(line)["data"] for line in r.stdout.splitlines()]
    t.ok(len(lines) == 4 and lines[0]["event"]["lead"]["org_id"] == "wy-lt",
         "every dispatch is on the tail", r.stdout[:400] + r.stderr)
    r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", "--case", c2, "--type", "case_reported")
    rep = [json.loads(line)["data"]["event"]["case"] for line in r.stdout.splitlines()]
    r = cli("tail", "--json", "--from", "beginning", "--exit-at-end", "--case", c2, "--type", "jurisdiction_resolved")
    jr = [json.loads(line)["data"]["event"]["case"] for line in r.stdout.splitlines()]
    t.ok(len(rep) == 1 and jr and rep[0]["matter_name"] and rep[0]["matter_name"] == jr[0]["matter_name"]
         and rep[0]["township_name"] == jr[0]["township_name"] == "履坦镇人民政府",
         "case_reported carries the matter's and the township's names, the same as router's events", (rep, jr[:1]))

    # ---- lists ----
    def listing(path, tok):
        st, doc = http.get(path, tok)
        assert st == 200, (path, st, doc)
        return doc

    all_cases = listing("/v1/cases?limit=200", platform)["cases"]
    ids = [c["case_id"] for c in all_cases]
    t.ok(len(ids) >= 7 and c1 in ids and c3 in ids and [c["reported_at"] for c in all_cases]
         == sorted([c["reported_at"] for c in all_cases], reverse=True),
         "GET /v1/cases lists every case for the command platform, newest first", ids)
    paged, cursor = [], None
    for _ in range(20):
        doc = listing("/v1/cases?limit=3" + (f"&cursor={cursor}" if cursor else ""), platform)
        paged += [c["case_id"] for c in doc["cases"]]
        cursor = doc["next_cursor"]
        if not cursor:
            break
    t.eq(paged, ids, "pages of 3 with next_cursor give the same list, each case once")
    mine = [c["case_id"] for c in listing("/v1/cases?limit=200", tx)["cases"]]
    t.ok(mine == [c1], "a township's token lists only the cases it has a role in", mine)
    st, doc = http.get("/v1/cases?org=wy-lt", tx)
    t.ok(st == 403 and doc["error"]["field"] == "org", "nor may it list another organisation's (403)", doc)
    lt_cases = listing("/v1/cases?org=wy-lt&limit=200", platform)["cases"]
    tx_cases = [c["case_id"] for c in listing("/v1/cases?org=wy-tx&limit=200", platform)["cases"]]
    t.ok(c1 in [c["case_id"] for c in lt_cases] and c_held in [c["case_id"] for c in lt_cases]
         and tx_cases == [c1], "org= lists the cases an organisation has a role in (for the platform)",
         [[c["case_id"] for c in lt_cases], tx_cases])
    red = listing("/v1/cases?overdue=true&limit=200", platform)["cases"]
    t.ok(c3 in [c["case_id"] for c in red] and all(c["overdue"] for c in red),
         "overdue=true lists the case whose limit passed", [c["case_id"] for c in red])
    esc = listing("/v1/cases?level=escalation&township=330723101000", platform)["cases"]
    t.ok(c3 in [c["case_id"] for c in esc] and all(c["level"] == "escalation" for c in esc),
         "filters combine: escalated cases in one township (the level word is AlertLevel's, as in the events)", esc)
    t.eq([c["case_id"] for c in listing("/v1/cases?level=escalated&township=330723101000", platform)["cases"]],
         [c["case_id"] for c in esc], "the old word 'escalated' still filters the same")
    st, doc = http.get("/v1/cases?state=with_competent&matter=999000111", platform)
    t.ok(st == 200 and [c["case_id"] for c in doc["cases"]] == [c1], "state and matter", doc)
    for q, field in (("colour=red", "colour"), ("level=purple", "level"), ("limit=0", "limit"),
                     ("cursor=xyz", "cursor"), ("from=yesterday", "from"), ("state=lost", "state")):
        st, doc = http.get(f"/v1/cases?{q}", platform)
        t.ok(st == 400 and doc["error"]["field"] == field, f"a bad list parameter is refused naming it ({q})", doc)
    t.eq(len(listing(f"/v1/cases?from={START_DAY}&to={ago(0)[:10]}&limit=200", platform)["cases"]), len(ids),
         "from/to by China date: every case was reported since the test began")
    t.eq(listing(f"/v1/cases?to={ago(86400 * 30)[:10]}", platform)["cases"], [],
         "and none a month before")
    obs = listing("/v1/obligations?state=overdue&responsible=wy-scjg", dept)["obligations"]
    t.ok(any(o["obligation_id"] == f"transfer:{c3}" and o["overdue"] and o["remaining_ms"] < 0
             and o["supervision_id"] == sid for o in obs),
         "GET /v1/obligations?state=overdue shows the overdue limit, how late, and its 督办 order", obs)
    soon = listing("/v1/obligations?state=due_soon&limit=200", platform)["obligations"]
    t.ok(soon and [o["due_at"] for o in soon] == sorted(o["due_at"] for o in soon)
         and all(o["remaining_ms"] >= 0 for o in soon),
         "state=due_soon lists open limits by time remaining, soonest first", [o["due_at"] for o in soon])
    st, doc = http.get("/v1/obligations?responsible=wy-lt", dept)
    t.eq(st, 403, "a token lists only its own organisations' limits")
    r = cli("cases", "--township", "330723101000", "--level", "escalation")
    t.ok(r.returncode == 0 and c3 in r.stdout and "escalation" in r.stdout.splitlines()[1],
         "casebus cases prints the list as a table", r.stdout + r.stderr)
    r = cli("overdue", "--responsible", "wy-scjg")
    t.ok(r.returncode == 0 and c3 in r.stdout and "late " in r.stdout and sid in r.stdout,
         "casebus overdue prints the late limits with how late and the 督办 order", r.stdout + r.stderr)
    r = cli("due-soon", "--within", "30d", "--json")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    t.ok(r.returncode == 0 and rows and all(x["remaining_ms"] >= 0 for x in rows)
         and [x["due_at_ms"] for x in rows] == sorted(x["due_at_ms"] for x in rows),
         "casebus due-soon lists what breaches soonest first", r.stdout[:300] + r.stderr)
    r = cli("cases", "--level", "purple")
    t.ok(r.returncode == 2 and "--level" in r.stderr, "a bad option is refused naming it", r.stderr)

    st, doc = Http(port).get("/openapi.json")
    openapi_judge(t, doc, exchanges, w.path)
except Exception as e:
    t.crashed(e)
finally:
    w.cleanup()
t.done()
