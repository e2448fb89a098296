"""The duties to inform, delivered (seed 002 §五(一)(二), seed 000 §四(三)). The
whole system runs (intake, router, deadline, notify pulling intake too), and each
organisation's platform is subscribed to a loopback webhook receiver:
- a request for technical help reaches the organisation asked, and its answer
  reaches the requester, with the question;
- a penalty decision fed back reaches the department, with what was decided;
- an approval reaches the enforcement bureau; an urgent one is held to a limit
  of hours, not 10 working days;
- every Decree 310 step reaches the procuratorate (抄送) and the other side of
  the handover, and a decision on a case referred to public security reaches the
  procuratorate."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from cbtest import CRIME_DOSSIER, System, Tap, WebhookReceiver, ago, openapi_document, openapi_judge, wait_for

t = Tap()
exchanges = []  # judged against the OpenAPI document at the end
system = System("inform", record=exchanges)
w, http, cli, token = system.w, system.http, system.cli, system.token
hook = WebhookReceiver()
DOSSIER = CRIME_DOSSIER
ORGS = ("wy-zhzf", "wy-scjg", "wy-zjj", "wy-jcy", "wy-gaj", "wy-lt")


def received(org, type_, pred=lambda e: True, timeout=20):
    """What org's webhook got of type_ (waiting up to timeout for the first)."""
    return hook.received(org, type_, pred, timeout)


def deadline_events(case_id):
    return system.tail("--producer", "deadline", "--case", case_id)


try:
    system.up("deadline")
    hook.subscribe(cli, ORGS, "inform-secret-0123456789")
    dept, police = token("wy-scjg", "wy-zjj"), token("wy-gaj")
    body = {"source": "patrol", "matter_code": "330217001", "township_code": "330723101000",
            "discovered_at": ago(60), "discovered_by": "wy-scjg", "description": "inform e2e", "urgency": "normal"}
    st, doc = http.post("/v1/cases", body, dept)
    assert st == 201, doc
    case = doc["case_id"]

    # assistance: the organisation asked, then the requester
    st, doc = http.post(f"/v1/cases/{case}/assistance-requests",
                        {"requested_by": "wy-scjg", "to": "wy-zjj", "kind": "appraisal", "question": "建筑是否违章"}, dept)
    aid = doc.get("assistance_id", "")
    t.ok(st == 201, "a request for technical help is recorded", doc)
    got = received("wy-zjj", "assistance_requested", lambda e: e["assistance_id"] == aid)
    t.ok(got and got[0]["question"] == "建筑是否违章", "the organisation asked receives the request at its webhook", got)
    st, doc = http.post(f"/v1/assistance/{aid}/answer", {"by": "wy-zjj", "answer": "属违章建筑"}, dept)
    got = received("wy-scjg", "assistance_answered", lambda e: e["assistance_id"] == aid)
    t.ok(st == 201 and got and got[0]["answer"] == "属违章建筑" and got[0]["question"] == "建筑是否违章"
         and got[0]["requested_by"]["org_id"] == "wy-scjg",
         "the requester receives the answer, with its question (seed 002 §五(二))", got or doc)
    t.ok(not [b for b in hook.bodies("/wy-jcy") if b.get("type", "").startswith("assistance")],
         "nobody else receives it (the procuratorate has no role here)")

    # a decision fed back to the department
    st, doc = http.post(f"/v1/cases/{case}/decision", {"by": "wy-scjg", "decided_at": ago(30), "major": False,
                                                      "summary": "责令改正并罚款", "fine_fen": 200000,
                                                      "feedback_to": "wy-zjj"}, dept)
    did = doc.get("decision_id", "")
    t.ok(st == 201, "a penalty decision is recorded, to be fed back to 住建局", doc)
    st, doc = http.post(f"/v1/cases/{case}/feedback", {"decision_id": did, "by": "wy-scjg", "to": "wy-zjj"}, dept)
    got = received("wy-zjj", "feedback_given", lambda e: e["decision_id"] == did)
    t.ok(st == 201 and got and got[0]["summary"] == "责令改正并罚款" and got[0]["fine_fen"] == 200000
         and got[0]["decided_at_ms"] > 0,
         "the department receives the feedback with what was decided (seed 002 §五(一))", got or doc)
    t.ok(not received("wy-jcy", "decision_recorded", timeout=1.5),
         "a decision on a case never referred is not sent to the procuratorate")

    # approvals: the enforcement bureau is told; an urgent one within hours
    st, doc = http.post("/v1/approvals", {"by": "wy-zjj", "approved_at": ago(600), "subject": "建设工程规划许可"}, dept)
    ap1 = doc.get("approval_id", "")
    st2, doc2 = http.post("/v1/approvals", {"by": "wy-zjj", "approved_at": ago(600), "subject": "临时占道许可",
                                            "urgent": True, "case_id": case}, dept)
    ap2 = doc2.get("approval_id", "")
    t.ok(st == 201 and st2 == 201, "two approvals are recorded, the second urgent", [doc, doc2])
    got = received("wy-zhzf", "approval_recorded", lambda e: e["approval_id"] in (ap1, ap2))
    wait_for(lambda: len(received("wy-zhzf", "approval_recorded", lambda e: e["approval_id"] in (ap1, ap2), 0)) == 2, 10)
    got = received("wy-zhzf", "approval_recorded", lambda e: e["approval_id"] in (ap1, ap2), 0)
    t.ok(sorted(e["approval_id"] for e in got) == sorted([ap1, ap2]),
         "the enforcement bureau receives both approvals at its webhook", got)
    obs = wait_for(lambda: [e["event"]["obligation"] for e in deadline_events(case)
                            if e["type"] == "obligation_met"
                            and e["event"]["obligation"]["rule_id"].startswith("approval_notice")], 10) or []
    t.ok(obs and obs[0]["rule_id"] == "approval_notice_urgent" and obs[0]["unit"] == "hours"
         and obs[0]["length"] == 4,
         "an urgent approval is held to the urgent rule: 4 hours, not 10 working days", obs)

    # Decree 310: every step to the procuratorate and the other side
    st, doc = http.post(f"/v1/cases/{case}/crime-referral", {"step": "investigator_reported", "by": "wy-scjg",
                                                             "at": ago(120)}, dept)
    st2, doc2 = http.post(f"/v1/cases/{case}/crime-referral", {"step": "handed_to_police", "by": "wy-scjg",
                                                               "at": ago(60), "materials": DOSSIER}, dept)
    t.ok(st == 201 and st2 == 201, "two referral steps are recorded", [doc, doc2])
    wait_for(lambda: len(received("wy-jcy", "crime_referral_step", lambda e: e["case_id"] == case, 0)) == 2, 20)
    got = received("wy-jcy", "crime_referral_step", lambda e: e["case_id"] == case, 0)
    t.ok(sorted(e["step"] for e in got) == ["handed_to_police", "investigator_reported"],
         "the procuratorate receives every step (抄送)", got)
    t.ok(received("wy-gaj", "crime_referral_step", lambda e: e["step"] == "handed_to_police"),
         "public security receives the handover")
    st, doc = http.post(f"/v1/cases/{case}/crime-referral", {"step": "police_answered", "by": "wy-gaj", "at": ago(10),
                                                             "accepted": False, "note": "不予立案"}, police)
    got = received("wy-scjg", "crime_referral_step", lambda e: e["step"] == "police_answered")
    t.ok(st == 201 and got and got[0]["note"] == "不予立案",
         "the administrative organisation receives public security's answer", got or doc)
    t.ok(not [b for b in hook.bodies("/wy-gaj") if b.get("type") == "crime_referral_step"
              and b["event"]["step"] == "police_answered"],
         "and public security is not sent its own answer")
    # Declined, the case went back to the township competent by the catalogue, which decides.
    st, doc = http.post(f"/v1/cases/{case}/decision", {"by": "wy-lt", "decided_at": ago(5), "major": False,
                                                      "summary": "公安不予立案后罚款", "fine_fen": 100000},
                        token("wy-lt"))
    got = received("wy-jcy", "decision_recorded", lambda e: e["case_id"] == case)
    t.ok(st == 201 and got and got[0]["summary"] == "公安不予立案后罚款",
         "a decision on a case referred to public security reaches the procuratorate", got or doc)
    openapi_judge(t, openapi_document(), exchanges, w.path)
    hook.check_cloudevents(t, "inform")
finally:
    system.cleanup()
t.done()
