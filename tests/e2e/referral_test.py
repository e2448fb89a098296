"""A suspected crime, end to end under Decree 310 (行政执法机关移送涉嫌犯罪案件的规定,
rev. 2020), with the whole system running and webhook receivers for the
organisations involved:
- a suspected-crime case opens no seed-002 transfer limit; the investigator's
  report opens 3 days to decide (第五条), the decision 24 hours to hand over;
- the handover needs its dossier (第六条) and opens public security's 3 days (第八条);
- while public security holds it, no penalty may be decided (不得以罚代刑, 第十一条);
- public security's refusal routes the case back to the organisation competent
  by the catalogue, as a routed transfer with its own sign-for, and opens 3 days
  to ask for reconsideration (第九条), whose answer is due in 3 days too;
- once declined, the competent organisation decides, and the procuratorate is told;
- a case public security opens obliges the exhibits within 3 days (第十二条)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import CRIME_DOSSIER, System, Tap, WebhookReceiver, ago, openapi_document, openapi_judge, wait_for

t = Tap()
exchanges = []  # judged against the OpenAPI document at the end
system = System("referral", record=exchanges)
w, http, cli, token = system.w, system.http, system.cli, system.token
hook = WebhookReceiver()
DOSSIER = CRIME_DOSSIER


def events(case_id, producer):
    return system.tail("--producer", producer, "--case", case_id)


def obligations(case_id, kind):
    return {e["event"]["obligation"]["rule_id"]: e["event"]["obligation"] for e in events(case_id, "deadline")
            if e["type"] == kind}


def wait_rule(case_id, kind, rule, timeout=10):
    return wait_for(lambda: obligations(case_id, kind).get(rule), timeout) or {}


def step(case_id, tok, **body):
    return http.post(f"/v1/cases/{case_id}/crime-referral", {"at": ago(30), **body}, tok)


def report(tok):
    st, doc = http.post("/v1/cases", {"source": "patrol", "matter_code": "330217001",
                                      "township_code": "330723101000", "discovered_at": ago(3600),
                                      "discovered_by": "wy-scjg", "description": "涉嫌销售伪劣产品",
                                      "urgency": "normal", "suspected_crime": True}, tok)
    assert st == 201, doc
    return doc["case_id"]


try:
    system.up("deadline")
    hook.subscribe(cli, ("wy-lt", "wy-jcy", "wy-scjg"), "referral-secret-0123456789")
    dept, police, town = token("wy-scjg"), token("wy-gaj"), token("wy-lt")

    case = report(dept)
    j = wait_for(lambda: [e["event"] for e in events(case, "router") if e["type"] == "jurisdiction_resolved"], 10) or [{}]
    t.ok(j[0].get("competent", {}).get("org_id") == "wy-gaj", "a suspected crime goes to public security", j)
    time.sleep(1)
    t.ok("transfer" not in obligations(case, "obligation_opened"),
         "and opens no seed-002 transfer limit (Decree 310 governs it)", list(obligations(case, "obligation_opened")))

    st, doc = step(case, dept, step="investigator_reported", by="wy-scjg")
    ob = wait_rule(case, "obligation_opened", "crime_decide")
    t.ok(st == 201 and ob.get("unit") == "days" and ob.get("length") == 3 and "第五条" in ob.get("source_doc", ""),
         "the investigator's report opens 3 days to decide (第五条)", ob or doc)
    st, doc = step(case, dept, step="transfer_decided", by="wy-scjg")
    ob = wait_rule(case, "obligation_opened", "crime_handover")
    t.ok(st == 201 and ob.get("unit") == "hours" and ob.get("length") == 24 and "crime_decide" in obligations(case, "obligation_met"),
         "the decision meets it and opens 24 hours to hand over", ob or doc)

    st, doc = step(case, dept, step="handed_to_police", by="wy-scjg", materials=DOSSIER[:1])
    msg = doc.get("error", {}).get("message", "")
    t.ok(st == 400 and doc["error"]["code"] == "missing_materials" and doc["error"]["field"] == "materials"
         and "crime_investigation_report" in msg and "exhibit_list" in msg and "crime_transfer_notice" not in msg,
         "a handover without its dossier is refused, naming what is missing (第六条)", doc)
    st, doc = step(case, dept, step="handed_to_police", by="wy-scjg", materials=DOSSIER)
    ob = wait_rule(case, "obligation_opened", "police_answer")
    t.ok(st == 201 and ob.get("responsible", {}).get("org_id") == "wy-gaj" and ob.get("length") == 3,
         "with it, the handover opens public security's 3 days to answer (第八条)", ob or doc)

    st, doc = http.post(f"/v1/cases/{case}/decision", {"by": "wy-scjg", "decided_at": ago(10), "major": False,
                                                       "summary": "罚款", "fine_fen": 100000}, dept)
    t.ok(st == 409 and doc["error"]["code"] == "crime_referral_open",
         "no penalty while public security holds the case (不得以罚代刑)", doc)

    st, doc = step(case, police, step="police_answered", by="wy-gaj", accepted=False, note="情节显著轻微,不予立案")
    t.ok(st == 201, "public security declines to open a case", doc)
    routed = wait_for(lambda: [e["event"] for e in events(case, "router") if e["type"] == "transfer_routed"], 10) or [{}]
    tr = routed[0]
    t.ok(tr.get("sender", {}).get("org_id") == "wy-gaj" and tr.get("receiver", {}).get("org_id") == "wy-lt"
         and "第八条" in tr.get("reason", "") and "不予立案" in tr.get("reason", ""),
         "router routes the case back to the township competent by the catalogue, from public security", tr)
    sign = wait_rule(case, "obligation_opened", "sign")
    t.ok(sign.get("responsible", {}).get("org_id") == "wy-lt", "with its own sign-for limit", sign)
    got = wait_for(lambda: [b for b in hook.bodies("/wy-lt") if b.get("type") == "transfer_routed"], 20)
    t.ok(got, "the township's platform receives the routed transfer")
    recon = wait_rule(case, "obligation_opened", "reconsideration")
    t.ok(recon.get("responsible", {}).get("org_id") == "wy-scjg" and recon.get("length") == 3,
         "the referring department may ask to reconsider within 3 days (第九条)", recon)
    st, doc = http.post(f"/v1/transfers/{tr.get('transfer_id')}/receipt", {"by": "wy-lt"}, town)
    t.ok(st == 202, "the township signs for it", doc)

    st, doc = step(case, dept, step="reconsideration_requested", by="wy-scjg")
    ans = wait_rule(case, "obligation_opened", "reconsideration_answer")
    t.ok(st == 201 and ans.get("responsible", {}).get("org_id") == "wy-gaj" and ans.get("length") == 3,
         "a request to reconsider opens public security's 3 days to answer it", ans or doc)
    st, doc = http.post(f"/v1/cases/{case}/decision", {"by": "wy-lt", "decided_at": ago(5), "major": False,
                                                       "summary": "罚款", "fine_fen": 100000}, town)
    t.ok(st == 409 and doc["error"]["code"] == "crime_referral_open",
         "while the reconsideration runs, still no penalty", doc)
    st, doc = step(case, police, step="reconsideration_answered", by="wy-gaj", accepted=False)
    t.ok(st == 201 and wait_for(lambda: "reconsideration_answer" in obligations(case, "obligation_met"), 10),
         "public security's answer meets it", doc)
    time.sleep(0.5)
    t.ok(len([e for e in events(case, "router") if e["type"] == "transfer_routed"]) == 1,
         "the case is routed back once, not again")
    st, doc = http.post(f"/v1/cases/{case}/decision", {"by": "wy-lt", "decided_at": ago(5), "major": False,
                                                       "summary": "责令改正,罚款", "fine_fen": 100000}, town)
    got = wait_for(lambda: [b["event"] for b in hook.bodies("/wy-jcy") if b.get("type") == "decision_recorded"], 20) or []
    t.ok(st == 201 and got and got[0]["summary"] == "责令改正,罚款",
         "declined, the township decides the penalty, and the procuratorate is told", got or doc)
    steps = sorted({b["event"]["step"] for b in hook.bodies("/wy-jcy") if b.get("type") == "crime_referral_step"})
    t.ok(steps == sorted(["investigator_reported", "transfer_decided", "handed_to_police", "police_answered",
                          "reconsideration_requested", "reconsideration_answered"]),
         "the procuratorate received every step (抄送)", steps)

    case2 = report(dept)
    for s_ in ("investigator_reported", "transfer_decided"):
        step(case2, dept, step=s_, by="wy-scjg")
    step(case2, dept, step="handed_to_police", by="wy-scjg", materials=DOSSIER)
    st, doc = step(case2, police, step="police_answered", by="wy-gaj", accepted=True)
    ex = wait_rule(case2, "obligation_opened", "exhibits_handover")
    t.ok(st == 201 and ex.get("responsible", {}).get("org_id") == "wy-scjg" and ex.get("length") == 3
         and "第十二条" in ex.get("source_doc", ""),
         "a case public security opens obliges the exhibits within 3 days (第十二条)", ex or doc)
    st, doc = step(case2, dept, step="exhibits_handed_over", by="wy-scjg")
    t.ok(st == 201 and wait_for(lambda: "exhibits_handover" in obligations(case2, "obligation_met"), 10),
         "handing them over meets it", doc)
    st, doc = http.post(f"/v1/cases/{case2}/decision", {"by": "wy-scjg", "decided_at": ago(5), "major": False,
                                                        "summary": "罚款", "fine_fen": 1}, dept)
    t.ok(st == 409 and doc["error"]["code"] == "crime_referral_open",
         "a case public security opened takes no penalty", doc)
    st, doc = step(case2, dept, step="sent_back", by="wy-scjg")
    t.ok(st == 403, "only public security sends a case back", doc)

    # ---- a duty-division dispute (seed 002 §六(四)): staffing office, then county government ----
    for org in ("wy-bb", "wy-xzf"):
        r = cli("subscribe", "--org", org, "--url", hook.url(f"/{org}"), "--secret", "referral-secret-0123456789")
        assert r.returncode == 0, r.stderr
    bureau, staffing, gov, judicial = token("wy-zhzf"), token("wy-bb"), token("wy-xzf"), token("wy-sfj")
    st, doc = http.post("/v1/cases", {"source": "patrol", "matter_code": "330219001", "township_code": "330723101000",
                                      "discovered_at": ago(600), "discovered_by": "wy-scjg", "description": "扬尘",
                                      "urgency": "normal"}, dept)
    case3 = doc["case_id"]
    st, doc = http.post(f"/v1/cases/{case3}/transfers", {
        "sender": "wy-scjg", "reason": "属执法局职责", "approved_by": "局长", "approved_at": ago(300),
        "materials": [{"kind": "transfer_letter", "title": "移送函"}, {"kind": "case_source", "title": "检查记录"},
                      {"kind": "party_info", "text": "当事人"}]}, dept)
    tid = doc.get("transfer_id", "")
    t.ok(st == 202, "a department transfers a case to the enforcement bureau", doc)
    wait_for(lambda: [e for e in events(case3, "router") if e["type"] == "transfer_routed"], 10)
    st, doc = http.post(f"/v1/transfers/{tid}/dispute", {"by": "wy-zhzf", "reason": "属住建职责", "kind": "duty_division"},
                        bureau)
    did = doc.get("dispute_id", "")
    esc = wait_for(lambda: [e["event"] for e in events(case3, "router") if e["type"] == "dispute_escalated"], 10) or [{}]
    t.ok(st == 202 and esc[0].get("decider", {}).get("org_id") == "wy-bb" and esc[0].get("kind") == "duty_division",
         "the bureau raises a duty-division dispute: it goes to the staffing office (编办)", esc[0] or doc)
    st, doc = http.post(f"/v1/disputes/{did}/decision", {"decided_by": "wy-sfj", "competent_org": "wy-zhzf",
                                                         "reasoning": "x"}, judicial)
    t.ok(st == 403 and doc["error"]["code"] == "not_decider", "the judicial bureau does not decide it", doc)
    st, doc = http.post(f"/v1/disputes/{did}/decision", {"decided_by": "wy-bb", "refer_to_government": True,
                                                         "reasoning": "协调未果"}, staffing)
    esc = wait_for(lambda: [e["event"] for e in events(case3, "router") if e["type"] == "dispute_escalated"
                            and e["event"]["decider"]["org_id"] == "wy-xzf"], 10) or [{}]
    t.ok(st == 202 and esc[0].get("reason") == "协调未果",
         "coordination failing, the staffing office refers it to the county government", esc[0] or doc)
    t.ok(wait_for(lambda: [b for b in hook.bodies("/wy-xzf") if b.get("type") == "dispute_escalated"], 20),
         "which receives it at its webhook")
    st, doc = http.post(f"/v1/disputes/{did}/decision", {"decided_by": "wy-bb", "competent_org": "wy-zhzf",
                                                         "reasoning": "x"}, staffing)
    t.ok(st == 403 and doc["error"]["code"] == "not_decider", "once referred, the staffing office no longer decides", doc)
    st, doc = http.post(f"/v1/disputes/{did}/decision", {"decided_by": "wy-xzf", "competent_org": "wy-zhzf",
                                                         "reasoning": "扬尘防治属执法局"}, gov)
    sc = wait_for(lambda: [e["event"] for e in events(case3, "router") if e["type"] == "transfer_state_changed"
                           and e["event"]["to_state"] == "decided"], 10)
    t.ok(st == 202 and sc, "the county government decides it", doc)
    st, doc = http.post(f"/v1/transfers/{tr.get('transfer_id')}/dispute",
                        {"by": "wy-lt", "reason": "x", "kind": "duty_division"}, town)
    t.ok(st == 400 and doc["error"]["code"] == "not_duty_division" and doc["error"]["field"] == "kind",
         "a duty-division dispute between others (public security and a township) is refused", doc)
    openapi_judge(t, openapi_document(), exchanges, w.path)
    hook.check_cloudevents(t, "referral")
finally:
    system.cleanup()
t.done()
